"""The faust baseline of ``modelstream bench``: one faust-streaming agent doing the
scorer's per-request work, the way a faust user would write it, in one of the
:mod:`~services.bench._faust_variants` (one event at a time or ``take_events`` batches;
asyncio's loop or uvloop).

Per request: decode the Avro single-object value with the same :class:`~schemas.codec.Codec`,
``predict_proba_one`` with the champion and with the challenger (the same registry
versions the scorer serves; the scorer calls River models row by row too), build the
scorer's reply record, encode it with the reply codec and send it to the replies topic.
No prediction log, no transactions (faust's default at-least-once): it does less than the
scorer, never more.

Run as its own process (the bench starts it)::

    python -m services.bench.faust_app --bootstrap 127.0.0.1:9092 --prefix P \\
        --model bench --requests P.bench.faust-requests --replies P.bench.faust-replies-take \\
        --datadir /tmp/faust --partitions 3 --variant take --max-batch 500
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import mode.loop
from faust.types import EventT
from faust.worker import Worker

from schemas.codec import Codec
from schemas.contracts import load_schema
from services.bench._faust import READY
from services.bench._faust_variants import TAKE_WITHIN, VARIANTS, FaustVariant
from services.registry import RegistryView
from streams.kafka import KafkaConfig, Topics

__all__ = ["Models", "build_app", "load_models", "main", "reply_for"]

log = logging.getLogger("modelstream.bench.faust")


@dataclass(frozen=True)
class Models:
    """What the agent serves: the scorer's champion and challenger and their contract."""

    model: str
    version: int
    task: str
    codec: Codec
    champion: Any
    challenger: Any


def load_models(kafka: KafkaConfig, prefix: str, model: str) -> Models:
    """The champion and challenger the registry routes ``model`` to."""
    with RegistryView(kafka, Topics(prefix)) as view:
        view.sync()
        routing = view.routing(model)
        if routing is None or routing.challenger is None:
            raise SystemExit(f"{model} needs a champion and a challenger in the registry")
        meta = view.version(model, routing.champion)
        return Models(
            model, meta.version, meta.task, Codec(dict(meta.input_schema)),
            view.load_model(model, routing.champion), view.load_model(model, routing.challenger),
        )  # fmt: skip


def reply_for(
    models: Models, request_id: str, proba: dict[Any, float], started: float
) -> dict[str, Any]:
    """The scorer's reply record for a champion answer.

    >>> m = Models("m", 3, "classification", None, None, None)
    >>> r = reply_for(m, "r1", {False: 0.25, True: 0.75}, time.perf_counter())
    >>> r["prediction"], r["probabilities"], r["served_by"], r["model_version"]
    ('True', {'False': 0.25, 'True': 0.75}, 'champion', 3)
    """
    best = max(proba, key=proba.__getitem__)
    return {
        "request_id": request_id, "model": models.model, "model_version": models.version,
        "task": models.task, "prediction": str(best),
        "probabilities": {str(k): float(v) for k, v in proba.items()},
        "served_by": "champion", "latency_ms": (time.perf_counter() - started) * 1e3,
        "error": None, "created_at": int(time.time() * 1e3),
    }  # fmt: skip


def build_app(args: argparse.Namespace, models: Models) -> faust.App:
    """A faust app with one agent, requests in, replies out, reading its stream as
    ``args.variant`` says (one event at a time, or ``take_events`` batches)."""
    variant = FaustVariant.parse(args.variant)
    app = faust.App(
        f"{args.prefix}.bench-faust-{variant.name}", broker=f"kafka://{args.bootstrap}",
        store="memory://", datadir=str(args.datadir), topic_partitions=args.partitions,
        web_enabled=False, producer_linger=0.001, producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )  # fmt: skip
    requests = app.topic(args.requests, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")  # fmt: skip
    replies = app.topic(args.replies, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw")  # fmt: skip
    answer = _answerer(models)

    if variant.take:

        @app.agent(requests, name="score")
        async def score_batches(stream: faust.StreamT[bytes]) -> None:
            # take_events (the events, keys and offsets included) is faust.Stream's; StreamT
            # declares take() only
            batches = stream.take_events(args.max_batch, within=TAKE_WITHIN)  # type: ignore[attr-defined]
            async for events in batches:
                for event in events:
                    key, value, headers = answer(event)
                    await replies.send(key=key, value=value, headers=headers)

    else:

        @app.agent(requests, name="score")
        async def score(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                key, value, headers = answer(event)
                await replies.send(key=key, value=value, headers=headers)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        assigned = args[0] if args else ()
        if assigned:
            loop = type(asyncio.get_running_loop())
            log.info("%s: %d partitions, variant %s, loop %s.%s", READY, len(assigned),
                     variant.name, loop.__module__, loop.__qualname__)  # fmt: skip

    return app


Headers = list[tuple[str, bytes]]


def _answerer(models: Models) -> Callable[[EventT[bytes]], tuple[bytes | None, bytes, Headers]]:
    """The scorer's per-request work on one event: decode, champion and challenger, the
    reply record encoded; returns the reply's key, value and headers."""
    reply_codec = Codec(load_schema("reply"))
    decode, champion, challenger = models.codec.decode_avro, models.champion, models.challenger
    ctype = ("content-type", b"application/avro")

    def answer(event: EventT[bytes]) -> tuple[bytes | None, bytes, Headers]:
        started = time.perf_counter()
        key = event.key
        row = decode(event.value)
        proba = champion.predict_proba_one(row)
        challenger.predict_proba_one(row)  # shadow: scored, not returned
        message = event.message
        request_id = key.decode() if key else f"{message.partition}-{message.offset}"
        reply = reply_for(models, request_id, proba, started)
        value = reply_codec.encode_avro(reply)
        return key, value, [ctype, ("request-id", request_id.encode())]

    return answer


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.bench.faust_app")
    for name in ("bootstrap", "prefix", "model", "requests", "replies"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--datadir", type=Path, required=True)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--variant", choices=[v.name for v in VARIANTS], default="event")
    parser.add_argument("--max-batch", type=int, default=500)
    args = parser.parse_args(argv)
    if FaustVariant.parse(args.variant).uvloop:
        # before any loop exists; what `faust -L uvloop worker` does at `import faust`
        mode.loop.use("uvloop")
    models = load_models(KafkaConfig(args.bootstrap, client_id="bench-faust"), args.prefix,
                         args.model)  # fmt: skip
    app = build_app(args, models)
    Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
