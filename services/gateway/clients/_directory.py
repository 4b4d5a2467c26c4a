"""ClientDirectory: the clients topic, followed live, for the gateway to check tokens."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Final

from confluent_kafka import Consumer

from services.gateway.clients._errors import ClientStoreUnavailableError
from services.gateway.clients._index import ClientIndex
from services.gateway.clients._reader import TopicReader, behind, end_offsets, new_consumer, reached
from services.gateway.clients._record import ClientRecord
from streams.kafka import KafkaConfig, Topics

__all__ = ["ClientDirectory"]

log = logging.getLogger(__name__)
_POLL_S: Final = 0.2  # longest a stop() waits for the follower to notice
_RETRY_S: Final = 1.0  # pause after a failed read before trying again


class ClientDirectory:
    """A read-only, live copy of the clients topic: who holds which token.

    A daemon thread reads the topic from its first record (assign partition 0,
    ``read_committed``, no consumer group) and keeps following it, so a revoked or
    rotated token stops working within moments on every gateway, without a restart.
    Lookups (:meth:`authenticate`, :meth:`get`) never touch Kafka and are thread-safe.

    ::

        directory = ClientDirectory(kafka, topics)
        directory.start()
        directory.sync(timeout=30)          # every client created so far is known
        client = directory.authenticate(token)   # None: answer 401
    """

    def __init__(self, kafka: KafkaConfig, topics: Topics) -> None:
        self._kafka, self._topics = kafka, topics
        self._index = ClientIndex()
        self._position = -1  # next offset the follower will read
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._meta: Consumer | None = None  # asks for end offsets, from callers' threads
        self._meta_lock = threading.Lock()

    # -- lifecycle

    def start(self) -> None:
        """Start following the topic (returns at once; :meth:`sync` waits)."""
        if self._thread is not None:
            return
        reader = TopicReader(self._kafka, self._topics, "directory")
        self._meta = new_consumer(self._kafka, self._topics, "directory-meta")
        self._thread = threading.Thread(
            target=self._follow, args=(reader,), name="client-directory", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following; lookups keep answering from what was read."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._meta_lock:
            if self._meta is not None:
                self._meta.close()
                self._meta = None

    def __enter__(self) -> ClientDirectory:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        """True once the follower has read the topic to the end it had when it started."""
        return self._ready.is_set()

    def sync(self, timeout: float = 30.0) -> None:
        """Block until every record written before this call has been applied.

        :class:`ClientStoreUnavailableError` if Kafka cannot tell the topic's end, or the
        follower does not get there within ``timeout``."""
        if self._thread is None:
            raise RuntimeError("ClientDirectory.sync() needs start() first")
        deadline = time.monotonic() + timeout
        with self._meta_lock:
            if self._meta is None:
                raise RuntimeError("ClientDirectory.sync() after stop()")
            target = end_offsets(self._meta, self._kafka, self._topics.clients, timeout)
        with self._changed:
            while not reached(target, self._position):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise behind(self._topics.clients, timeout, self._position, target)
                self._changed.wait(remaining)

    # -- following

    def _follow(self, reader: TopicReader) -> None:
        target: tuple[int, int] | None = None
        warned = False  # a missing topic is expected until the first client: say it once
        try:
            while not self._stopping.is_set():
                try:
                    target = target or reader.end(_RETRY_S * 5)
                    self._advance(reader.read(self._index, _POLL_S), target)
                except ClientStoreUnavailableError as exc:
                    log.log(logging.DEBUG if warned else logging.WARNING, "%s; retrying", exc)
                    warned = True
                    self._stopping.wait(_RETRY_S)
                except Exception:  # a dead follower would keep revoked tokens working
                    log.exception("client directory: reading %s failed", self._topics.clients)
                    self._stopping.wait(_RETRY_S)
        finally:
            reader.close()

    def _advance(self, position: int, start_target: tuple[int, int]) -> None:
        with self._changed:
            self._position = position
            self._changed.notify_all()
        if not self._ready.is_set() and reached(start_target, position):
            self._ready.set()
            log.info("client directory ready: %d clients", len(self._index))

    def _apply(self, record: ClientRecord) -> None:
        """Apply one record as if read from the topic (tests feed the index this way)."""
        self._index.put(record)

    # -- lookups

    def authenticate(self, token: str) -> ClientRecord | None:
        """The active client holding ``token``; None when the token is malformed,
        unknown, does not match, or its client was revoked. Never raises."""
        return self._index.authenticate(token)

    def get(self, name: str) -> ClientRecord | None:
        """The latest record of ``name``, revoked or not."""
        return self._index.get(name)

    def names(self, *, include_revoked: bool = False) -> list[str]:
        """Client names, sorted; active clients only unless ``include_revoked``."""
        return [r.name for r in self._index.records() if include_revoked or r.active]

    def __len__(self) -> int:
        return len(self._index)
