"""The merger (``modelstream run merger``): per-model statistics from the monitor's
per-partition window summaries, on faust-streaming.

The monitor's instances each own some input partitions and write, per window, the
additive summaries of what their partitions saw to ``<prefix>.summaries`` (keyed by
model, :mod:`streams.monitoring.summaries`). This keyed, low-volume stage adds them up:

- a faust table ``windows``, keyed ``<model>|<window start>``, holds per window the
  latest summary of every (partition, kind, feature, group, role, version): a summary
  **replaces** its predecessor, never adds to it, so a replay after a crash (or the
  monitor re-emitting a window) changes nothing;
- when a partition's last summary of a window arrives (``last``), the window's merged
  statistics (:func:`streams.monitoring.merged.merged_window`: drift against the
  champion's reference profile, performance, fairness, requests and mean latency) go to
  ``<prefix>.metrics`` with ``labels.scope = "model"``, and its alerts to
  ``<prefix>.alerts`` -- each alert once per window, feature and rule (table ``raised``),
  however many partitions report after it;
- windows older than ``--keep-windows`` per model are dropped from the table.

Nothing one record holds stops the worker. A summary is checked before any table sees it
(:func:`streams.monitoring.inputs.read_summary`: at most 1 MiB, a JSON object with the
monitor's fields and types, finite numbers, a window inside 1900-2299), and a window's
summaries must fit one changelog record (:data:`MAX_TABLE_VALUE_BYTES`): a record faust's
producer cannot send fails after the agent, stops the worker, and a restart would read it
again. A summary that fails there, or anywhere in the agent's work on it, is refused:
counted (``refused``, ``refused:<reason>``; in = summaries + refused,
:class:`MergerCounts`), summed up in one WARNING line per model a minute, and the merger
takes the next. The counters are logged every 60 s and at stop.

Faust runs with ``processing_guarantee="exactly_once"``: the table's changelog, the sent
metrics and alerts and the consumed offsets commit in one Kafka transaction per
partition, so a merger killed at any point resumes from a table that matches its offsets.
Any number of instances share the work by the summaries topic's partitions (a model's
windows all live in one).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.worker import Worker

from schemas.codec import DecodeError, OversizeError
from schemas.contracts import codec_for
from services.private import private_dir
from services.registry import RegistryView
from streams.kafka import KafkaConfig, Topics, consumer_config
from streams.monitoring.drift.monitor import FeatureDriftMonitor
from streams.monitoring.inputs import read_summary
from streams.monitoring.merged import merged_window
from streams.monitoring.summaries import Summary
from streams.refusals import RefusalLog, reason_of

__all__ = ["MergerConfig", "MergerCounts", "build_app", "drift_for", "run_merger", "slot"]

log = logging.getLogger("modelstream.merger")
READY = "merger ready"
#: the largest request the merger's producer sends (aiokafka's and faust's default): a
#: table's changelog record must fit in it, with room for the record batch around it
MAX_REQUEST_BYTES = 1_000_000
MAX_TABLE_VALUE_BYTES = MAX_REQUEST_BYTES - 16_384


@dataclass
class MergerConfig:
    """What one merger process needs (``partitions``: the summaries topic's, found at
    start by :func:`run_merger`)."""

    topics: Topics
    data_dir: Path
    instance_id: str = "0"
    partitions: int = 1
    keep_windows: int = 1_440

    @property
    def app_id(self) -> str:
        return f"{self.topics.prefix}.merger"


def slot(record: dict[str, Any]) -> str:
    """Which earlier summary a summary replaces: the same partition and key."""
    return "|".join(
        str(record.get(k))
        for k in ("partition", "kind", "feature", "group", "role", "model_version")
    )


def drift_for(view: RegistryView, model: str) -> Callable[[int], FeatureDriftMonitor | None]:
    """``version -> FeatureDriftMonitor`` of ``model`` from the registry (cached)."""
    cache: dict[int, FeatureDriftMonitor | None] = {}

    def monitor(version: int) -> FeatureDriftMonitor | None:
        if version not in cache:
            view.poll(0)
            try:
                profile = view.version(model, version).reference_profile
            except Exception:  # noqa: BLE001 - unknown version: no drift figure, asked again
                return None
            cache[version] = FeatureDriftMonitor.from_profile(profile) if profile else None
        return cache[version]

    return monitor


def _credentials(kafka: KafkaConfig) -> Any:
    if not kafka.sasl_mechanism:
        return None
    import ssl

    return faust.SASLCredentials(
        username=kafka.username, password=kafka.password, mechanism=kafka.sasl_mechanism,
        ssl_context=ssl.create_default_context() if kafka.tls else None,
    )  # fmt: skip


@dataclass
class MergerCounts:
    """What a merger counts: ``in`` (every summary read), ``summaries`` (taken into the
    table), ``refused`` and ``refused:<reason>``, ``merged`` windows, ``metrics``,
    ``alerts``; in = summaries + refused. Its refusals are summed up in one WARNING line
    per model per ``RefusalLog`` interval (:mod:`streams.refusals`)."""

    stats: Counter[str] = field(default_factory=Counter)
    refusals: RefusalLog = field(default_factory=lambda: RefusalLog(log, outcome="not merged"))

    def report(self, stopped: str | None = None) -> None:
        """Log the counters (``stopped``: the instance id, at stop: every refusal now)."""
        if stopped is None:
            log.info("merger: %s", dict(self.stats))
            self.refusals.tick()
            return
        self.refusals.flush()
        log.info("merger %s stopped: %s", stopped, dict(self.stats))


def build_app(
    kafka: KafkaConfig, config: MergerConfig, view: RegistryView,
    counts: MergerCounts | None = None,
) -> faust.App:  # fmt: skip
    """The faust app: one agent over the summaries, three tables."""
    app = faust.App(
        config.app_id, broker=f"kafka://{kafka.bootstrap}", broker_credentials=_credentials(kafka),
        store="memory://", datadir=str(config.data_dir), topic_partitions=config.partitions,
        processing_guarantee="exactly_once", web_enabled=False,
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        producer_max_request_size=MAX_REQUEST_BYTES,
        table_standby_replicas=0, topic_replication_factor=1,
        # a killed instance's partitions move after 10 s, not faust's default 60
        broker_session_timeout=10.0, broker_heartbeat_interval=3.0,
    )  # fmt: skip

    def raw(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")  # fmt: skip

    topics = config.topics
    merger = _Merger(
        config, view, counts or MergerCounts(), raw(topics.metrics), raw(topics.alerts),
        windows=app.Table("windows", default=dict, partitions=config.partitions),
        raised=app.Table("raised", default=int, partitions=config.partitions),
        index=app.Table("index", default=list, partitions=config.partitions),
    )  # fmt: skip

    @app.agent(raw(topics.summaries), name="merge")
    async def merge(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await merger.take(event.value, f"{message.topic}[{message.partition}]@{message.offset}")

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        log.info("%s: %d partition(s) assigned", READY, len(args[0]) if args else 0)

    @app.timer(interval=60.0)  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def report() -> None:
        merger.counts.report()

    return app


class _Merger:
    """The agent's work on one summary: check it, keep it, merge its window when it is the
    partition's last, send the results. Nothing one record holds stops the agent: a record
    that fails anywhere is refused and counted, and the next one is taken."""

    def __init__(
        self, config: MergerConfig, view: RegistryView, counts: MergerCounts, metrics: Any,
        alerts: Any, *, windows: Any, raised: Any, index: Any,
    ) -> None:  # fmt: skip
        self.config, self.view, self.counts = config, view, counts
        self.metrics, self.alerts = metrics, alerts
        self.windows, self.raised, self.index = windows, raised, index
        self.metric_codec, self.alert_codec = codec_for("metric"), codec_for("alert")
        self.drift: dict[str, Callable[[int], FeatureDriftMonitor | None]] = {}
        self._failed_logged = -math.inf

    async def take(self, value: bytes, where: str) -> None:
        stats = self.counts.stats
        stats["in"] += 1
        model = "?"
        try:
            record = read_summary(value)  # before any table sees it
            model = record["model"]
            await self._merge_one(record, model)
        except DecodeError as exc:
            self._refuse(model, where, reason_of(exc), str(exc))
            return
        except Exception as exc:  # one record stops no other
            self._refuse(model, where, "merge_failed", f"{type(exc).__name__}: {exc}")
            if time.monotonic() - self._failed_logged > 60:  # its traceback, once a minute
                self._failed_logged = time.monotonic()
                log.exception("could not merge the summary at %s (the merger goes on)", where)
            return
        stats["summaries"] += 1

    def _refuse(self, model: str, where: str, reason: str, detail: str) -> None:
        stats = self.counts.stats
        stats["refused"] += 1
        stats[f"refused:{reason}"] += 1
        self.counts.refusals.add("summary", model, where, reason, detail)
        self.counts.refusals.tick()

    async def _merge_one(self, record: dict[str, Any], model: str) -> None:
        """Everything that can fail on this record's content (the table value's size, the
        merge, encoding the results) happens before the first write or send."""
        start = record["window_start"]
        key = f"{model}|{start}"
        entry = dict(self.windows[key])
        entry[slot(record)] = record
        _check_table_value(key, entry)
        metrics: list[bytes] = []
        alerts: list[tuple[str, bytes]] = []
        now = int(time.time() * 1e3)
        if record.get("last"):
            metrics, alerts = self._results(model, key, entry, now)
        self.windows[key] = entry
        _remember(self.index, self.windows, model, start, self.config.keep_windows)
        if record.get("last"):
            self.counts.stats["merged"] += 1
        await self._send(metrics, alerts, now)

    def _results(
        self, model: str, key: str, entry: dict[str, Any], now: int
    ) -> tuple[list[bytes], list[tuple[str, bytes]]]:
        """The merged window's metric points and alerts (each with its rule), encoded."""
        if model not in self.drift:
            self.drift[model] = drift_for(self.view, model)
        parts = {r.get("partition") for r in entry.values()}
        points, found = merged_window(
            (Summary.from_record(r) for r in entry.values()), self.drift[model], len(parts)
        )
        metrics = [self.metric_codec.encode_avro(p.to_record(model=model, ts=now)) for p in points]
        alerts = [
            (f"{key}|{rule_id}", self.alert_codec.encode_avro(a.to_record(model=model, ts=now)))
            for rule_id, a in found
        ]
        return metrics, alerts

    async def _send(self, metrics: list[bytes], alerts: list[tuple[str, bytes]], now: int) -> None:
        stats = self.counts.stats
        for value in metrics:
            await self.metrics.send(value=value)
            stats["metrics"] += 1
        for rule, value in alerts:
            if self.raised[rule]:
                continue
            self.raised[rule] = now
            await self.alerts.send(value=value)
            stats["alerts"] += 1


def _check_table_value(key: str, entry: dict[str, Any]) -> None:
    """A window's summaries must fit one changelog record of the ``windows`` table: a
    larger one fails in faust's producer, after the agent, and stops the worker."""
    size = len(orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS)) + len(key)
    if size > MAX_TABLE_VALUE_BYTES:
        raise OversizeError(
            f"expected the summaries of window {key} to fit in {MAX_TABLE_VALUE_BYTES} bytes "
            f"(one record of the merger's windows table), got {size} with this one"
        )


def _remember(index: Any, windows: Any, model: str, start: int, keep: int) -> None:
    """Keep the ``keep`` latest windows of ``model``; drop the older ones."""
    starts = list(index[model])
    if start in starts:
        return
    starts.append(start)
    starts.sort()
    for old in starts[:-keep]:
        windows.pop(f"{model}|{old}", None)
    index[model] = starts[-keep:]


def partitions_of(kafka: KafkaConfig, topic: str) -> int | None:
    """How many partitions ``topic`` has (None when it does not exist)."""
    from confluent_kafka import Consumer

    probe = Consumer(consumer_config(kafka, "modelstream.merger.probe"))
    try:
        found = probe.list_topics(topic, timeout=10).topics.get(topic)
        return None if found is None or found.error is not None else len(found.partitions)
    finally:
        probe.close()


def run_merger(kafka: KafkaConfig, config: MergerConfig) -> None:
    """Merge until SIGTERM/SIGINT (faust's worker handles the signals)."""
    private_dir(config.data_dir)
    # the tables' changelogs must have the summaries topic's partition count
    config.partitions = partitions_of(kafka, config.topics.summaries) or config.partitions
    view = RegistryView(kafka, config.topics)
    view.sync()
    counts = MergerCounts()
    app = build_app(kafka, config, view, counts)
    log.info("merger %s starting (app %s)", config.instance_id, config.app_id)
    code: int | str | None = 0
    try:
        Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()
    except SystemExit as exc:  # the worker's way of saying it stopped
        code = exc.code
    finally:
        view.close()
        counts.report(stopped=config.instance_id)
        logging.shutdown()
    # faust's consumer thread can outlive its event loop and keep the interpreter waiting
    # (faust-streaming 0.15, exactly-once): the worker has stopped, so leave now
    os._exit(code if isinstance(code, int) else 1)
