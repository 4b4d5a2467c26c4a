"""The faust baseline under test: :mod:`services.bench.faust_app` as its own process,
timed exactly like the scorer (earliest reply CreateTime → N-th reply read back).

faust may not get through all the requests in its time budget; then the rate over what
it did answer is reported together with how many that was. Nothing is extrapolated.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

from services.bench._progress import Display
from services.bench._rss import RssSampler, RssSummary
from services.bench._service import Service
from services.bench._stack import MODEL, BenchStack
from services.bench._throughput import ReadBack, assigned_reader, read_back

__all__ = ["READY", "FaustRun", "run_faust_phase"]

READY = "faust bench agent ready"  # what the faust app logs once it has its partitions


@dataclass(frozen=True)
class FaustRun:
    throughput: ReadBack
    rss: RssSummary
    budget: float


def run_faust_phase(stack: BenchStack, display: Display, *, events: int, budget: float) -> FaustRun:
    """Start the faust worker, read its replies for at most ``budget`` seconds, stop it."""
    names = stack.names
    argv = [
        sys.executable, "-m", "services.bench.faust_app", "--bootstrap", stack.kafka.bootstrap,
        "--prefix", names.prefix, "--model", MODEL, "--requests", names.faust_requests,
        "--replies", names.faust_replies, "--datadir", str(stack.workdir / "faust"),
        "--partitions", str(names.partitions),
    ]  # fmt: skip
    service = Service("faust", argv, stack.child_env(), stack.workdir / "faust.log",
                      READY.encode())  # fmt: skip
    reader = assigned_reader(stack.kafka, names.faust_replies, f"{names.prefix}.bench.faust-reader")
    with contextlib.ExitStack() as cleanup:  # runs backwards: sampler, process, reader
        cleanup.callback(reader.close)
        cleanup.callback(service.stop)
        with display.step("faust worker ready"):
            service.start(timeout=120)
        sampler = RssSampler(service.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        sampler.mark("ready")
        with display.phase("faust agent: throughput", events) as advance:
            back = read_back(reader, events, budget, on_progress=advance,
                             alive=service.check_alive)  # fmt: skip
        sampler.mark("end")
    return FaustRun(back, sampler.summary(), budget)
