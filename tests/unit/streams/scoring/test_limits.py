"""Output sizes against topic limits, and which reply-to topics a client may name."""

from __future__ import annotations

import pytest

from streams.scoring.limits import TopicLimits, record_size
from streams.scoring.reply_to import KnownTopics, reply_topic_pattern


def test_record_size_bounds_what_the_broker_counts() -> None:
    headers = [("content-type", b"application/json"), ("request-id", b"r-1")]
    plain = record_size(b"r-1", b"x" * 1_000, headers)
    # value, key and every header byte count, plus a batch header and record framing
    assert plain >= 1_000 + 3 + len("content-type") + 16 + len("request-id") + 3 + 61
    assert plain - (1_000 + 3 + 12 + 16 + 10 + 3) <= 61 + 36 + 2 * 10
    assert record_size(None, b"", [("h", None)]) == record_size(None, b"", []) + 10 + 1


def test_a_topic_is_described_once_and_capped_by_the_producer() -> None:
    described: list[str] = []

    def describe(topic: str) -> int | None:
        described.append(topic)
        return {"small": 1_000, "huge": 10**9}.get(topic)

    limits = TopicLimits(describe, producer_max=50_000)
    assert limits.limit("small") == 1_000
    assert limits.limit("huge") == 50_000  # the producer refuses more than its own limit
    assert limits.limit("unknown") == 50_000  # not describable: the producer's limit
    for _ in range(3):
        assert not limits.fits("small", None, b"x" * 1_000, [])
    assert described == ["small", "huge", "unknown"]
    limits.forget("small")  # a produce to it was refused: look again
    assert limits.fits("small", None, b"x" * 800, [])
    assert described[-1] == "small"


@pytest.mark.parametrize(("topic", "allowed"), [
    ("p.iris.replies", True),
    ("p.gateway-3.replies", True),
    ("p.iris.requests", False),
    ("p.iris.predictions", False),
    ("p.iris.dlq", False),
    ("p._models", False),
    ("p._routing.replies", True),  # a model may be named _routing: its replies are fair
    ("__consumer_offsets", False),
    ("q.iris.replies", False),
    ("p.iris.replies.x", False),
    ("pxiris.replies", False),
    ("p.a.b.replies", False),
])  # fmt: skip
def test_reply_to_names_only_a_reply_topic_of_the_prefix(topic: str, allowed: bool) -> None:
    assert (reply_topic_pattern("p").match(topic) is not None) is allowed


def test_known_topics_expire_and_can_be_forgotten() -> None:
    now = [0.0]
    existing = {"p.a.replies"}
    known = KnownTopics(lambda t: t in existing, ttl=60, missing_ttl=1, clock=lambda: now[0])
    assert known.exists("p.a.replies") and not known.exists("p.b.replies")
    existing.discard("p.a.replies")
    existing.add("p.b.replies")
    now[0] = 0.5
    assert known.exists("p.a.replies") and not known.exists("p.b.replies")  # cached
    now[0] = 1.5
    assert known.exists("p.b.replies")  # a missing topic is looked up again soon
    assert known.exists("p.a.replies")  # an existing one only after the ttl...
    known.forget("p.a.replies")  # ...or once a produce to it failed
    assert not known.exists("p.a.replies")
