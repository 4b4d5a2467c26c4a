"""MLServer at its best: the grid of configurations the bench runs, and which one wins
each metric. Pure.

Two knobs change MLServer's speed on a small machine: ``parallel_workers`` (0: inference
in the server process; n: n worker processes fed over IPC) and adaptive batching
(``max_batch_size`` / ``max_batch_time`` in ``model-settings.json``: concurrent requests
are merged into one ``predict_proba`` call). The bench runs every pair, REST and gRPC
each, and compares modelstream with the *best* configuration per metric: the highest
requests/s, the lowest p50 and p99, each possibly from another configuration. MLServer's
Kafka mode runs once, with batching on, with the workers of the batching configuration
whose REST rate was highest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BATCH_SIZE", "BATCH_TIME", "METRICS", "MLServerConfig", "best_per_metric",
           "grid", "kafka_config"]  # fmt: skip

BATCH_SIZE = 32  # = the load's concurrency: a batch can hold every request in flight
BATCH_TIME = 0.005  # seconds a request may wait for others to join its batch
# top-level report key → (front door, metric, best is the highest?)
METRICS: dict[str, tuple[str, str, bool]] = {
    "mlserver_rps": ("rest", "rps", True),
    "mlserver_p50_ms": ("rest", "p50_ms", False),
    "mlserver_p99_ms": ("rest", "p99_ms", False),
    "mlserver_grpc_rps": ("grpc", "rps", True),
    "mlserver_grpc_p50_ms": ("grpc", "p50_ms", False),
    "mlserver_grpc_p99_ms": ("grpc", "p99_ms", False),
}


@dataclass(frozen=True)
class MLServerConfig:
    """One point of the grid.

    >>> MLServerConfig(2, True).label, MLServerConfig(0, False).key
    ('workers=2, batching on', 'w0-batch-off')
    """

    workers: int  # parallel_workers
    batching: bool  # adaptive batching: max_batch_size / max_batch_time

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"MLServer workers must be ≥ 0, got {self.workers}")

    @property
    def label(self) -> str:
        return f"workers={self.workers}, batching {'on' if self.batching else 'off'}"

    @property
    def batch(self) -> tuple[int, float] | None:
        """``model-settings.json``'s ``(max_batch_size, max_batch_time)``, or None.

        >>> MLServerConfig(0, True).batch, MLServerConfig(0, False).batch
        ((32, 0.005), None)
        """
        return (BATCH_SIZE, BATCH_TIME) if self.batching else None

    @property
    def key(self) -> str:
        """A name for its files and folders."""
        return f"w{self.workers}-batch-{'on' if self.batching else 'off'}"

    def to_dict(self) -> dict[str, Any]:
        return {"parallel_workers": self.workers, "batching": self.batching,
                "max_batch_size": BATCH_SIZE if self.batching else None,
                "max_batch_time": BATCH_TIME if self.batching else None,
                "label": self.label}  # fmt: skip


def grid(workers: Iterable[int], batching: Iterable[bool]) -> list[MLServerConfig]:
    """Every pair, workers outermost, duplicates dropped.

    >>> [c.label for c in grid([0, 1], [False, True])]  # doctest: +NORMALIZE_WHITESPACE
    ['workers=0, batching off', 'workers=0, batching on', 'workers=1, batching off',
     'workers=1, batching on']
    >>> grid([2, 2], [True])
    [MLServerConfig(workers=2, batching=True)]
    """
    modes = list(dict.fromkeys(batching))
    return [MLServerConfig(w, b) for w in dict.fromkeys(workers) for b in modes]


def best_per_metric(configs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each of :data:`METRICS`, the best value over ``configs`` and the configuration
    it came from. A config is ``{"label": ..., "rest": {"rps", "p50_ms", "p99_ms"},
    "grpc": {...}}``; a front door that was not measured is ``None`` and never wins. A
    metric no configuration has is ``{"value": None, "config": None}``.

    >>> configs = [
    ...     {"label": "a", "rest": {"rps": 450.0, "p50_ms": 60.0, "p99_ms": 90.0},
    ...      "grpc": {"rps": 500.0, "p50_ms": 55.0, "p99_ms": 80.0}},
    ...     {"label": "b", "rest": {"rps": 520.0, "p50_ms": 58.0, "p99_ms": 140.0},
    ...      "grpc": None}]
    >>> best = best_per_metric(configs)
    >>> best["mlserver_rps"], best["mlserver_p99_ms"], best["mlserver_p50_ms"]["config"]
    ({'value': 520.0, 'config': 'b'}, {'value': 90.0, 'config': 'a'}, 'b')
    >>> best["mlserver_grpc_rps"]["config"], best_per_metric([])["mlserver_rps"]
    ('a', {'value': None, 'config': None})
    """
    found: dict[str, dict[str, Any]] = {}
    for key, (door, metric, highest) in METRICS.items():
        candidates = [(value, config["label"]) for config in configs
                      if (value := (config.get(door) or {}).get(metric)) is not None]  # fmt: skip
        pick = max if highest else min
        value, label = pick(candidates, key=lambda c: c[0]) if candidates else (None, None)
        found[key] = {"value": value, "config": label}
    return found


def kafka_config(rest_rps: Mapping[MLServerConfig, float | None]) -> MLServerConfig:
    """The configuration of MLServer's Kafka run: batching on, with the workers of the
    batching configuration with the highest REST rate (0 workers if none was measured).

    >>> kafka_config({MLServerConfig(0, True): 410.0, MLServerConfig(1, True): 530.0,
    ...               MLServerConfig(2, False): 900.0})
    MLServerConfig(workers=1, batching=True)
    >>> kafka_config({MLServerConfig(2, True): None})
    MLServerConfig(workers=0, batching=True)
    """
    batching = [(rps, c.workers) for c, rps in rest_rps.items() if c.batching and rps]
    return MLServerConfig(max(batching)[1] if batching else 0, True)
