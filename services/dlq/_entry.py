"""One DLQ entry as read back from ``<prefix>.<model>.dlq``, and what a re-drive sends.

An entry is the refused request's original key, value and headers plus the ``ms-*``
headers the refusing stage added (:func:`streams.scoring.envelope.dlq_headers`; the
gateway adds the same names). A re-drive sends the key, the value and the original
headers back, minus every ``ms-*`` header, with ``request-id`` set to the id the request
was refused under (``ms-request-id``), so the scorer answers it under the same id, and an
``ms-redrive-of`` header naming the entry, which a second refusal carries into the DLQ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

__all__ = ["DlqEntry", "Headers", "Position", "parse_position", "preview", "redrive_headers"]

Headers = list[tuple[str, bytes | None]]
REDRIVE_OF = "ms-redrive-of"
_POSITION = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)\[(?P<partition>\d+)\]@(?P<offset>\d+)$")


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where an entry is: ``topic[partition]@offset``.

    >>> str(Position("ms.iris.dlq", 2, 17))
    'ms.iris.dlq[2]@17'
    """

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def parse_position(text: str) -> Position | None:
    """A ``topic[partition]@offset`` position, or None if ``text`` is not one (it may
    then be a request id).

    >>> parse_position("ms.iris.dlq[0]@42")
    Position(topic='ms.iris.dlq', partition=0, offset=42)
    >>> parse_position("r-42") is None
    True
    """
    match = _POSITION.match(text.strip())
    if match is None:
        return None
    return Position(match["topic"], int(match["partition"]), int(match["offset"]))


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """One DLQ message. ``value`` is None when it was read for a listing only."""

    position: Position
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    size: int
    headers: Headers

    def header(self, name: str) -> str:
        """The last header called ``name`` as text ('' when absent or null).

        >>> entry = DlqEntry(Position("t", 0, 1), 0, None, b"", 0,
        ...                  [("ms-reason", b"wrong_type"), ("x", None)])
        >>> entry.header("ms-reason"), entry.header("x"), entry.header("nope")
        ('wrong_type', '', '')
        """
        found: bytes | None = None
        for key, raw in self.headers:
            if key == name:
                found = raw
        return _text(found)

    @property
    def model(self) -> str:
        """The model of the DLQ topic (``<prefix>.<model>.dlq``)."""
        return self.position.topic.rsplit(".", 2)[-2]

    @property
    def reason(self) -> str:
        return self.header("ms-reason")

    @property
    def stage(self) -> str:
        return self.header("ms-stage")

    @property
    def request_id(self) -> str:
        return self.header("ms-request-id") or self.header("request-id")

    @property
    def client_id(self) -> str:
        return self.header("client-id")

    @property
    def truncated(self) -> bool:
        """The DLQ kept only the first bytes of the request (``ms-truncated``)."""
        return bool(self.header("ms-truncated"))


def redrive_headers(entry: DlqEntry) -> Headers:
    """The headers a re-drive sends: the original ones, minus the DLQ's ``ms-*`` headers,
    with ``request-id`` set to the id it was refused under and ``ms-redrive-of``.

    >>> entry = DlqEntry(Position("ms.m.dlq", 0, 5), 0, None, b"{}", 2, [
    ...     ("content-type", b"application/json"), ("client-id", b"app"),
    ...     ("reply-to", b"ms.m.replies"), ("ms-reason", b"unknown_model"),
    ...     ("ms-stage", b"route"), ("ms-error", b"..."), ("ms-request-id", b"r-1")])
    >>> redrive_headers(entry)  # doctest: +NORMALIZE_WHITESPACE
    [('content-type', b'application/json'), ('client-id', b'app'),
     ('reply-to', b'ms.m.replies'), ('request-id', b'r-1'),
     ('ms-redrive-of', b'ms.m.dlq[0]@5')]
    """
    kept = [(k, v) for k, v in entry.headers if not k.startswith("ms-") and k != "request-id"]
    if entry.request_id:
        kept.append(("request-id", entry.request_id.encode()))
    kept.append((REDRIVE_OF, str(entry.position).encode()))
    return kept


def preview(value: bytes, limit: int = 4000) -> str:
    """The original bytes for a reader: indented JSON if they parse, else the text with
    escapes (Avro, binary), cut at ``limit`` characters.

    >>> print(preview(b'{"x0": 1.5}'))
    {
      "x0": 1.5
    }
    >>> preview(b"\\xc3\\x01\\x00ab")
    "b'\\\\xc3\\\\x01\\\\x00ab'"
    """
    try:
        text = orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(value)} bytes in all; --raw writes them)"
    return text
