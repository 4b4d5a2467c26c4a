"""The faust baseline under test: :mod:`services.bench.faust_app` as its own process, one
process per variant measured (:mod:`services.bench._faust_variants`), one after the other,
each timed exactly like the scorer (earliest reply CreateTime → N-th reply read back).

Every variant reads the same pre-produced requests topic as a consumer group of its own
(the app id names the variant) and answers on a replies topic of its own; it is timed
over its first ``events`` replies (a share of the topic, to keep the run short: the
report says how many). The best variant's rate is ``faust_eps``.

A variant may not get through its requests in its time budget; then the rate over what
it did answer is reported together with how many that was. Nothing is extrapolated. A
variant that fails is reported with its reason; the others are still measured.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from services.bench._errors import BenchError
from services.bench._faust_variants import FaustVariant
from services.bench._progress import Display
from services.bench._rss import RssSampler, RssSummary
from services.bench._service import Service
from services.bench._stack import MODEL, BenchStack
from services.bench._throughput import ReadBack, assigned_reader, read_back

__all__ = ["READY", "FaustRun", "run_faust_phase", "run_faust_variants"]

READY = "faust bench agent ready"  # what the faust app logs once it has its partitions
LOOP = re.compile(rf"{READY}: .* loop (\S+)")


@dataclass(frozen=True)
class FaustRun:
    variant: str
    throughput: ReadBack
    rss: RssSummary
    budget: float
    loop: str  # the event loop class the worker ran on, as it logged it


def run_faust_variants(
    stack: BenchStack, display: Display, variants: Sequence[FaustVariant], *, events: int,
    budget: float, max_batch: int,
) -> dict[str, FaustRun | str]:  # fmt: skip
    """Each of ``variants`` in turn; a variant that failed maps to what went wrong."""
    runs: dict[str, FaustRun | str] = {}
    for variant in variants:
        try:
            runs[variant.name] = run_faust_phase(stack, display, variant, events=events,
                                                 budget=budget, max_batch=max_batch)  # fmt: skip
        except BenchError as exc:  # a broken baseline is a finding, not a reason to stop
            display.say(f"[red]faust {variant.name} failed:[/] {exc}")
            runs[variant.name] = str(exc)
    return runs


def run_faust_phase(
    stack: BenchStack, display: Display, variant: FaustVariant, *, events: int, budget: float,
    max_batch: int,
) -> FaustRun:  # fmt: skip
    """Start one variant's worker, read its replies for at most ``budget`` seconds, stop it."""
    names, name = stack.names, variant.name
    replies = names.faust_replies(name)
    argv = [
        sys.executable, "-m", "services.bench.faust_app", "--bootstrap", stack.kafka.bootstrap,
        "--prefix", names.prefix, "--model", MODEL, "--requests", names.faust_requests,
        "--replies", replies, "--datadir", str(stack.workdir / "faust" / name),
        "--partitions", str(names.partitions), "--variant", name,
        "--max-batch", str(max_batch),
    ]  # fmt: skip
    (stack.workdir / "faust").mkdir(exist_ok=True)  # faust makes only its own directory
    service = Service(f"faust {name}", argv, stack.child_env(),
                      stack.workdir / f"faust-{name}.log", READY.encode())  # fmt: skip
    with contextlib.ExitStack() as cleanup:  # runs backwards: reader, sampler, process
        cleanup.callback(service.stop)
        with display.step(f"faust worker ({name}) ready"):
            service.start(timeout=120)
        sampler = RssSampler(service.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        sampler.mark("ready")
        reader = assigned_reader(stack.kafka, replies, f"{replies}.bench-reader")
        cleanup.callback(reader.close)
        with display.phase(f"faust agent ({name}): throughput", events) as advance:
            back = read_back(reader, events, budget, on_progress=advance,
                             alive=service.check_alive)  # fmt: skip
        sampler.mark("end")
    found = LOOP.findall(service.log.read_text(errors="replace"))
    return FaustRun(name, back, sampler.summary(), budget, found[-1] if found else "unknown")
