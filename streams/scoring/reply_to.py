"""Where a request may ask for its reply: the ``reply-to`` trust boundary.

A client names the topic its reply goes to. The scorer writes there with its own rights
(it may write to every ``<prefix>.`` topic), so the name is restricted to the reply
topics of this deployment: ``<prefix>.<model>.replies`` for any model, which includes a
gateway's own ``<prefix>.gateway-<id>.replies``. Anything else (a request, log, DLQ,
registry or internal topic, another prefix) is refused (DLQ ``bad_reply_to``).

The topic must also exist: a message to a missing topic aborts its transaction (and the
replay would abort again). Whether a topic exists is cached for ``ttl`` seconds (a
missing one for ``missing_ttl``), and forgotten at once when a produce to it fails (a
topic deleted after it was cached fails as UNKNOWN_TOPIC_OR_PART, or as a timeout).

>>> allowed = reply_topic_pattern("ms")
>>> [bool(allowed.match(t)) for t in ("ms.iris.replies", "ms.gateway-0.replies",
...                                   "ms.iris.requests", "ms._models", "other.iris.replies",
...                                   "ms.a.b.replies", "ms..replies")]
[True, True, False, False, False, False, False]
>>> now = [0.0]
>>> topics = KnownTopics(lambda t: t == "ms.iris.replies", ttl=60, clock=lambda: now[0])
>>> topics.exists("ms.iris.replies"), topics.exists("ms.gone.replies")
(True, False)
>>> topics.lookups
2
>>> now[0] = 59.0; topics.exists("ms.iris.replies"), topics.lookups
(True, 2)
>>> now[0] = 61.0; topics.exists("ms.iris.replies"), topics.lookups
(True, 3)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

__all__ = ["KnownTopics", "reply_topic_pattern"]


def reply_topic_pattern(prefix: str) -> re.Pattern[str]:
    """The reply topics of ``prefix``: ``<prefix>.<model or gateway-id>.replies``."""
    return re.compile(rf"^{re.escape(prefix)}\.[A-Za-z0-9_-]{{1,100}}\.replies$")


class KnownTopics:
    """Which topics exist, each answer trusted for a while."""

    def __init__(self, lookup: Callable[[str], bool], ttl: float = 60.0, missing_ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._lookup = lookup
        self._ttl, self._missing_ttl = ttl, missing_ttl
        self._clock = clock
        self._until: dict[str, tuple[float, bool]] = {}
        self.lookups = 0

    def exists(self, topic: str) -> bool:
        now = self._clock()
        cached = self._until.get(topic)
        if cached is not None and now < cached[0]:
            return cached[1]
        self.lookups += 1
        found = self._lookup(topic)
        self._until[topic] = (now + (self._ttl if found else self._missing_ttl), found)
        return found

    def forget(self, topic: str) -> None:
        """Look ``topic`` up again at its next use (a produce to it failed)."""
        self._until.pop(topic, None)
