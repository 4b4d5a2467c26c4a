"""Three monitor instances in one consumer group (``monitor3_eps``).

Each instance is a process of its own (spawn), as ``modelstream run monitor --instance N``
is: ``MonitorConfig``'s own batch and interval, every estimator on. Their group and state
topic are their own (``MonitorConfig.name`` = :data:`MONITOR_GROUP`): they restore
nothing of the single-instance run.

What they read is the monitor's input again (:mod:`services.bench._replay`): their group
starts at its end; once the group is seen (described every 50 ms) Stable with all three
members, every committed record of the input is appended once more in one transaction,
and its commit is ``revealed``: no instance can read a record before it, each has its
partitions when it comes. The instances stop once together they have read all of them.

``monitor3_eps`` = records / (end of the last step that read one - ``revealed``), wall
clock, shared by the processes of one machine. A step ends when its transaction
(outputs, state, offsets) has committed.
"""

from __future__ import annotations

import multiprocessing
import queue
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaException

from services.bench._progress import Display
from services.bench._replay import input_offsets, replay, start_at_end
from services.bench._stack import MONITOR_GROUP, BenchStack
from services.monitor import spec_for, watch_factory
from services.registry import RegistryView
from streams.kafka import KafkaConfig, Topics, make_admin
from streams.monitoring.stream import MonitorConfig, MonitorLoop

__all__ = ["INSTANCES", "MonitorGroup", "group_rate", "run_monitor_group"]

INSTANCES = 3
BUDGET = 300.0  # s an instance runs at most: joining, the replay, reading it
Step = tuple[float, float, int]  # began, ended (time.time()), records read
Report = tuple[str, list[Step], dict[str, int], str | None]  # instance, steps, stats, error


@dataclass(frozen=True)
class MonitorGroup:
    eps: float
    seconds: float
    counts: dict[str, Any]


def group_rate(revealed: float, steps: Mapping[str, list[Step]]) -> tuple[int, float]:
    """Records the instances read and seconds from ``revealed`` to the end of the last
    step that read one.

    >>> group_rate(10.0, {"0": [(9.9, 11.0, 900)], "1": [(10.0, 11.5, 700), (11.5, 11.6, 5)]})
    (1605, 1.5999999999999996)
    >>> group_rate(10.0, {"0": []})
    (0, 0.0)
    """
    done = [s for found in steps.values() for s in found]
    if not done:
        return 0, 0.0
    return sum(n for _, _, n in done), max(end for _, end, _ in done) - revealed


def run_monitor_group(stack: BenchStack, display: Display) -> MonitorGroup | str:
    """The instances over the replayed input, or why they could not be measured."""
    group = MonitorConfig(stack.names.topics, name=MONITOR_GROUP).group_id
    offsets = input_offsets(stack)
    start_at_end(stack, group, offsets)
    spawn = multiprocessing.get_context("spawn")
    target, read, out = spawn.Value("q", 0), spawn.Value("q", 0), spawn.Queue()
    key = secrets.token_bytes(32)  # one snapshot key: a task moving between them restores
    children = [spawn.Process(target=_instance, daemon=True, args=(
        stack.kafka, stack.names.topics, str(i), target, read, out, key,
    )) for i in range(INSTANCES)]  # fmt: skip
    started, revealed, errors = time.perf_counter(), 0.0, []
    for child in children:
        child.start()
    try:
        with display.step(f"monitor, {INSTANCES} instances: processes started, group joined"):
            _joined(stack, group, children)
        with display.step("monitor input replayed in one transaction"):
            target.value, revealed = replay(stack, offsets), time.time()
        with display.phase(f"monitor, {INSTANCES} instances (a process each)",
                           target.value) as advance:  # fmt: skip
            _follow(read, children, advance)
    except (KafkaException, RuntimeError, TimeoutError) as exc:
        errors.append(str(exc))
    finally:
        target.value = target.value or -1  # an instance still waiting stops
        reports = _drain(out, children)
    errors += [f"instance {name}: {error}" for name, _, _, error in reports if error]
    if errors:
        return "; ".join(errors)
    if len(reports) < INSTANCES:
        return f"{INSTANCES - len(reports)} instance(s) reported nothing"
    found = {name: (steps, stats) for name, steps, stats, _ in reports}
    return _measured(revealed, target.value, found, time.perf_counter() - started)


def _drain(out: Queue[Report], children: list[SpawnProcess]) -> list[Report]:
    """What the instances reported; each stopped (terminated if it hangs)."""
    reports = []
    for _ in children:
        try:
            reports.append(out.get(timeout=15))
        except queue.Empty:
            break
    for child in children:
        child.join(10)
        if child.is_alive():
            child.terminate()
    return reports


def _joined(stack: BenchStack, group: str, children: list[SpawnProcess]) -> None:
    """Returns once ``group`` is seen Stable with every instance a member."""
    admin = make_admin(stack.kafka)
    deadline = time.monotonic() + 180
    while True:
        try:
            found = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
            if found.state == ConsumerGroupState.STABLE and len(found.members) == INSTANCES:
                return
        except KafkaException:
            pass  # not there yet
        if any(child.exitcode is not None for child in children):
            raise RuntimeError("a monitor instance stopped before the group formed")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the group {group} was not seen with {INSTANCES} members")
        time.sleep(0.05)


def _follow(
    read: Synchronized[int], children: list[SpawnProcess], advance: Callable[[int], None]
) -> None:
    shown, deadline = 0, time.monotonic() + BUDGET
    while any(child.is_alive() for child in children) and time.monotonic() < deadline:
        now = read.value
        advance(now - shown)
        shown = now
        time.sleep(0.2)
    advance(read.value - shown)


def _measured(
    revealed: float, target: int, found: dict[str, tuple[list[Step], dict[str, int]]],
    phase: float,
) -> MonitorGroup:  # fmt: skip
    records, seconds = group_rate(revealed, {name: steps for name, (steps, _) in found.items()})
    instances = {
        name: {"read": sum(n for _, _, n in steps), "steps": len(steps),
               "transactions": stats.get("transactions", 0), "aborts": stats.get("aborts", 0)}
        for name, (steps, stats) in sorted(found.items())
    }  # fmt: skip
    # phase_seconds: from spawning the instances to the last one stopped
    counts = {"replayed": target, "read": records, "instances": instances,
              "phase_seconds": phase}  # fmt: skip
    return MonitorGroup(records / seconds if seconds > 0 else 0.0, seconds, counts)


def _instance(
    kafka: KafkaConfig, topics: Topics, name: str, target: Synchronized[int],
    read: Synchronized[int], out: Queue[Report], key: bytes,
) -> None:  # fmt: skip
    """One instance (a spawned process): steps until the instances together read every
    replayed record (``target``; -1: stop); reports its steps that read and its stats."""
    steps: list[Step] = []
    try:
        view = RegistryView(kafka, topics)
        view.sync()
        config = MonitorConfig(topics, instance_id=name, name=MONITOR_GROUP, snapshot_key=key)
        loop = MonitorLoop(kafka, config, watch_factory(view), spec_for(view))
        deadline = time.monotonic() + BUDGET
        while time.monotonic() < deadline and not (target.value and read.value >= target.value):
            began = time.time()
            n = loop.step()
            if n:
                steps.append((began, time.time(), n))
                with read.get_lock():
                    read.value += n
        loop.close()
        view.close()
        out.put((name, steps, dict(loop.stats), None))
    except Exception as exc:  # noqa: BLE001 - reported: the bench goes on without the figure
        out.put((name, steps, {}, f"{type(exc).__name__}: {exc}"))
