"""What the process under test really did, read back after the clock stopped: who served
each reply, and whether the shadow challenger scored or was skipped.

A throughput figure means little if replies were errors or the challenger quietly
stopped running under load; the report shows these counts next to the rates, and the
challenger's coverage (:func:`challenger_coverage`) as a target.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.codec import Codec, DecodeError
from schemas.contracts import load_schema
from services.bench._throughput import assigned_reader
from streams.kafka import KafkaConfig

__all__ = ["Coverage", "challenger_coverage", "log_tally", "reply_tally"]


def reply_tally(values: Iterable[bytes]) -> Counter[str]:
    """Counts of ``served_by:<role>``, ``error:<code>`` and ``undecodable`` over Avro replies."""
    codec = Codec(load_schema("reply"))
    tally: Counter[str] = Counter()
    for value in values:
        try:
            reply = codec.decode_avro(value)
        except DecodeError:
            tally["undecodable"] += 1
            continue
        tally[f"served_by:{reply['served_by']}"] += 1
        if reply["error"] is not None:
            tally[f"error:{reply['error']['code']}"] += 1
    return tally


def log_tally(
    kafka: KafkaConfig, topic: str, expected: int, *, group: str, quiet: float = 5.0
) -> Counter[str]:
    """Counts over the prediction log: ``served_by:<role>`` and the challenger's outcome,
    ``challenger:scored``, ``challenger:failed:<code>``, ``challenger:skipped:<reason>``.

    Reads until ``expected`` records were seen or nothing arrived for ``quiet`` seconds.
    """
    tally: Counter[str] = Counter()
    consumer = assigned_reader(kafka, topic, group)
    try:
        seen, last_arrival = 0, time.monotonic()
        while seen < expected and time.monotonic() - last_arrival < quiet:
            first = consumer.poll(0.2)
            if first is None:
                continue
            for message in [first, *consumer.consume(10_000, 0)]:
                if message.error() is None:
                    record = orjson.loads(message.value() or b"{}")
                    tally[f"served_by:{record.get('served_by')}"] += 1
                    tally[f"challenger:{_challenger_outcome(record)}"] += 1
                    seen += 1
            last_arrival = time.monotonic()
    finally:
        consumer.close()
    return tally


def _challenger_outcome(record: dict[str, Any]) -> str:
    """One prediction-log record's challenger outcome.

    >>> _challenger_outcome({"challenger": {"error": None, "skipped": "busy"}})
    'skipped:busy'
    >>> _challenger_outcome({"challenger": {"error": {"code": "timeout"}, "skipped": None}})
    'failed:timeout'
    >>> _challenger_outcome({"challenger": {"error": None, "skipped": None}})
    'scored'
    """
    challenger = record.get("challenger")
    if challenger is None:
        return "none"
    if challenger.get("skipped"):
        return f"skipped:{challenger['skipped']}"
    if challenger.get("error"):
        return f"failed:{challenger['error']['code']}"
    return "scored"


@dataclass(frozen=True)
class Coverage:
    """How many logged requests in the shadow sample have their challenger entry."""

    logged: int
    sampled_out: int  # outside the shadow sample: not owed a challenger entry
    covered: int  # the challenger's outcome, or its own failure (an error)
    missing: int  # skipped for any other reason (busy, ...), or no challenger entry

    @property
    def share(self) -> float | None:
        """``covered`` over the requests in the sample (None when there were none)."""
        in_sample = self.covered + self.missing
        return self.covered / in_sample if in_sample else None


def challenger_coverage(outcomes: Mapping[str, int]) -> Coverage:
    """Coverage from the challenger outcomes of :func:`log_tally` (without their
    ``challenger:`` prefix): ``scored`` and ``failed:*`` are covered, ``skipped:sampled_out``
    is outside the sample, every other ``skipped:*`` and ``none`` is missing.

    >>> c = challenger_coverage({"scored": 990, "failed:timeout": 5, "skipped:busy": 5,
    ...                          "skipped:sampled_out": 100})
    >>> c, c.share
    (Coverage(logged=1100, sampled_out=100, covered=995, missing=5), 0.995)
    >>> challenger_coverage({"skipped:sampled_out": 3}).share is None
    True
    """
    sampled_out = outcomes.get("skipped:sampled_out", 0)
    covered = sum(n for k, n in outcomes.items() if k == "scored" or k.startswith("failed:"))
    logged = sum(outcomes.values())
    return Coverage(logged, sampled_out, covered, logged - sampled_out - covered)
