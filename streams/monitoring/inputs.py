"""What the monitor and the merger read of a record, checked before any state moves.

Both read records nobody vouches for: any producer with write access to a model's topics
or to ``<prefix>.summaries`` can send anything. A record passes these checks, or it is
refused with the codec's reason (:mod:`schemas.codec`) and never reaches a watch or a
table:

- :func:`check_prediction`: a prediction-log record has the fields the watch reads, of
  the types it reads them as (JSON prediction logs are not checked by their codec: the
  scorer writes them, and checking all of one costs more than the monitor's whole work on
  it). Fields the watch does not read are left to the sink, which lands them.
- :func:`check_ts`: a timestamp ClickHouse's ``DateTime64(3)`` can store, 1900-2299
  (:data:`MIN_MILLIS` ... :data:`MAX_MILLIS`, the sink's bounds), else
  :class:`BadTimestampError` (``bad_timestamp``): the sink refuses the same records.
- :func:`read_summary`: a window summary is at most :data:`MAX_SUMMARY_BYTES`, a JSON
  object with the fields :meth:`Summary.from_record` and the merger read, each of its
  type, its counts and stats finite numbers and its window inside 1900-2299.

Examples
--------
>>> check_ts(1_700_000_000_000)
>>> check_ts(10**18)
Traceback (most recent call last):
streams.monitoring.errors.BadTimestampError: field 'ts': expected a time in 1900-2299 \
(ms since 1970), got 1000000000000000000
>>> check_prediction({"request_id": "r1", "ts": 5, "features": [], "champion": {}})
Traceback (most recent call last):
schemas.codec.WrongTypeError: field 'features': expected an object, got list
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from schemas.codec import (
    MalformedError,
    MissingFieldError,
    NotFiniteError,
    OversizeError,
    WrongTypeError,
)
from schemas.timestamps import MAX_MILLIS, MIN_MILLIS
from streams.kafka import MODEL_NAME
from streams.monitoring.errors import BadTimestampError

__all__ = [
    "MAX_MILLIS",
    "MAX_SUMMARY_BYTES",
    "MAX_TEXT",
    "MIN_MILLIS",
    "SUMMARY_KINDS",
    "check_prediction",
    "check_ts",
    "read_summary",
]

#: what ClickHouse's DateTime64(3) holds, 1900-01-01 to 2299-12-31 (services/sink/landing.py
#: refuses the same records)
#: the codec's default limit (schemas.codec.Codec.max_bytes): a summary is far smaller
MAX_SUMMARY_BYTES: Final = 1_048_576
#: a feature, group or role name longer than this is no name (it would end up in table
#: keys and alert messages)
MAX_TEXT: Final = 1_024
#: the kinds of streams.monitoring.summaries
SUMMARY_KINDS: Final = frozenset(
    {"numeric", "categorical", "classification", "regression", "fairness", "latency"}
)


def check_ts(ts: object, field: str = "ts") -> None:
    """``ts`` is a whole number of ms ClickHouse can store, else the codec's error."""
    if type(ts) is not int:
        raise WrongTypeError(f"expected a whole number of ms, got {_shown(ts)}", field=field)
    if not MIN_MILLIS <= ts <= MAX_MILLIS:
        raise BadTimestampError(f"expected a time in 1900-2299 (ms since 1970), got {ts}",
                                field=field)  # fmt: skip


def check_prediction(record: Mapping[str, Any]) -> None:
    """The fields of a prediction-log record the watch reads: ``request_id`` a string,
    ``ts`` (:func:`check_ts`), ``features`` an object, ``champion`` an object with an int
    ``version``, ``challenger`` null or such an object, ``sensitive`` null or an object of
    strings. A few dict look-ups: the monitor's per-record cost stays flat.

    >>> good = {"request_id": "r1", "ts": 5, "features": {}, "champion": {"version": 1}}
    >>> check_prediction(good)
    >>> check_prediction(good | {"challenger": {"version": "2"}})
    Traceback (most recent call last):
    schemas.codec.WrongTypeError: field 'challenger.version': expected int, got str
    >>> check_prediction({"a": {"a": 1}})
    Traceback (most recent call last):
    schemas.codec.MissingFieldError: field 'request_id': expected a prediction-log \
record (the scorer's), which has it
    """
    try:
        request_id, ts = record["request_id"], record["ts"]
        features, champion = record["features"], record["champion"]
    except KeyError as exc:
        raise MissingFieldError("expected a prediction-log record (the scorer's), which has it",
                                field=str(exc.args[0])) from None  # fmt: skip
    if type(request_id) is not str:
        raise WrongTypeError(f"expected a string, got {_shown(request_id)}", field="request_id")
    check_ts(ts)
    if type(features) is not dict:
        raise WrongTypeError(f"expected an object, got {_shown(features)}", field="features")
    _check_outcome(champion, "champion")
    if (challenger := record.get("challenger")) is not None:
        _check_outcome(challenger, "challenger")
    if (sensitive := record.get("sensitive")) is not None:
        if type(sensitive) is not dict:
            raise WrongTypeError(f"expected an object, got {_shown(sensitive)}", field="sensitive")
        for name, value in sensitive.items():
            if type(value) is not str:
                raise WrongTypeError(f"expected a string, got {_shown(value)}",
                                     field=f"sensitive[{name}]")  # fmt: skip


def _check_outcome(outcome: object, field: str) -> None:
    if type(outcome) is not dict:
        raise WrongTypeError(f"expected an object, got {_shown(outcome)}", field=field)
    if "version" not in outcome:
        raise MissingFieldError("expected the model version that answered",
                                field=f"{field}.version")  # fmt: skip
    if type(outcome["version"]) is not int:
        raise WrongTypeError(f"expected int, got {_shown(outcome['version'])}",
                             field=f"{field}.version")  # fmt: skip


def read_summary(value: bytes) -> dict[str, Any]:
    """The summary record in ``value``, checked (see the module docstring); the codec's
    error (``oversize``, ``malformed``, ``missing_field``, ``wrong_type``, ``not_finite``,
    ``bad_timestamp``) for one the merger must not take.

    >>> record = {"model": "m", "partition": 0, "window_start": 0, "window_end": 60_000,
    ...           "kind": "latency", "counts": [1, 0], "stats": {"count": 1, "sum": 2.5}}
    >>> read_summary(orjson.dumps(record))["kind"]
    'latency'
    >>> read_summary(orjson.dumps(record | {"counts": ["1"]}))
    Traceback (most recent call last):
    schemas.codec.WrongTypeError: field 'counts[0]': expected a number, got str
    """
    if len(value) > MAX_SUMMARY_BYTES:
        raise OversizeError(f"expected a summary of at most {MAX_SUMMARY_BYTES} bytes, got "
                            f"{len(value)}")  # fmt: skip
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"expected a JSON object, got bytes that are not JSON: {exc}"
                             ) from None  # fmt: skip
    if type(record) is not dict:
        raise WrongTypeError(f"expected a JSON object, got {_shown(record)}")
    _check_summary(record)
    return record


def _check_summary(record: dict[str, Any]) -> None:
    for name in ("model", "partition", "window_start", "window_end", "kind"):
        if name not in record:
            raise MissingFieldError("expected a window summary (the monitor's), which has it",
                                    field=name)  # fmt: skip
    model, kind = record["model"], record["kind"]
    if type(model) is not str or not MODEL_NAME.match(model):
        raise WrongTypeError(f"expected a model name ({MODEL_NAME.pattern}), got "
                             f"{_shown(model)}", field="model")  # fmt: skip
    if kind not in SUMMARY_KINDS:
        raise WrongTypeError(f"expected one of {sorted(SUMMARY_KINDS)}, got {_shown(kind)}",
                             field="kind")  # fmt: skip
    for name in ("partition", "model_version"):
        found = record.get(name)
        if found is not None and type(found) is not int:
            raise WrongTypeError(f"expected int, got {_shown(found)}", field=name)
    check_ts(record["window_start"], "window_start")
    check_ts(record["window_end"], "window_end")
    for name in ("feature", "group", "role"):
        text = record.get(name)
        if text is not None and (type(text) is not str or len(text) > MAX_TEXT):
            raise WrongTypeError(f"expected a name of at most {MAX_TEXT} characters, got "
                                 f"{_shown(text)}", field=name)  # fmt: skip
    if type(record.get("last", False)) is not bool:
        raise WrongTypeError(f"expected a boolean, got {_shown(record['last'])}", field="last")
    _check_numbers(record.get("counts") or [], "counts")
    stats = record.get("stats") or {}
    if type(stats) is not dict:
        raise WrongTypeError(f"expected an object, got {_shown(stats)}", field="stats")
    _check_numbers(list(stats.values()), "stats", names=list(stats))


def _check_numbers(values: object, field: str, names: list[str] | None = None) -> None:
    if type(values) is not list:
        raise WrongTypeError(f"expected an array of numbers, got {_shown(values)}", field=field)
    for i, number in enumerate(values):
        where = f"{field}[{names[i] if names else i}]"
        if type(number) not in (int, float):
            raise WrongTypeError(f"expected a number, got {_shown(number)}", field=where)
        if not math.isfinite(number):
            raise NotFiniteError(f"expected a finite number, got {number}", field=where)


def _shown(value: object) -> str:
    """A value's type as the errors name it (``str``, ``list``), its text when short."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return type(value).__name__
