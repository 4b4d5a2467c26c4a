"""The request envelope (key, headers) and the three kinds of output a request can make:
a reply, a prediction-log record, or a DLQ entry that keeps the original bytes.

Header names (all optional on requests)::

    content-type   application/avro (single-object) | application/json; sniffed if absent
    reply-to       topic for the reply (default <prefix>.<model>.replies)
    client-id      who sent it; travels into the prediction log
    request-id     the request id (else the message key, else topic-partition-offset)

DLQ entries carry the original value and headers unchanged, plus ``ms-reason``,
``ms-stage``, ``ms-error``, ``ms-source-topic``, ``ms-source-partition``,
``ms-source-offset`` and ``ms-model`` headers, so they can be inspected and replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.codec import AVRO, JSON, MAGIC

__all__ = ["Request", "dlq_headers", "parse_request"]

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class Request:
    """One request message, unpacked once."""

    request_id: str
    key: bytes | None
    value: bytes
    content_type: str
    reply_to: str | None
    client_id: str | None
    headers: Headers
    topic: str
    partition: int
    offset: int


def _text(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


_NAMED = frozenset(("content-type", "reply-to", "client-id", "request-id"))


def parse_request(message: Any) -> Request:
    """Unpack a confluent-kafka message; never raises on odd headers or keys.

    >>> class M:
    ...     def headers(self): return [("content-type", b"application/json")]
    ...     def key(self): return b"r-1"
    ...     def value(self): return b"{}"
    ...     def topic(self): return "p.m.requests"
    ...     def partition(self): return 0
    ...     def offset(self): return 7
    >>> r = parse_request(M()); (r.request_id, r.content_type, r.reply_to)
    ('r-1', 'application/json', None)
    """
    headers: Headers = message.headers() or []
    value = message.value() or b""
    key = message.key()
    content_type = reply_to = client_id = request_id = None
    if headers:
        for name, raw in headers:
            if name in _NAMED:
                text = _text(raw)
                if name == "content-type":
                    content_type = text
                elif name == "reply-to":
                    reply_to = text
                elif name == "client-id":
                    client_id = text
                else:
                    request_id = text
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if not request_id:
        request_id = (key.decode("utf-8", "replace") if type(key) is bytes else _text(key)) or (
            f"{topic}-{partition}-{offset}"
        )
    if content_type is None:
        content_type = AVRO if value[:2] == MAGIC else JSON
    elif content_type != AVRO and content_type != JSON:
        content_type = content_type.split(";")[0].strip().lower()
    return Request(request_id, key, value, content_type, reply_to or None, client_id, headers,
                   topic, partition, offset)  # fmt: skip


def dlq_headers(request: Request, model: str, reason: str, stage: str, message: str) -> Headers:
    """The original headers plus where the request came from and why it was rejected."""
    return [
        *request.headers,
        ("ms-reason", reason.encode()),
        ("ms-stage", stage.encode()),
        ("ms-error", message[:1000].encode()),
        ("ms-model", model.encode()),
        ("ms-request-id", request.request_id.encode()),
        ("ms-source-topic", request.topic.encode()),
        ("ms-source-partition", str(request.partition).encode()),
        ("ms-source-offset", str(request.offset).encode()),
    ]
