"""Helpers for scorer tests: real scorer subprocesses, request producers, reply readers,
and deliberately misbehaving models (pickled by value so a scorer process can load them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import orjson
from confluent_kafka import Consumer

from schemas.codec import Codec
from services.registry import Registry, local_signer
from services.synthetic import input_schema, labelled_rows, river_challenger, river_champion
from streams.kafka import (
    KafkaConfig,
    Topics,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
)
from streams.scoring import (
    Deployment,
    DeploymentTable,
    Guard,
    Scorer,
    ScorerConfig,
    ServedModel,
    adapt,
)

MODELSTREAM = str(Path(sys.executable).with_name("modelstream"))
SCHEMA = input_schema()
FEATURES = [field["name"] for field in SCHEMA["fields"]]


class FlakyChampion:
    """Delegates to a real model but raises when x0 > 1 (about 16 % of requests)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        if x["x0"] > 1.0:
            raise ValueError(f"x0={x['x0']:.2f} is out of the range this model supports")
        return dict(self.inner.predict_proba_one(x))

    def predict_one(self, x: dict[str, Any]) -> Any:
        return self.inner.predict_one(x)


class BrokenChallenger(FlakyChampion):
    """Raises on every request."""

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        raise RuntimeError("challenger is broken")


class SleepyChallenger(FlakyChampion):
    """Answers correctly, 50 ms late per batch (River's row loop: the first row of each
    call sleeps; the worker scores queued batches in one call)."""

    def __init__(self, inner: Any, delay: float = 0.05) -> None:
        super().__init__(inner)
        self.last_call = 0.0
        self.delay = delay

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        now = time.monotonic()
        if now - self.last_call > 0.01:  # a new call: the rows of one call come back to back
            time.sleep(self.delay)
        self.last_call = time.monotonic()
        return dict(self.inner.predict_proba_one(x))


class HungChallenger(FlakyChampion):
    """Never answers (sleeps an hour on its first row)."""

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        time.sleep(3600)
        return dict(self.inner.predict_proba_one(x))


cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass
class Stack:
    """One isolated deployment: its prefix, topics, registry and trained models."""

    kafka: KafkaConfig
    topics: Topics
    registry: Registry
    tmp: Path

    def __post_init__(self) -> None:
        """Sign as this deployment's registry writer: its scorers and gateways (data dir
        ``<tmp>/data``) trust the keys in ``<tmp>/data/keys``."""
        if self.registry is not None and self.registry.signer is None:
            key = self.tmp / "data" / "keys" / "registry.key"
            self.registry.signer = local_signer(key, create=True)

    def add_model(
        self, name: str, champion: Any = None, challenger: Any = None, backup: Any = None
    ) -> None:
        ensure_topics(make_admin(self.kafka), self.topics.model_specs(name, 3))
        train = labelled_rows(1500)
        self.registry.register(
            name,
            champion or trained()[0],
            SCHEMA,
            task="classification",
            sensitive=["group"],
            role="champion",
        )
        if challenger is not None:
            self.registry.register(
                name,
                challenger,
                SCHEMA,
                task="classification",
                sensitive=["group"],
                role="challenger",
            )
        if backup is not None:
            self.registry.register(
                name, backup, SCHEMA, task="classification", sensitive=["group"], role="backup"
            )
        del train


_TRAINED: list[Any] = []


def trained() -> tuple[Any, Any]:
    """(champion, challenger) River models, trained once per test session."""
    if not _TRAINED:
        train = labelled_rows(1500)
        _TRAINED.extend([river_champion(train), river_challenger(train)])
    return _TRAINED[0], _TRAINED[1]


class ScorerProcess:
    """``modelstream run scorer`` as a real subprocess."""

    def __init__(self, stack: Stack, instance: str = "0", *args: str) -> None:
        self.stack, self.instance, self.args = stack, instance, args
        self.log = stack.tmp / f"scorer-{instance}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ScorerProcess:
        env = os.environ | {
            "MODELSTREAM_KAFKA": self.stack.kafka.bootstrap,
            "MODELSTREAM_TOPIC_PREFIX": self.stack.topics.prefix,
            "MODELSTREAM_DATA_DIR": str(self.stack.tmp / "data"),
        }
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [MODELSTREAM, "run", "scorer", "--instance", self.instance, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready: " in self.log.read_bytes()[offset:]:
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"scorer exited early:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"scorer not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.log.read_text()

    def __enter__(self) -> ScorerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send(
    kafka: KafkaConfig,
    topic: str,
    rows: Iterable[dict[str, Any]],
    *,
    start: int = 0,
    json_every: int = 3,
    headers: list[tuple[str, bytes]] | None = None,
    prefix: str = "r",
) -> int:
    """Produce requests keyed ``{prefix}{i}``; every ``json_every``-th one as JSON."""
    codec = Codec(SCHEMA)
    producer = make_producer(kafka)
    count = 0
    for i, row in enumerate(rows, start):
        extra = list(headers or [])
        if json_every and i % json_every == 0:
            value = orjson.dumps(row)
            extra.append(("content-type", b"application/json"))
        else:
            value = codec.encode_avro(row)
        producer.produce(topic, value, f"{prefix}{i}".encode(), headers=extra)
        count += 1
        if count % 2000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return count


@dataclass
class Received:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int

    def json(self) -> dict[str, Any]:
        return dict(orjson.loads(self.value))


def reader(
    kafka: KafkaConfig, topics: list[str], group: str, *, read_committed: bool = True
) -> Consumer:
    consumer = make_consumer(kafka, group, read_committed=read_committed)
    consumer.subscribe(topics)
    return consumer


def collect(
    consumer: Consumer, expected: int, timeout: float = 60.0, quiet: float = 1.5
) -> list[Received]:
    """Read until ``expected`` messages arrived (or timeout), then ``quiet`` seconds more
    to catch duplicates."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < expected:
        got += take(consumer, 0.2)
    end = time.monotonic() + quiet
    while time.monotonic() < end:
        got += take(consumer, 0.2)
    return got


def take(consumer: Consumer, timeout: float) -> Iterator[Received]:
    for m in consumer.consume(2000, timeout):
        if m.error() is None:
            yield Received(
                m.topic() or "",
                m.key(),
                m.value() or b"",
                dict(m.headers() or []),
                m.timestamp()[1],
            )


def collect_every_request(
    consumer: Any, n: int, topics: int = 2, timeout: float = 120.0
) -> list[Received]:
    """Read until each of the ``topics`` topics read holds ``n`` distinct keys (request
    ids), then 3 s more for duplicates. Counting messages would not do: at least once,
    the duplicates a kill leaves can make up the count before the last requests are
    answered."""
    got: list[Received] = []
    keys: dict[str, set[bytes | None]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
        len(keys) < topics or any(len(k) < n for k in keys.values())
    ):
        for m in take(consumer, 0.2):
            got.append(m)
            keys.setdefault(m.topic, set()).add(m.key)
    return got + collect(consumer, 0, timeout=0, quiet=3)


def decode_reply(message: Received) -> dict[str, Any]:
    """Replies come as JSON or Avro, in the request's content type."""
    if message.headers.get("content-type") == b"application/json":
        return message.json()
    from schemas.contracts import load_schema

    return Codec(load_schema("reply")).decode_avro(message.value)


class BigLabel(FlakyChampion):
    """Answers with a class label of ``size`` characters: a reply larger than a small
    reply topic accepts."""

    def __init__(self, inner: Any, size: int = 6_000) -> None:
        super().__init__(inner)
        self.label = "L" * size

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        return {self.label: 1.0}

    def predict_one(self, x: dict[str, Any]) -> Any:
        return self.label


def deployment(name: str, champion: Any, challenger: Any = None) -> Deployment:
    """What the registry follower would deploy for ``name``, built without a registry."""

    def served(version: int, model: Any) -> ServedModel:
        predictor = adapt(model, task="classification", features=FEATURES)
        return ServedModel(version, predictor, None, Guard(f"{name}-v{version}"))

    return Deployment(
        model=name,
        task="classification",
        codec=Codec(SCHEMA),
        champion=served(1, champion),
        challenger=None if challenger is None else served(2, challenger),
        sensitive=("group",),
    )


class ScorerThread:
    """The scorer loop in a thread of the test process, serving ``deployments`` given
    directly: its stats can be read, and a broker can be restarted under it."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, deployments: Iterable[Deployment],
                 **config: Any) -> None:  # fmt: skip
        table = DeploymentTable()
        for dep in deployments:
            table.put(dep)
        self.scorer = Scorer(kafka, ScorerConfig(topics, **config), table)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="scorer", daemon=True)

    def _run(self) -> None:
        try:
            self.scorer.run(self.stop)
        except BaseException as exc:
            self.error = exc
            raise

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.scorer.stats)

    def __enter__(self) -> ScorerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.scorer.close()
        assert self.error is None, f"the scorer stopped: {self.error!r}"
