"""One bench run: set up, measure every variant in turn on the same broker, report.

The order keeps one thing under load at a time: passthrough (plain, transactional), the
transaction floor, the exactly-once scorer (throughput, scikit-learn throughput, latency,
swap), the at-least-once scorer's latency, the faust variants, then the monitor (one
instance), the sink and the monitor again (three instances) over the prediction logs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from rich.console import Console

from schemas.codec import Codec
from services.bench._clients import scorer_max_batch
from services.bench._errors import BenchError
from services.bench._fast import run_fast_phase
from services.bench._faust import run_faust_variants
from services.bench._faust_variants import VARIANTS, FaustVariant
from services.bench._floor import FloorResult, measure_floor
from services.bench._load import encode_requests, preload
from services.bench._passthrough import run_passthrough
from services.bench._pipeline import run_downstream
from services.bench._progress import Display
from services.bench._report import render, write_json
from services.bench._results import Measured, build_report
from services.bench._scorer import ScorerLoad, SwapPlan, run_scorer_phases
from services.bench._sklearn import sklearn_model
from services.bench._stack import SCHEMA, BenchStack, bench_signer, bench_stack
from services.bench._throughput import Throughput
from services.bench._warmup import warm_broker
from services.settings import Settings

__all__ = ["QUICK_FAUST", "BenchConfig", "run_bench"]

# --quick measures faust's batching variants only: one event at a time was the slower in
# most runs on this machine, and each variant costs a worker start (~6 s) and stop
QUICK_FAUST = ("take", "take-uvloop")


@dataclass(frozen=True)
class BenchConfig:
    """How much load each phase gets.

    >>> BenchConfig.choose(quick=True).events, BenchConfig.choose(quick=False).events
    (20000, 200000)
    >>> BenchConfig.choose(quick=True, events=3000, rate=500).latency_values
    2500
    >>> BenchConfig.choose(quick=True).swap
    SwapPlan(promote_at=2.0, seconds=5.0)
    >>> q = BenchConfig.choose(quick=True)
    >>> q.faust_events, q.floor_iterations, q.max_batch == scorer_max_batch()
    (5000, 300, True)
    """

    events: int
    rate: float = 2_000.0
    latency_seconds: float = 20.0
    warmup_seconds: float = 1.0
    max_batch: int = field(default_factory=scorer_max_batch)  # the passthrough's, as the scorer's
    faust_budget: float = 300.0  # seconds, per variant
    faust_share: float = 0.5  # of ``events`` that each faust variant is timed over
    faust_variants: tuple[str, ...] = tuple(v.name for v in VARIANTS)
    floor_iterations: int = 1_000
    broker_warmup_seconds: float = 30.0  # transactions before anything is timed
    swap_promote_at: float = 3.0  # seconds into the swap phase's load
    swap_seconds: float = 10.0  # the swap phase's load, at least

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError(f"events must be at least 1, got {self.events}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if self.latency_seconds <= self.warmup_seconds:
            raise ValueError("the latency run must last longer than its warm-up")
        if not 0 < self.faust_share <= 1:
            raise ValueError(f"the faust share must be within (0, 1], got {self.faust_share}")
        for name in self.faust_variants:
            FaustVariant.parse(name)  # raises ValueError naming the variants there are
        if not 0 < self.swap_promote_at < self.swap_seconds:
            raise ValueError(
                "the swap must be promoted after its load started and before it ends, got "
                f"{self.swap_promote_at} of {self.swap_seconds} s"
            )

    @classmethod
    def choose(
        cls, *, quick: bool, events: int | None = None, rate: float = 2_000.0
    ) -> BenchConfig:
        """``quick``: 20k events, 5 s of latency load, a swap 2 s into 5 s of load, faust's
        two ``take()`` variants (:data:`QUICK_FAUST`) each over a quarter of the events,
        300 floor transactions (whole run about 2 minutes); else 200k events, 20 s, 3 s
        into 10 s, all four faust variants over half, 1,000. ``events`` overrides the
        count."""
        if quick:
            return cls(events or 20_000, rate, latency_seconds=5.0, faust_budget=60.0,
                       faust_share=0.25, faust_variants=QUICK_FAUST, floor_iterations=300,
                       broker_warmup_seconds=20.0,
                       swap_promote_at=2.0, swap_seconds=5.0)  # fmt: skip
        return cls(events or 200_000, rate, latency_seconds=20.0, faust_budget=300.0)

    @property
    def latency_values(self) -> int:
        return round(self.rate * self.latency_seconds)

    @property
    def faust_events(self) -> int:
        return max(1, round(self.events * self.faust_share))

    @property
    def swap(self) -> SwapPlan:
        return SwapPlan(self.swap_promote_at, self.swap_seconds)


def run_bench(
    settings: Settings, *, quick: bool, events: int | None, rate: float,
    json_path: Path | None, console: Console, config: BenchConfig | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Measure every variant in one run; print and return the report (and write it to
    ``json_path``). Leaves no broker or process running. ``config`` overrides what
    ``quick``, ``events`` and ``rate`` choose (tests shorten the fixed phases)."""
    config = config or BenchConfig.choose(quick=quick, events=events, rate=rate)
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="ms-bench-")))
        display = exits.enter_context(Display(console))
        with display.step("broker, topics and registered models"):
            stack = exits.enter_context(
                bench_stack(
                    settings, workdir, partitions=settings.topic_partitions, swap_model=True
                )
            )
        with display.step("scikit-learn champion + challenger fitted and registered"):
            exits.enter_context(sklearn_model(
                stack.kafka, stack.names.topics, partitions=stack.names.partitions,
                delete_topics=bool(settings.kafka), signer=bench_signer(workdir), challenger=True,
            ))  # fmt: skip
        measured = _measure(stack, config, display)
        report = build_report(
            config, measured, external=bool(settings.kafka),
            partitions=stack.names.partitions, load_before=load_before,
        )  # fmt: skip
    render(report, console)
    if json_path is not None:
        write_json(report, json_path)
        console.print(f"report written to {json_path}")
    return report


def _measure(stack: BenchStack, config: BenchConfig, display: Display) -> Measured:
    names, n = stack.names, config.events
    codec = Codec(SCHEMA)
    with display.step(f"encoding {2 * n + config.latency_values:,} requests"):
        values = encode_requests(codec, n)
        latency_values = encode_requests(codec, config.latency_values, seed=13)
        sklearn_values = encode_requests(codec, n, seed=23)
    topics = [names.passthrough_in, names.requests, names.faust_requests]
    with display.phase("pre-producing requests", n * len(topics)) as advance:
        preload(stack.kafka, topics, values, on_progress=advance)
    del values
    with display.step(f"warming the broker: {config.broker_warmup_seconds:.0f} s of transactions"):
        warm_broker(stack.kafka, names.warmup, names.floor_in, names.partitions,
                    seconds=config.broker_warmup_seconds,
                    group=f"{names.prefix}.bench.warmup")  # fmt: skip
    plain, transactional = (_passthrough(stack, config, display, txn) for txn in (False, True))
    floor = _floor(stack, config, display)
    load = ScorerLoad(latency_values, sklearn_values, config.rate, config.warmup_seconds,
                      config.swap)  # fmt: skip
    scorer = run_scorer_phases(stack, display, events=n, load=load)
    fast = run_fast_phase(stack, display, latency_values, rate=config.rate,
                          warmup=config.warmup_seconds)  # fmt: skip
    variants = [FaustVariant.parse(name) for name in config.faust_variants]
    faust = run_faust_variants(stack, display, variants, events=config.faust_events,
                               budget=config.faust_budget, max_batch=config.max_batch)  # fmt: skip
    downstream = run_downstream(stack, display)
    return Measured(plain, transactional, floor, scorer, fast, faust, downstream)


def _passthrough(
    stack: BenchStack, config: BenchConfig, display: Display, transactional: bool
) -> Throughput:
    names = stack.names
    sink = names.passthrough_txn_out if transactional else names.passthrough_out
    label = "passthrough" + (", transactional" if transactional else "")
    with display.phase(label, config.events) as advance:
        return run_passthrough(
            stack.kafka, names.passthrough_in, sink, group=f"{sink}.group", events=config.events,
            transactional=transactional, max_batch=config.max_batch, on_progress=advance,
        )  # fmt: skip


def _floor(stack: BenchStack, config: BenchConfig, display: Display) -> FloorResult | str:
    """The transaction floor, or why it could not be measured (the run goes on)."""
    names, iterations = stack.names, config.floor_iterations
    try:
        with display.phase("exactly-once floor: one transaction at a time", iterations) as step:
            return measure_floor(stack.kafka, names.floor, names.floor_in, iterations=iterations,
                                 group=f"{names.prefix}.bench.floor", on_progress=step)  # fmt: skip
    except (BenchError, KafkaException) as exc:
        display.say(f"[red]the transaction floor could not be measured:[/] {exc}")
        return str(exc)
