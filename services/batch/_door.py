"""The door: every input row checked against the model's input contract, as the scorer
checks a JSON request.

A row becomes the JSON request it would have been (``orjson``; a value JSON cannot hold,
such as a decimal, as its text; a missing float, NaN, as ``null``) and goes through the
same :meth:`Codec.decode_json` the scorer calls: the same rows pass, with the same
values, and the same rows are refused, with the same reason codes. A refused row keeps
those JSON bytes: they are its DLQ entry's payload, replayable as a request.

>>> from schemas.codec import Codec
>>> codec = Codec({"type": "record", "name": "R", "fields": [{"name": "x", "type": "double"}]})
>>> seen = admit(codec, [{"x": 1}, {"x": "a"}, {"x": float("nan")}])
>>> seen.indices, seen.rows
([0], [{'x': 1.0}])
>>> [(r.index, r.reason, r.value) for r in seen.refused]
[(1, 'wrong_type', b'{"x":"a"}'), (2, 'wrong_type', b'{"x":null}')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.codec import Codec, DecodeError

__all__ = ["Admitted", "Refusal", "admit"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One row the contract refused: where, its request bytes, and why."""

    index: int
    value: bytes
    reason: str
    message: str


@dataclass(slots=True)
class Admitted:
    """A chunk after the door: the valid rows (decoded, with their chunk indices and
    request bytes) and the refused ones."""

    indices: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def admit(codec: Codec, records: Sequence[Mapping[str, Any]]) -> Admitted:
    """Split ``records`` into the rows ``codec`` accepts and the refused ones."""
    out = Admitted()
    decode = codec.decode_json
    for i, record in enumerate(records):
        value = orjson.dumps(record, default=str)
        try:
            row = decode(value)
        except DecodeError as exc:
            out.refused.append(Refusal(i, value, exc.reason, str(exc)))
            continue
        out.indices.append(i)
        out.rows.append(row)
        out.values.append(value)
    return out
