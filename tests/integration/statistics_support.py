"""Synthetic traffic of a churn classifier and a demand regressor, landed through the
sink's own row mapping, with what the Python estimators say about it.

Four hours of predictions ending before now (two input partitions, champion v1 for two
hours, then v2 after a quiet quarter of an hour, a challenger v3 on most requests),
labels a few seconds to five minutes later, and the monitor's additive window summaries
of the same events (streams.monitoring.summaries.SummaryWindows, fed as ModelWatch feeds
it). Inputs include missing values, numbers beyond the reference's edges, numbers as
text, categories the reference never saw and booleans.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from schemas.contracts import sample_record
from services.registry import reference_profile
from services.registry._wire import codec
from services.sink.landing import Position
from services.sink.rows import TABLES
from services.warehouse import Warehouse
from streams.monitoring.drift.reference import Reference, references_from_profile
from streams.monitoring.summaries import Summary, SummaryWindows

MODEL, REGRESSOR, PREFIX = "churn", "demand", "ms"
WINDOW_MS = 60_000
HOUR = 3_600_000
ATTRIBUTES = ("sex",)
POSITIVE = "True"
JSON = {"content-type": b"application/json"}


def training_frame(version: int, n: int = 2_000) -> pd.DataFrame:
    """The training data of ``version``: numeric age, spend, tenure; categorical plan,
    mobile (booleans), member (text) and sex."""
    rng = np.random.default_rng(version)
    return pd.DataFrame({
        "age": rng.normal(40 + 3 * version, 11, n),
        "spend": rng.gamma(2.0, 30.0, n),
        "tenure": rng.integers(0, 4, n),  # few values: the quantiles are edges
        "plan": rng.choice(["basic", "pro", "max"], n, p=[0.6, 0.3, 0.1]),
        "mobile": rng.random(n) < 0.4,  # booleans: profiled true / false, logged True / False
        "member": rng.choice(["True", "False"], n),  # text that reads like booleans
        "sex": rng.choice(["f", "m"], n),
    })  # fmt: skip


def metadata_value(model: str, version: int, profile: Mapping[str, Any] | None) -> bytes:
    """A registry ``model_metadata`` record, as ``models register`` writes it."""
    record = sample_record("model_metadata") | {
        "name": model,
        "version": version,
        "created_at": 1_795_000_000_000 + version,
        "reference_profile": None if profile is None else orjson.dumps(profile).decode(),
        "training_data_fingerprint": f"sha256:{version:064x}",
    }
    return codec("model_metadata").encode_avro(record)


@dataclass
class Event:
    """One prediction as the scorer logs it, with the label the producer sends."""

    request_id: str
    ts: int
    partition: int
    version: int
    client: str
    features: dict[str, Any]
    sensitive: dict[str, str]
    champion: str | None  # None: the champion failed
    challenger: str | None  # None: no challenger answer
    label: str | None  # None: never labelled
    label_ts: int = 0
    regression: tuple[float, float] | None = None  # (output, label) of the regressor


@dataclass
class Traffic:
    """The generated events, the summaries the monitor would write, and the references."""

    start: int
    events: list[Event]
    summaries: list[tuple[str, int, Summary]]  # (model, partition, summary)
    references: dict[int, dict[str, Reference]]
    profiles: dict[int, dict[str, Any]]
    joined: list[tuple[int, str, int, str, str, dict[str, str]]] = field(default_factory=list)
    selected: list[tuple[int, str, int, str, dict[str, str]]] = field(default_factory=list)
    regressions: list[tuple[int, float, float]] = field(default_factory=list)


def traffic(seed: int = 7) -> Traffic:
    rng = random.Random(seed)
    start = (int(time.time() * 1000) // HOUR - 5) * HOUR
    profiles = {v: reference_profile(training_frame(v)) for v in (1, 2)}
    references = {v: references_from_profile(p) for v, p in profiles.items()}
    events = []
    for i in range(2_400):
        ts = start + i * 6_000 + rng.randrange(6_000)
        if 2 * HOUR - 15 * 60_000 <= ts - start < 2 * HOUR:
            continue  # the quiet quarter before v2: v1's labels all arrive first
        version = 1 if ts - start < 2 * HOUR else 2
        events.append(_event(rng, i, ts, version))
    out = Traffic(start, events, [], references, profiles)
    _summarise(out)
    return out


def _event(rng: random.Random, i: int, ts: int, version: int) -> Event:
    drifted = i > 1_500
    age: Any = rng.gauss(40 + (12 if drifted else 0), 11)
    age = rng.choice([age, age, age, int(age), None, -400.0, 900.0, float(age)])
    spend: Any = rng.gammavariate(2.0, 30.0 if not drifted else 45.0)
    spend = rng.choice([spend, spend, spend, str(round(spend, 3)), "n/a", None, 1e9])
    plan = rng.choice(["basic", "basic", "pro", "max", "enterprise", None])
    sex = rng.choice(["f", "m", "f"])
    tenure = rng.choice([0, 1, 2, 3, 5, -1, None])
    mobile = rng.random() < (0.6 if drifted else 0.4)
    member = rng.choice(["True", "False", "true", "n/a"])
    features = {"age": age, "spend": spend, "tenure": tenure, "plan": plan, "mobile": mobile,
                "member": member, "sex": sex}  # fmt: skip
    sensitive = {"sex": sex} if rng.random() > 0.05 else {}
    label = rng.choice(["True", "False", None, "True"])
    champion = rng.choice(["True", "False", "False", None] if age is None else ["True", "False"])
    challenger = rng.choice(["True", "False", None]) if rng.random() < 0.8 else None
    y = rng.gauss(20, 5)
    return Event(
        f"r{i}", ts, i % 2, version, rng.choice(["mobile-app", "web", ""]), features,
        sensitive, champion, challenger, label, ts + rng.randrange(3_000, 300_000),
        (y + rng.gauss(0, 2), y),
    )  # fmt: skip


def _summarise(out: Traffic) -> None:
    """Feed every event to the partition's summary windows as ModelWatch does."""
    for partition in (0, 1):
        for version in (1, 2):
            mine = [e for e in out.events if e.partition == partition and e.version == version]
            _watch(out, partition, version, mine)


def _watch(out: Traffic, partition: int, version: int, events: list[Event]) -> None:
    churn = SummaryWindows(out.references[version], window_ms=WINDOW_MS,
                           positive_label=POSITIVE, version=version)  # fmt: skip
    demand = SummaryWindows({}, window_ms=WINDOW_MS, version=version)
    steps = sorted(
        [(e.ts, 0, e) for e in events] + [(e.label_ts, 1, e) for e in events if e.label],
        key=lambda step: (step[0], step[1]),
    )
    emitted: list[tuple[str, Summary]] = []
    for ts, kind, e in steps:
        roles = (("champion", e.version, e.champion), ("challenger", 3, e.challenger))
        if kind == 0:
            emitted += [(MODEL, s) for s in churn.on_features(e.features, ts)]
            churn.on_latency(5.0 + ts % 7)
            for role, v, output in roles:
                if output is not None:
                    churn.on_selection(role, v, e.sensitive, output, ATTRIBUTES)
                    out.selected.append((ts, role, v, output, e.sensitive))
            continue
        for role, v, output in roles:
            if output is not None:
                closed = churn.on_joined(ts, role, v, output, e.label, e.sensitive, ATTRIBUTES)
                emitted += [(MODEL, s) for s in closed]
                out.joined.append((ts, role, v, output, str(e.label), e.sensitive))
        assert e.regression is not None
        emitted += [(REGRESSOR, s) for s in demand.on_joined(ts, "champion", e.version,
                                                             *e.regression, {}, ())]  # fmt: skip
        out.regressions.append((ts, *e.regression))
    emitted += [(MODEL, s) for s in churn.flush()] + [(REGRESSOR, s) for s in demand.flush()]
    out.summaries += [(model, partition, s) for model, s in emitted]


# -- landing: the sink's row mapping, into the real engine ------------------------------


def land(warehouse: Warehouse, data: Traffic) -> None:
    """Every record through the sink's landing of its topic, then one insert per table."""
    batches: dict[str, list[tuple[Any, ...]]] = {}

    def add(kind: str, topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> None:
        landing = TABLES[kind]
        for offset, (key, value) in enumerate(values):
            rows = landing.rows(value, Position(topic, 0, offset, key, JSON))
            batches.setdefault(landing.table, []).extend(rows)

    add("_models", f"{PREFIX}._models", _registry(data))
    add("predictions", f"{PREFIX}.{MODEL}.predictions", _predictions(data.events))
    add("feedback", f"{PREFIX}.{MODEL}.feedback", _labels(data.events))
    summaries = [orjson.dumps(s.to_record(model=m, partition=p)) for m, p, s in data.summaries]
    add("summaries", f"{PREFIX}.summaries", ((None, value) for value in summaries))
    for table, rows in batches.items():
        columns = next(t.columns for t in TABLES.values() if t.table == table)
        warehouse.insert(table, rows, list(columns))
    # landed again by a later insert (a monitor that reprocessed its input): counts once
    again = TABLES["summaries"].rows(
        summaries[0], Position(f"{PREFIX}.summaries", 1, 0, None, JSON)
    )
    warehouse.insert("window_summaries", again, list(TABLES["summaries"].columns))


def _registry(data: Traffic) -> Iterable[tuple[bytes, bytes]]:
    for version, profile in data.profiles.items():
        yield f"{MODEL}/{version}/chunk/0".encode(), b"\x00" * 64  # an artifact chunk: skipped
        yield f"{MODEL}/{version}".encode(), metadata_value(MODEL, version, profile)
    yield f"{MODEL}/3".encode(), metadata_value(MODEL, 3, None)  # no profile: no rows


def _predictions(events: Sequence[Event]) -> Iterable[tuple[bytes, bytes]]:
    template = sample_record("prediction_log")
    for e in events:
        challenger = None if e.challenger is None else {
            "version": 3, "output": e.challenger, "probabilities": None, "latency_ms": 1.0,
            "error": None, "skipped": None,
        }  # fmt: skip
        champion = {
            "version": e.version, "output": e.champion, "probabilities": None,
            "latency_ms": 2.0, "skipped": None,
            "error": None if e.champion else {"code": "x", "message": "failed", "stage": "p"},
        }  # fmt: skip
        record = template | {
            "request_id": e.request_id, "model": MODEL, "ts": e.ts, "client_id": e.client or None,
            "features": e.features, "sensitive": e.sensitive, "champion": champion,
            "challenger": challenger, "backup": None, "latency_ms": 5.0,
        }  # fmt: skip
        yield e.request_id.encode(), orjson.dumps(record)


def _labels(events: Sequence[Event]) -> Iterable[tuple[bytes, bytes]]:
    for e in events:
        if e.label is not None:
            label = {"request_id": e.request_id, "model": MODEL, "label": e.label == "True",
                     "ts": e.label_ts, "source": "tests"}  # fmt: skip
            yield e.request_id.encode(), orjson.dumps(label)
