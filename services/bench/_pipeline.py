"""Downstream of the scorer: how fast the monitor and the sink eat the prediction log.

Each reads the prediction-log records the scorer phases wrote (every request of the
throughput, scikit-learn, latency and swap phases, and the at-least-once scorer's) with
a consumer group of its own. The monitor is the exactly-once loop with every estimator on
and ``MonitorConfig``'s own batch and interval, as ``modelstream run monitor`` runs it:
one instance in-process (``monitor_eps``: its steps after the first), then, after the
sink, three in processes of their own over the same records replayed (``monitor3_eps``,
:mod:`services.bench._monitor_group`). The sink lands predictions in an embedded
ClickHouse engine in the run's scratch directory (``sink_rows_per_s``: from its first
insert to its last).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from services.bench._monitor_group import INSTANCES, MonitorGroup, run_monitor_group
from services.bench._progress import Display
from services.bench._stack import BenchStack
from services.monitor import spec_for, watch_factory
from services.registry import RegistryView
from services.sink import Sink, SinkConfig
from services.warehouse import connect
from streams.kafka import KafkaConfig, Topics, make_consumer
from streams.monitoring.stream import MonitorConfig, MonitorLoop

__all__ = ["Downstream", "run_downstream"]


@dataclass(frozen=True)
class Downstream:
    records: int  # read by the single monitor instance, its first step too
    monitor_eps: float
    monitor_seconds: float
    monitor_timed: int  # the records monitor_eps is over
    sink_rows_per_s: float
    sink_seconds: float
    monitor3: MonitorGroup | str  # why it could not be measured

    def counts(self) -> dict[str, Any]:
        """Records read and timed by the single monitor; the three's, per instance too."""
        group = self.monitor3
        return {
            "monitor": {"read": self.records, "timed": self.monitor_timed},
            "monitor3": group.counts if isinstance(group, MonitorGroup) else {"error": group},
        }

    def notes(self, partitions: int) -> list[str]:
        group = self.monitor3
        if isinstance(group, str):
            return [f"the {INSTANCES} monitor instances could not be measured: {group}"]
        notes = []
        if partitions < INSTANCES:
            notes.append(f"the model topics have {partitions} partition(s): only "
                         f"{partitions} of the {INSTANCES} monitor instances had work")  # fmt: skip
        read, replayed = group.counts["read"], group.counts["replayed"]
        if read < replayed:
            notes.append(f"the {INSTANCES} monitor instances read {read:,} of the "
                         f"{replayed:,} records replayed to them")  # fmt: skip
        return notes


def _logged(stack: BenchStack) -> int:
    """Every prediction log of the run (all its models, the at-least-once scorer's too)."""
    consumer = make_consumer(stack.kafka, f"{stack.names.prefix}.count")
    prefix, total = stack.names.prefix + ".", 0
    for topic, meta in consumer.list_topics(timeout=10).topics.items():
        if not (topic.startswith(prefix) and topic.endswith(".predictions")):
            continue
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
    consumer.close()
    return total  # transaction markers count too: an upper bound, read until stable


def run_downstream(stack: BenchStack, display: Display) -> Downstream:
    upper = _logged(stack)
    steps = _monitor(stack, display, upper)
    monitor_n, monitor_s = _steady(steps, MonitorConfig.max_batch)
    # a child process: one process holds one embedded ClickHouse directory, and the
    # caller (a test session, say) may hold another
    with display.step("sink → ClickHouse (predictions), in a child process"):
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(1) as pool:
            sink_n, sink_s = pool.apply(_sink, (stack.kafka, stack.names.topics, stack.workdir))
    # after the sink, which neither reads the replay nor lands the three's metrics
    group = run_monitor_group(stack, display)
    return Downstream(
        sum(n for n, _ in steps),
        monitor_n / monitor_s if monitor_s else 0.0,
        monitor_s,
        monitor_n,
        sink_n / sink_s if sink_s else 0.0,
        sink_s,
        group,
    )


def _steady(steps: list[tuple[int, float]], full: int) -> tuple[int, float]:
    """Records and seconds of the steps after the first (which pays for joining the group
    and warming up) that read a full batch (``full`` records). A step that read less ran
    out of input and waited out the rest of its interval for more, time the monitor did
    not work; such steps count only when there is no full one (then every step after the
    first, or the first alone when it was the only one).

    >>> _steady([(100, 2.0), (100, 0.5), (100, 0.6), (30, 1.2)], full=100)
    (200, 1.1)
    >>> _steady([(100, 2.0), (50, 0.5), (50, 0.5)], full=100)
    (100, 1.0)
    >>> _steady([(10, 1.0)], full=100)
    (10, 1.0)
    """
    steady = [s for s in steps[1:] if s[0] >= full] or steps[1:] or steps[:1]
    return sum(n for n, _ in steady), sum(t for _, t in steady)


def _monitor(stack: BenchStack, display: Display, upper: int) -> list[tuple[int, float]]:
    """The records and seconds of each step that read something; it stops after 3 s
    without a record."""
    view = RegistryView(stack.kafka, stack.names.topics)
    view.sync()
    config = MonitorConfig(stack.names.topics, instance_id="bench")  # the product's batching
    loop = MonitorLoop(stack.kafka, config, watch_factory(view), spec_for(view))
    steps: list[tuple[int, float]] = []
    quiet, enough = 0, math.ceil(3.0 / config.max_interval)
    with display.phase("monitor, 1 instance (all estimators, exactly once)", upper) as advance:
        while quiet < enough:
            started = time.perf_counter()
            read = loop.step()
            if read:
                steps.append((read, time.perf_counter() - started))
                advance(read)
                quiet = 0
            elif steps:
                quiet += 1
    loop.close()
    view.close()
    return steps


def _sink(kafka: KafkaConfig, topics: Topics, workdir: Path) -> tuple[int, float]:
    """Rows landed after the first insert / wall time from it to the last insert (every
    step in between counts: consuming and mapping rows is the sink's work too)."""
    with connect(f"chdb://{workdir / 'warehouse'}") as warehouse:
        warehouse.migrate()
        sink = Sink(kafka, SinkConfig(topics, max_rows=5_000, max_age=0.5), warehouse)
        landings: list[tuple[int, float, float]] = []  # rows, step start, step end
        idle = 0
        while idle < 10:
            before, started = sink.stats["predictions"], time.perf_counter()
            sink.step(0.2)
            landed = sink.stats["predictions"] - before
            if landed:
                landings.append((landed, started, time.perf_counter()))
                idle = 0
            elif landings:
                idle += 1
        sink.close()
    if len(landings) == 1:
        rows, started, ended = landings[0]
        return rows, ended - started
    return sum(n for n, _, _ in landings[1:]), landings[-1][2] - landings[0][2]
