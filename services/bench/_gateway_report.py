"""The report of ``modelstream bench --gateway``: flat keys for the headline numbers
(``gateway_rps``, ``gateway_p99_ms``, ``mlserver_rps``, ``mlserver_p99_ms``,
``mlserver_kafka_eps``, ``scorer_sklearn_eps``, ...), the details under ``http`` and
``kafka``, ratios, targets (:func:`services.bench._report.evaluate_targets`) and notes.
A number that could not be measured is ``None`` and its reason is under ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from services.bench._gateway import HttpRun
from services.bench._kafka_baseline import KafkaRun
from services.bench._report import evaluate_targets, ratio

if TYPE_CHECKING:
    from services.bench._gateway_run import GatewayConfig, GatewayMeasured

__all__ = ["GATEWAY_METHOD", "build_gateway_report", "max_difference"]

GATEWAY_METHOD = {
    "http": "closed loop, same generator and rows; 2xx after warm-up / window",
    "http_latency": "request written → response read (generator's clock)",
    "gateway_inside": "what every 10th answer reports: gateway_latency_ms, latency_ms",
    "server_cpu": "/proc CPU time during the load / requests sent (broker not counted)",
    "scorer_sklearn": "earliest reply CreateTime → N-th reply read (read_committed)",
    "mlserver_kafka": "first request produced → N-th response read",
}


def build_gateway_report(
    config: GatewayConfig, m: GatewayMeasured, environment: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON-ready report of one ``--gateway`` run."""
    gateway, mlserver = _http(m.gateway), _http(m.mlserver)
    scorer_eps = m.scorer.throughput.eps or None
    mls_kafka = m.mlserver_kafka if isinstance(m.mlserver_kafka, KafkaRun) else None
    mls_kafka_eps = (mls_kafka.throughput.eps or None) if mls_kafka else None
    report: dict[str, Any] = {
        "mode": "gateway",
        "concurrency": config.concurrency,
        "mlserver_workers": config.mlserver_workers,
        **_flat("gateway", gateway),
        **_flat("mlserver", mlserver),
        "mlserver_kafka_eps": mls_kafka_eps,
        "scorer_sklearn_eps": scorer_eps,
        "ratios": {
            "gateway_vs_mlserver_rps": ratio(gateway["rps"], mlserver["rps"]),
            "gateway_vs_mlserver_p99": ratio(gateway["p99_ms"], mlserver["p99_ms"]),
            "scorer_vs_mlserver_kafka": ratio(scorer_eps, mls_kafka_eps),
        },
        "http": {
            "seconds": config.seconds,
            "warmup": config.warmup,
            "gateway": gateway["detail"],
            "mlserver": mlserver["detail"],
        },
        "kafka": {
            "scorer": _kafka(m.scorer, config.events),
            "mlserver": _kafka(mls_kafka, config.mlserver_events),
        },
        "gateway_inside_ms": m.gateway.inside if isinstance(m.gateway, HttpRun) else None,
        "server_cpu_ms_per_request": _server_cpu(m.gateway, m.mlserver),
        "agreement": _agreement(m.gateway, m.mlserver),
        "errors": _errors(m),
        "method": GATEWAY_METHOD,
        "environment": dict(environment),
    }
    report["targets"] = evaluate_targets(report)
    report["notes"] = _notes(report)
    return report


def _http(run: HttpRun | str) -> dict[str, Any]:
    if not isinstance(run, HttpRun):
        return {"rps": None, "p50_ms": None, "p99_ms": None, "detail": None}
    load, latency = run.load, run.load.latency
    return {
        "rps": load.rps or None,
        "p50_ms": latency.p50 if latency else None,
        "p99_ms": latency.p99 if latency else None,
        "detail": load.to_dict(),
    }


def _server_cpu(*runs: HttpRun | str) -> dict[str, float | None]:
    """CPU ms per request of every server process (gateway, scorer, mlserver)."""
    found: dict[str, float | None] = {}
    for run in runs:
        if isinstance(run, HttpRun):
            found |= run.server_cpu_ms
    return found


def _flat(name: str, http: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{name}_rps": http["rps"], f"{name}_p50_ms": http["p50_ms"],
            f"{name}_p99_ms": http["p99_ms"]}  # fmt: skip


def _kafka(run: KafkaRun | None, sent: int) -> dict[str, Any] | None:
    if run is None:
        return None
    tp = run.throughput
    return {"sent": sent, "answered": tp.done, "read": run.replies, "seconds": tp.seconds,
            "eps": tp.eps, "budget_s": run.budget}  # fmt: skip


def max_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float | None:
    """The largest absolute difference between two systems' class probabilities for the
    same rows (None when either has none).

    >>> max_difference([[0.2, 0.8], [0.5, 0.5]], [[0.2, 0.8], [0.4, 0.6]])
    0.1
    >>> max_difference([], [[1.0]]) is None
    True
    """
    pairs = [(x, y) for ra, rb in zip(a, b, strict=False) for x, y in zip(ra, rb, strict=False)]
    return round(max(abs(x - y) for x, y in pairs), 12) if pairs else None


def _agreement(gateway: HttpRun | str, mlserver: HttpRun | str) -> dict[str, Any] | None:
    if not isinstance(gateway, HttpRun) or not isinstance(mlserver, HttpRun):
        return None
    return {"rows": min(len(gateway.probabilities), len(mlserver.probabilities)),
            "max_probability_difference": max_difference(gateway.probabilities,
                                                         mlserver.probabilities)}  # fmt: skip


def _errors(m: GatewayMeasured) -> dict[str, str]:
    phases = {"gateway": m.gateway, "mlserver": m.mlserver, "mlserver_kafka": m.mlserver_kafka}
    return {name: value for name, value in phases.items() if isinstance(value, str)}


def _notes(report: Mapping[str, Any]) -> list[str]:
    """What a reader of the numbers should know that the table does not say."""
    notes = [f"{phase} missing: {why.splitlines()[0]}" for phase, why in report["errors"].items()]
    load = report["environment"].get("load_average_before", 0.0)
    if load > 0.5:
        notes.append(f"the machine was already busy when the run started (load average "
                     f"{load:.1f} on {report['environment'].get('cpus')} cores)")  # fmt: skip
    for name in ("gateway", "mlserver"):
        detail = report["http"][name]
        if detail and detail["failed"]:
            notes.append(f"{name}: failed requests during the load: {detail['failed']}")
    for name, kafka in report["kafka"].items():
        if kafka and kafka["answered"] < kafka["sent"]:
            notes.append(
                f"{name} (Kafka) answered {kafka['answered']:,} of {kafka['sent']:,} requests "
                f"within {kafka['budget_s']:.0f} s; its rate is over those"
            )
    agreement = report["agreement"]
    if agreement and (agreement["max_probability_difference"] or 0.0) > 1e-9:
        notes.append(f"the gateway and MLServer disagree on the check rows by up to "
                     f"{agreement['max_probability_difference']:.3g} in probability")  # fmt: skip
    return notes
