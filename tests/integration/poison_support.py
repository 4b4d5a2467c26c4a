"""Hostile records for the poison suite (issue 12), deterministic per seed.

Each stage reads its own wire format, so each has its own generators; all of them return
:class:`Record` (what a producer sends: topic model, key, value, headers, timestamp) and
say whether the stage must refuse the record (``bad``: DLQ, with a reason) or serve it
(``bad`` False: answered or landed exactly once, whatever odd envelope it came in).

The kinds (``KINDS``), per the issue::

    random_bytes       bytes from a PRNG, no content type
    truncated_avro     a valid single-object Avro message cut short
    wrong_fingerprint  valid Avro of another schema (or the right body, another fingerprint)
    null_headers       a valid value whose headers are all null (content type sniffed)
    binary_headers     a valid value with non-UTF-8 bytes in client-id, request-id, x-trace
    huge_ts            a timestamp beyond year 2299 (value ``ts``; Kafka's own where no ts)
    negative_ts        a timestamp before 1900 (value ``ts``; Kafka's own: a valid value)
    oversize           a value above the codec's 1 MiB limit
    invalid_utf8       JSON / Avro strings with bytes that are not UTF-8
    deep_json          JSON nested 300 to 100,000 levels deep
    unknown_model      a valid record on the topic of a model nobody registered
    bad_reply_to       a valid request whose ``reply-to`` may not be written (scorer only)

Oversized records are few (``OVERSIZE_COUNT``): thousands of megabyte records would be
gigabytes through one test broker.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastavro
import orjson

from schemas.codec import MAGIC, Codec
from schemas.contracts import codec_for
from services.synthetic import input_schema, rows

__all__ = [
    "GHOST",
    "KINDS",
    "LOG_KINDS",
    "OVERSIZE_COUNT",
    "REQUEST_SCHEMA",
    "Record",
    "count_of",
    "dlq_entries",
    "feedback_poison",
    "good_feedback",
    "good_predictions",
    "good_requests",
    "good_summaries",
    "prediction",
    "prediction_poison",
    "request_poison",
    "shuffled",
    "summary",
    "summary_poison",
]

KINDS = (
    "random_bytes", "truncated_avro", "wrong_fingerprint", "null_headers", "binary_headers",
    "huge_ts", "negative_ts", "oversize", "invalid_utf8", "deep_json", "unknown_model",
    "bad_reply_to",
)  # fmt: skip
GHOST = "ghost"  # the model nobody registered
OVERSIZE_COUNT = 8
OVERSIZE_BYTES = 1_300_000  # above the codec's default max_bytes (1 MiB), below the broker's
T0 = 1_780_000_000_000  # event time of the good log records (2026-05-28: not ahead of a clock)
MAX_TS = 10_413_792_000_000  # 2300-01-01, the first instant ClickHouse's DateTime64 refuses
MIN_TS = -2_208_988_800_000  # 1900-01-01
JSON_CT = ("content-type", b"application/json")
AVRO_CT = ("content-type", b"application/avro")

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Record:
    """One message to produce: ``model`` names the topic's model (``<prefix>.<model>.<kind>``),
    ``timestamp`` 0 means the producer's clock."""

    kind: str
    key: bytes
    value: bytes
    headers: Headers
    timestamp: int
    model: str
    bad: bool
    stream: str = "requests"  # requests | predictions | feedback | dlq | summaries
    kafka_key: bytes | None = None  # the message key when it is not ``key`` (summaries: model)

    @property
    def ident(self) -> tuple[str, bytes]:
        """Unique in a suite: the stream and the key (which, for the logs, is the request id)."""
        return self.stream, self.key


def shuffled(records: list[Record], seed: int) -> list[Record]:
    """``records`` in a random order fixed by ``seed``."""
    out = list(records)
    random.Random(seed).shuffle(out)
    return out


def count_of(kind: str, n: int) -> int:
    """How many records of ``kind`` a suite of ``n`` per kind sends."""
    return min(n, OVERSIZE_COUNT) if kind == "oversize" else n


# -- shared hostile bytes --------------------------------------------------------------


def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 600))


def _deep_json(rng: random.Random) -> bytes:
    # past orjson's 1,024 levels and below them; 100,000 levels (200-600 kB) now and then
    depth = 100_000 if rng.random() < 0.02 else rng.choice((64, 300, 1_025, 5_000))
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _binary(rng: random.Random) -> bytes:
    return bytes([0xFF, 0xFE, 0xC3]) + rng.randbytes(rng.randint(0, 40))


def _binary_headers(rng: random.Random, content_type: tuple[str, bytes]) -> Headers:
    return [content_type, ("client-id", _binary(rng)), ("request-id", _binary(rng)),
            ("x-trace", _binary(rng)), ("x-empty", b"")]  # fmt: skip


def _null_headers() -> Headers:
    return [("content-type", None), ("client-id", None), ("reply-to", None),
            ("request-id", None), ("x-null", None)]  # fmt: skip


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randint(1, len(data) - 1)]


_OTHER = Codec({"type": "record", "name": "Other", "fields": [{"name": "a", "type": "long"}]})


def _wrong_fingerprint(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return _OTHER.encode_avro({"a": rng.randint(-(2**40), 2**40)})
    fingerprint = bytearray(data[2:10])
    fingerprint[rng.randrange(8)] ^= 1 + rng.randrange(255)
    return MAGIC + bytes(fingerprint) + data[10:]


def _avro_raw(codec: Codec, record: dict[str, Any]) -> bytes:
    """Single-object Avro written by fastavro, no validation (strings as given)."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(codec.schema), record)
    return MAGIC + codec.fingerprint + body.getvalue()


def _avro_bad_string(codec: Codec, record: dict[str, Any], field: str) -> bytes:
    """``record`` as Avro, then one string field's bytes replaced by invalid UTF-8 of the
    same length (the length prefix still holds)."""
    marker = "\x01" * 6
    data = _avro_raw(codec, record | {field: marker})
    return data.replace(marker.encode(), b"\xff\xfe\xc3\x28\xa0\xa1", 1)


# -- requests (the scorer) ---------------------------------------------------------------


REQUEST_SCHEMA = input_schema()


def good_requests(n: int, seed: int, model: str) -> list[Record]:
    """Valid requests keyed ``g<i>``, every third as JSON, the rest Avro."""
    codec = Codec(REQUEST_SCHEMA)
    out = []
    for i, row in enumerate(rows(n, seed=seed)):
        if i % 3 == 0:
            value, headers = orjson.dumps(row), [JSON_CT, ("client-id", b"poison-suite")]
        else:
            value, headers = codec.encode_avro(row), [AVRO_CT, ("client-id", b"poison-suite")]
        out.append(Record("good", f"g{i}".encode(), value, list(headers), 0, model, False))
    return out


def request_poison(kind: str, n: int, seed: int, model: str, forbidden: list[str]) -> list[Record]:
    """``n`` requests of ``kind`` for ``model``; ``forbidden`` are reply-to topics the scorer
    must refuse (a requests topic, an internal topic, a missing one)."""
    rng = random.Random(f"{seed}-{kind}")
    codec = Codec(REQUEST_SCHEMA)
    make = _REQUESTS[kind]
    out = []
    for i, row in enumerate(rows(count_of(kind, n), seed=seed + 1)):
        value, headers, ts, target, bad = make(rng, codec, row, model, forbidden)
        out.append(Record(kind, f"{kind}-{i}".encode(), value, headers, ts, target, bad))
    return out


RequestMaker = Callable[
    [random.Random, Codec, dict[str, Any], str, list[str]],
    tuple[bytes, Headers, int, str, bool],
]


def _req_random(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    return _random_bytes(rng), [], 0, model, True


def _req_truncated(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                   forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    headers: Headers = [AVRO_CT] if rng.random() < 0.5 else []
    return _truncate(codec.encode_avro(row), rng), headers, 0, model, True


def _req_fingerprint(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                     forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    return _wrong_fingerprint(codec.encode_avro(row), rng), [AVRO_CT], 0, model, True


def _req_null_headers(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                      forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    value = codec.encode_avro(row) if rng.random() < 0.5 else orjson.dumps(row)
    return value, _null_headers(), 0, model, False


def _req_binary_headers(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                        forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    if rng.random() < 0.5:
        return codec.encode_avro(row), _binary_headers(rng, AVRO_CT), 0, model, False
    return orjson.dumps(row), _binary_headers(rng, JSON_CT), 0, model, False


def _req_huge_ts(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                 forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    # a request's value has no ts, so its Kafka timestamp is the one to bend; Kafka 4
    # refuses one more than an hour ahead (log.message.timestamp.after.max.ms) with
    # INVALID_TIMESTAMP, and the whole batch with it: 50 minutes ahead is what gets through
    ahead = rng.randint(1, 50 * 60_000)
    return codec.encode_avro(row), [AVRO_CT], int(time.time() * 1e3) + ahead, model, False


def _req_negative_ts(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                     forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    # the broker refuses a negative timestamp (other than -1, "none"): the oldest it takes
    return orjson.dumps(row), [JSON_CT], rng.choice((1, 1_000, 86_400_000)), model, False


def _req_oversize(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                  forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    padded = orjson.dumps(row)[:-1] + b', "pad": "' + b"x" * OVERSIZE_BYTES + b'"}'
    return padded, [JSON_CT], 0, model, True


def _req_invalid_utf8(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                      forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    if rng.random() < 0.5:
        return _avro_bad_string(codec, row, "group"), [AVRO_CT], 0, model, True
    text = orjson.dumps(row | {"group": "\x01\x01"}).replace(b"\\u0001\\u0001", b"\xff\xc3\x28")
    return text, [JSON_CT], 0, model, True


def _req_deep_json(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                   forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    return _deep_json(rng), [JSON_CT], 0, model, True


def _req_unknown_model(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                       forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    return orjson.dumps(row), [JSON_CT], 0, GHOST, True


def _req_bad_reply_to(rng: random.Random, codec: Codec, row: dict[str, Any], model: str,
                      forbidden: list[str]) -> tuple[bytes, Headers, int, str, bool]:  # fmt: skip
    target = rng.choice([*forbidden, "__consumer_offsets", "no such topic!", "x" * 300])
    reply_to = target.encode() if rng.random() < 0.8 else _binary(rng)
    return codec.encode_avro(row), [AVRO_CT, ("reply-to", reply_to)], 0, model, True


_REQUESTS: dict[str, RequestMaker] = {
    "random_bytes": _req_random, "truncated_avro": _req_truncated,
    "wrong_fingerprint": _req_fingerprint, "null_headers": _req_null_headers,
    "binary_headers": _req_binary_headers, "huge_ts": _req_huge_ts,
    "negative_ts": _req_negative_ts, "oversize": _req_oversize,
    "invalid_utf8": _req_invalid_utf8, "deep_json": _req_deep_json,
    "unknown_model": _req_unknown_model, "bad_reply_to": _req_bad_reply_to,
}  # fmt: skip


# -- prediction logs and feedback (the monitor, the sink) ---------------------------------

LOG_KINDS = tuple(k for k in KINDS if k != "bad_reply_to")  # no reply to make


def prediction(i: int, row: dict[str, Any], model: str = "m") -> dict[str, Any]:
    """A prediction-log record as the scorer writes it (champion only)."""
    features = {k: v for k, v in row.items()}
    return {
        "request_id": f"g{i}", "model": model, "ts": T0 + i, "client_id": "poison-suite",
        "source_topic": f"x.{model}.requests", "source_partition": 0, "source_offset": i,
        "features": features,
        "champion": {"version": 1, "output": "True", "probabilities": {"True": 0.7, "False": 0.3},
                     "latency_ms": 0.05, "error": None, "skipped": None},
        "challenger": None, "served_by": "champion", "backup": None,
        "schema_fingerprint": "f", "training_data_fingerprint": "t",
        "sensitive": {"group": row["group"]}, "latency_ms": 0.1,
    }  # fmt: skip


def good_predictions(n: int, seed: int, model: str = "m") -> list[Record]:
    """Valid prediction logs keyed ``g<i>`` (request id), JSON as the scorer writes them."""
    out = []
    for i, row in enumerate(rows(n, seed=seed)):
        value = orjson.dumps(prediction(i, row, model))
        out.append(Record("good", f"g{i}".encode(), value, [JSON_CT], 0, model, False,
                          "predictions"))  # fmt: skip
    return out


def good_feedback(n: int, model: str = "m") -> list[Record]:
    """Labels for ``g0`` ... ``g<n-1>``, Avro and JSON alternately."""
    codec = codec_for("feedback")
    out = []
    for i in range(n):
        label = {"request_id": f"g{i}", "model": model, "label": "True" if i % 3 else "False",
                 "ts": T0 + i + 1_000, "source": "poison-suite"}  # fmt: skip
        if i % 2:
            value, headers = codec.encode_avro(label), [AVRO_CT]
        else:
            value, headers = orjson.dumps(label), [JSON_CT]
        out.append(Record("good", f"g{i}".encode(), value, list(headers), 0, model, False,
                          "feedback"))  # fmt: skip
    return out


def prediction_poison(kind: str, n: int, seed: int, model: str = "m") -> list[Record]:
    """``n`` prediction-log records of ``kind``. ``bad`` is the contract's view: the record
    cannot be read, or its ``ts`` is outside 1900-2299; ``unknown_model`` is well formed
    (``bad`` False: the sink lands it, the monitor cannot watch it), and so is an oversized
    one (the scorer writes log records up to 8 MiB)."""
    return _log_poison(kind, n, seed, model, "predictions", _prediction_value)


def feedback_poison(kind: str, n: int, seed: int, model: str = "m") -> list[Record]:
    """``n`` feedback records of ``kind`` (as :func:`prediction_poison`)."""
    return _log_poison(kind, n, seed, model, "feedback", _feedback_value)


def _prediction_value(i: int, row: dict[str, Any], model: str, rid: str) -> dict[str, Any]:
    return prediction(i, row, model) | {"request_id": rid}


def _feedback_value(i: int, row: dict[str, Any], model: str, rid: str) -> dict[str, Any]:
    return {"request_id": rid, "model": model, "label": "True", "ts": T0 + i,
            "source": "poison-suite"}  # fmt: skip


def _log_poison(
    kind: str, n: int, seed: int, model: str, stream: str,
    value_of: Callable[[int, dict[str, Any], str, str], dict[str, Any]],
) -> list[Record]:  # fmt: skip
    """The request id of each record is its key, so a landed row names its record."""
    codec = codec_for("prediction_log" if stream == "predictions" else "feedback")
    rng = random.Random(f"{seed}-{kind}-{stream}")
    out = []
    for i, row in enumerate(rows(count_of(kind, n), seed=seed + 2)):
        key = f"{kind}-{i}"
        record = value_of(i, row, model, key)
        value, headers, target, bad = _log_value(kind, rng, codec, record, model, stream)
        out.append(Record(kind, key.encode(), value, headers, 0, target, bad, stream))
    return out


def _log_value(
    kind: str, rng: random.Random, codec: Codec, record: dict[str, Any], model: str,
    stream: str,
) -> tuple[bytes, Headers, str, bool]:  # fmt: skip
    as_json = orjson.dumps(record)
    if kind == "random_bytes":
        return _random_bytes(rng), [], model, True
    if kind == "truncated_avro":
        return _truncate(codec.encode_avro(record), rng), [AVRO_CT], model, True
    if kind == "wrong_fingerprint":
        return _wrong_fingerprint(codec.encode_avro(record), rng), [AVRO_CT], model, True
    if kind == "null_headers":
        value = codec.encode_avro(record) if rng.random() < 0.5 else as_json
        return value, _null_headers(), model, False
    if kind == "binary_headers":
        return as_json, _binary_headers(rng, JSON_CT), model, False
    if kind in ("huge_ts", "negative_ts"):
        ts = rng.randint(MAX_TS, 2**62) if kind == "huge_ts" else rng.randint(-(2**62), MIN_TS - 1)
        if rng.random() < 0.5:
            return codec.encode_avro(record | {"ts": ts}), [AVRO_CT], model, True
        return orjson.dumps(record | {"ts": ts}), [JSON_CT], model, True
    if kind == "oversize":
        # a log record may be as large as the scorer writes (8 MiB less 64 KiB): a request
        # just under the codec's 1 MiB has a log record over it. A label may not (1 MiB).
        value = as_json[:-1] + b',"pad":"' + b"x" * OVERSIZE_BYTES + b'"}'
        return value, [JSON_CT], model, stream == "feedback"
    if kind == "invalid_utf8":
        if rng.random() < 0.5:
            return _avro_bad_string(codec, record, "request_id"), [AVRO_CT], model, True
        marked = orjson.dumps(record | {"request_id": "\x01\x01"})
        return marked.replace(b"\\u0001\\u0001", b"\xff\xc3\x28"), [JSON_CT], model, True
    if kind == "deep_json":
        return _deep_json(rng), [JSON_CT], model, True
    if kind == "unknown_model":
        return (
            as_json.replace(f'"model":"{model}"'.encode(), f'"model":"{GHOST}"'.encode()),
            [JSON_CT],
            GHOST,
            False,
        )
    raise ValueError(f"expected one of {LOG_KINDS}, got {kind!r}")


def dlq_entries(n: int, seed: int, model: str = "m") -> Iterator[Record]:
    """What upstream stages leave on a DLQ topic, at its most hostile: any bytes, headers
    null, binary or nonsense (``ms-source-partition: two``). The sink lands every one."""
    rng = random.Random(f"{seed}-dlq")
    for i in range(n):
        headers: Headers = [
            ("ms-reason", rng.choice((b"malformed", None, _binary(rng)))),
            ("ms-model", model.encode()), ("ms-request-id", f"d{i}".encode()),
            ("ms-source-partition", rng.choice((b"2", b"two", None))),
            ("ms-source-offset", rng.choice((str(i).encode(), _binary(rng)))),
            ("client-id", rng.choice((None, _binary(rng)))),
        ]  # fmt: skip
        yield Record("dlq_entry", f"d{i}".encode(), _random_bytes(rng), headers, 0, model, False,
                     "dlq")  # fmt: skip


# -- window summaries (the merger, the sink) ----------------------------------------------

WINDOW_MS = 60_000


def summary(index: int, model: str = "m") -> dict[str, Any]:
    """A latency summary, the last of its partition for its own window (``index``), which a
    merger merges at once into ``index + 1`` requests."""
    start = T0 + index * WINDOW_MS
    count = index + 1
    return {
        "model": model, "partition": 0, "window_start": start, "window_end": start + WINDOW_MS,
        "kind": "latency", "model_version": None, "role": None, "feature": None, "group": None,
        "counts": [count] + [0] * 11, "stats": {"count": count, "sum": 2.5 * count},
        "last": True,
    }  # fmt: skip


def good_summaries(n: int, first: int = 0) -> list[Record]:
    """Valid summaries of windows ``first`` ... ``first + n - 1``, keyed by model (as the
    monitor keys them)."""
    return [Record("good", f"good-{i}".encode(), orjson.dumps(summary(first + i)), [JSON_CT], 0,
                   "m", False, "summaries", b"m") for i in range(n)]  # fmt: skip


def summary_poison(kind: str, n: int, seed: int, first: int) -> list[Record]:
    """``n`` summaries of ``kind``; the well-formed ones (null or binary headers, a model
    nobody registered: the merger needs no registry to add requests up) each have a window
    of their own from ``first`` on, so a merged window names its record."""
    rng = random.Random(f"{seed}-{kind}-summaries")
    out = []
    for i in range(count_of(kind, n)):
        record = summary(first + i)
        value, headers, bad = _summary_value(kind, rng, record)
        out.append(Record(kind, f"{kind}-{i}".encode(), value, headers, 0, "m", bad, "summaries",
                          b"m"))  # fmt: skip
    return out


def _summary_value(kind: str, rng: random.Random, record: dict[str, Any]
                   ) -> tuple[bytes, Headers, bool]:  # fmt: skip
    as_json = orjson.dumps(record)
    if kind == "random_bytes":
        return _random_bytes(rng), [], True
    if kind == "truncated_avro":  # summaries are JSON: a cut one, behind an Avro header
        return MAGIC + rng.randbytes(8) + _truncate(as_json, rng), [AVRO_CT], True
    if kind == "wrong_fingerprint":  # a metric (Avro) on the summaries topic
        metric = codec_for("metric")
        return metric.encode_avro(_metric_sample()), [AVRO_CT], True
    if kind == "null_headers":
        return as_json, _null_headers(), False
    if kind == "binary_headers":
        return as_json, _binary_headers(rng, JSON_CT), False
    if kind in ("huge_ts", "negative_ts"):
        start = rng.randint(MAX_TS, 2**62) if kind == "huge_ts" else rng.randint(-(2**62), MIN_TS)
        return (
            orjson.dumps(record | {"window_start": start, "window_end": start + 1}),
            [JSON_CT],
            True,
        )
    if kind == "oversize":
        padded = record | {"counts": [1.0] * (OVERSIZE_BYTES // 4)}
        return orjson.dumps(padded), [JSON_CT], True
    if kind == "invalid_utf8":
        marked = orjson.dumps(record | {"model": "\x01\x01"})
        return marked.replace(b"\\u0001\\u0001", b"\xff\xc3\x28"), [JSON_CT], True
    if kind == "deep_json":
        return _deep_json(rng), [JSON_CT], True
    if kind == "unknown_model":
        return orjson.dumps(record | {"model": GHOST}), [JSON_CT], False
    raise ValueError(f"expected one of {LOG_KINDS}, got {kind!r}")


def _metric_sample() -> dict[str, Any]:
    from schemas.contracts import sample_record

    return sample_record("metric")
