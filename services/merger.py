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

Faust runs with ``processing_guarantee="exactly_once"``: the table's changelog, the sent
metrics and alerts and the consumed offsets commit in one Kafka transaction per
partition, so a merger killed at any point resumes from a table that matches its offsets.
Any number of instances share the work by the summaries topic's partitions (a model's
windows all live in one).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.worker import Worker

from schemas.contracts import codec_for
from services.registry import RegistryView
from streams.kafka import KafkaConfig, Topics, consumer_config
from streams.monitoring.drift.monitor import FeatureDriftMonitor
from streams.monitoring.merged import merged_window
from streams.monitoring.summaries import Summary

__all__ = ["MergerConfig", "build_app", "drift_for", "run_merger", "slot"]

log = logging.getLogger("modelstream.merger")
READY = "merger ready"


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


def build_app(kafka: KafkaConfig, config: MergerConfig, view: RegistryView) -> faust.App:
    """The faust app: one agent over the summaries, two tables."""
    app = faust.App(
        config.app_id, broker=f"kafka://{kafka.bootstrap}", broker_credentials=_credentials(kafka),
        store="memory://", datadir=str(config.data_dir), topic_partitions=config.partitions,
        processing_guarantee="exactly_once", web_enabled=False,
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        table_standby_replicas=0, topic_replication_factor=1,
        # a killed instance's partitions move after 10 s, not faust's default 60
        broker_session_timeout=10.0, broker_heartbeat_interval=3.0,
    )  # fmt: skip

    def raw(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")  # fmt: skip

    summaries, metrics, alerts = (
        raw(config.topics.summaries),
        raw(config.topics.metrics),
        raw(config.topics.alerts),
    )
    windows = app.Table("windows", default=dict, partitions=config.partitions)
    raised = app.Table("raised", default=int, partitions=config.partitions)
    index = app.Table("index", default=list, partitions=config.partitions)
    metric_codec, alert_codec = codec_for("metric"), codec_for("alert")
    drift: dict[str, Callable[[int], FeatureDriftMonitor | None]] = {}
    stats = {"summaries": 0, "merged": 0, "metrics": 0, "alerts": 0, "refused": 0, "failed": 0}

    @app.agent(summaries, name="merge")
    async def merge(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            try:
                record = orjson.loads(value)
                model, start = str(record["model"]), int(record["window_start"])
                summary = Summary.from_record(record)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                stats["refused"] += 1
                log.warning("summary refused (%s): %.200r", exc, value)
                continue
            stats["summaries"] += 1
            try:
                await _merge_one(record, summary, model, start)
            except Exception:  # one window we cannot merge stops no other
                stats["failed"] += 1
                log.exception("could not merge %s window %d (the merger goes on)", model, start)

    async def _merge_one(record: dict[str, Any], summary: Summary, model: str, start: int) -> None:
        key = f"{model}|{start}"
        entry = dict(windows[key])
        entry[slot(record)] = record
        windows[key] = entry
        _remember(index, windows, model, start, config.keep_windows)
        if not summary.last:
            return
        if model not in drift:
            drift[model] = drift_for(view, model)
        parts = {r.get("partition") for r in entry.values()}
        points, found = merged_window(
            (Summary.from_record(r) for r in entry.values()), drift[model], len(parts)
        )
        now = int(time.time() * 1e3)
        stats["merged"] += 1
        for point in points:
            await metrics.send(value=metric_codec.encode_avro(
                point.to_record(model=model, ts=now)))  # fmt: skip
            stats["metrics"] += 1
        for rule_id, alert in found:
            rule = f"{key}|{rule_id}"
            if raised[rule]:
                continue
            raised[rule] = now
            raised_record = alert.to_record(model=model, ts=now)
            await alerts.send(value=alert_codec.encode_avro(raised_record))
            stats["alerts"] += 1

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        log.info("%s: %d partition(s) assigned", READY, len(args[0]) if args else 0)

    @app.timer(interval=60.0)  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def report() -> None:
        log.info("merger: %s", stats)

    return app


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
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # the tables' changelogs must have the summaries topic's partition count
    config.partitions = partitions_of(kafka, config.topics.summaries) or config.partitions
    view = RegistryView(kafka, config.topics)
    view.sync()
    app = build_app(kafka, config, view)
    log.info("merger %s starting (app %s)", config.instance_id, config.app_id)
    code: int | str | None = 0
    try:
        Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()
    except SystemExit as exc:  # the worker's way of saying it stopped
        code = exc.code
    finally:
        view.close()
        logging.shutdown()
    # faust's consumer thread can outlive its event loop and keep the interpreter waiting
    # (faust-streaming 0.15, exactly-once): the worker has stopped, so leave now
    os._exit(code if isinstance(code, int) else 1)
