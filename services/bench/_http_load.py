"""Closed-loop HTTP load at a fixed concurrency, and what it measured.

The same generator drives every HTTP system under test (the gateway, MLServer), so the
client's cost is the same for each; it runs in a process of its own
(:mod:`services.bench._http_driver`, started by :func:`run_load`) and is lean, because it
shares the machine with them. Only requests *sent* after the warm-up count::

    requests/s  = 2xx responses to post-warm-up requests / (last response - warm-up end)
    latency     = request written → response complete, on the generator's clock

Closed loop: a slower server is offered fewer requests, so latency is what a client with
``concurrency`` requests in flight sees, not the latency at a fixed offered rate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from services.bench import _http_driver
from services.bench._driver import run_driver
from services.bench._latency import LatencySummary, summarize

__all__ = ["LoadResult", "LoadSpec", "http_ok", "run_load", "summarize_load"]

Record = tuple[float, float, int | str]  # sent, done (seconds), HTTP status or failure
SHOWN = 3  # response bodies in the report


@dataclass(frozen=True)
class LoadSpec:
    """``concurrency`` connections posting ``bodies`` (cycled) to ``url``."""

    url: str
    bodies: Sequence[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 32
    seconds: float = 8.0
    warmup: float = 2.0
    request_timeout: float = 10.0
    keep_every: int = 0  # also keep every n-th response body (0: only the first few)

    def __post_init__(self) -> None:
        if not self.bodies:
            raise ValueError("a load needs at least one request body")
        if self.concurrency < 1 or self.seconds <= 0 or self.warmup < 0:
            raise ValueError(
                f"need concurrency ≥ 1, seconds > 0, warmup ≥ 0; got {self.concurrency}, "
                f"{self.seconds}, {self.warmup}"
            )

    def to_json(self) -> bytes:
        """The spec as the driver reads it.

        >>> json.loads(LoadSpec("http://h:1/p", [b"{}"], seconds=1.0).to_json())["bodies"]
        ['{}']
        """
        data = asdict(self) | {"bodies": [b.decode() for b in self.bodies],
                               "headers": dict(self.headers)}  # fmt: skip
        return json.dumps(data).encode()


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured (latencies in ms)."""

    concurrency: int
    ok: int
    failed: dict[str, int]  # status code, "timeout" or "connection" → count
    seconds: float
    latency: LatencySummary | None
    client_cpu_seconds: float = 0.0
    samples: list[str] = field(default_factory=list)  # response bodies, in order
    total: int = 0  # every request, the warm-up's and failures included
    ok_total: int = 0  # every good answer, the warm-up's included

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the rate and only the first :data:`SHOWN` bodies."""
        return asdict(self) | {"rps": self.rps, "samples": self.samples[:SHOWN]}


def http_ok(status: int | str) -> bool:
    """A 2xx answer (a failure is an HTTP code, ``"timeout"`` or ``"connection"``)."""
    return isinstance(status, int) and 200 <= status < 300


def summarize_load(
    records: Sequence[Record], *, warmup: float, concurrency: int, began: float = 0.0,
    ok: Callable[[int | str], bool] = http_ok,
) -> LoadResult:  # fmt: skip
    """The steady-state result of ``(sent, done, status)`` records (seconds).

    Requests sent before ``began + warmup`` are left out; the window runs from then to
    the last counted good response (``ok(status)``: 2xx by default). ``ok_total`` counts
    the good answers of the warm-up too: every answer the generator got.

    >>> recs = [(0.0, 0.5, 200), (1.0, 1.002, 200), (1.5, 1.504, 200), (1.6, 3.0, "timeout"),
    ...         (2.0, 2.001, 503)]
    >>> r = summarize_load(recs, warmup=1.0, concurrency=2)
    >>> r.ok, r.failed, r.seconds, round(r.rps, 3), r.latency.p50, r.latency.max, r.total
    (2, {'timeout': 1, '503': 1}, 0.504, 3.968, 3.0, 4.0, 5)
    >>> r.ok_total
    3
    """
    start = last = began + warmup
    latencies: list[float] = []
    failed: Counter[str] = Counter()
    ok_total = 0
    for sent, done, status in records:
        good = ok(status)
        ok_total += good
        if sent < start:
            continue
        if good:
            latencies.append(round((done - sent) * 1e3, 6))
            last = max(last, done)
        else:
            failed[str(status)] += 1
    return LoadResult(
        concurrency=concurrency, ok=len(latencies), failed=dict(failed),
        seconds=round(last - start, 6), latency=summarize(latencies) if latencies else None,
        total=len(records), ok_total=ok_total,
    )  # fmt: skip


def run_load(spec: LoadSpec, on_tick: Callable[[int], None] | None = None) -> LoadResult:
    """Run ``spec`` in the driver's process; ``on_tick(requests_so_far)`` once a second."""
    return _result(spec, run_driver(_http_driver.__file__, spec.to_json(), "HTTP", on_tick))


def _result(spec: LoadSpec, raw: Mapping[str, Any]) -> LoadResult:
    records = [(float(s), float(d), status) for s, d, status in raw["records"]]
    summary = summarize_load(records, warmup=spec.warmup, concurrency=spec.concurrency)
    return replace(summary, client_cpu_seconds=float(raw["client_cpu_seconds"]),
                   samples=[str(s) for s in raw["samples"]])  # fmt: skip
