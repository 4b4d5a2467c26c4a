"""The report of ``modelstream bench --gateway``: flat keys for the headline numbers, the
details under ``http``, ``grpc``, ``logged``, ``mlserver_configs`` and ``kafka``, ratios,
targets (:func:`services.bench._report.evaluate_targets`) and notes. A number that could
not be measured is ``None`` and its reason is under ``errors``.

Headline keys: ``gateway_*`` (the direct gateway, REST), ``grpc_*`` (its gRPC),
``gateway_kafka_*`` (``--via-kafka``), ``logged_ratio``, ``mlserver_*`` and
``mlserver_grpc_*`` (MLServer's best configuration per metric, named in
``mlserver_best``), ``mlserver_kafka_eps`` (batching on, ``mlserver_kafka_config``) and
``scorer_sklearn_eps``; each ``*_rps`` with ``*_p50_ms`` and ``*_p99_ms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from services.bench._gateway import GrpcRun, HttpRun
from services.bench._grpc_load import CALLS_PER_CHANNEL
from services.bench._kafka_baseline import KafkaRun
from services.bench._logged import Logged
from services.bench._mlserver_grid import METRICS, best_per_metric
from services.bench._mlserver_serve import ConfigRun
from services.bench._report import evaluate_targets, ratio

if TYPE_CHECKING:
    from services.bench._gateway_run import GatewayConfig, GatewayMeasured

__all__ = ["GATEWAY_METHOD", "build_gateway_report", "max_difference"]

GATEWAY_METHOD = {
    "http": "closed loop, same generator and rows; 2xx after warm-up / window",
    "http_latency": "request written → response read (generator's clock)",
    "grpc": "closed loop, grpc.aio, same pre-serialized requests; OK after warm-up / window",
    "logged": "log records of the bench's client / every answer it got (read_committed)",
    "gateway_inside": "what every 10th answer reports: gateway_latency_ms, latency_ms",
    "mlserver_grid": "best of the grid per metric (mlserver_best names each configuration)",
    "server_cpu": "/proc CPU time during the load / requests sent (broker not counted)",
    "scorer_sklearn": "earliest reply CreateTime → N-th reply read (read_committed)",
    "mlserver_kafka": "first request produced → N-th response read",
}
Run = HttpRun | GrpcRun | str


def build_gateway_report(
    config: GatewayConfig, m: GatewayMeasured, environment: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON-ready report of one ``--gateway`` run."""
    configs = _configs(m.mlserver)
    best = best_per_metric(configs)
    gateway, grpc, via_kafka = _door(m.direct.rest), _door(m.direct.grpc), _door(m.gateway_kafka)
    logged = m.direct.logged if isinstance(m.direct.logged, Logged) else None
    report: dict[str, Any] = {
        "mode": "gateway",
        "concurrency": config.concurrency,
        **_flat("gateway", gateway),
        **_flat("grpc", grpc),
        **_flat("gateway_kafka", via_kafka),
        "logged_ratio": logged.ratio if logged else None,
        **{key: best[key]["value"] for key in METRICS},
        "mlserver_best": {key: best[key]["config"] for key in METRICS},
        "mlserver_kafka_eps": _eps(m.mlserver_kafka),
        "mlserver_kafka_config": _label(m),
        "scorer_sklearn_eps": m.scorer.throughput.eps or None,
        "mlserver_configs": configs,
        **_details(config, m),
    }  # fmt: skip
    report["ratios"] = _ratios(report)
    report["errors"] = _errors(m)
    report |= {"method": GATEWAY_METHOD, "environment": dict(environment)}
    report["targets"] = evaluate_targets(report)
    report["notes"] = _notes(report)
    return report


def _details(config: GatewayConfig, m: GatewayMeasured) -> dict[str, Any]:
    direct, via_kafka = m.direct, m.gateway_kafka
    return {
        "load": {"seconds": config.seconds, "warmup": config.warmup,
                 "concurrency": config.concurrency, "grpc_calls_per_channel": CALLS_PER_CHANNEL,
                 "mlserver_grid": {"parallel_workers": list(config.mlserver_workers),
                                   "batching": list(config.mlserver_batching)}},
        "http": {"seconds": config.seconds, "warmup": config.warmup,
                 "gateway": _detail(direct.rest), "gateway_kafka": _detail(via_kafka)},
        "grpc": {"gateway": _detail(direct.grpc)},
        "logged": direct.logged.to_dict() if isinstance(direct.logged, Logged) else None,
        "kafka": {"scorer": _kafka(m.scorer, config.events),
                  "mlserver": _kafka(m.mlserver_kafka, config.mlserver_events)},
        "gateway_inside_ms": _inside(direct.rest),
        "gateway_kafka_inside_ms": _inside(via_kafka),
        "server_cpu_ms_per_request": _server_cpu(m),
        "agreement": _agreement(m),
    }  # fmt: skip


def _inside(run: Run) -> dict[str, dict[str, float]] | None:
    return run.inside if isinstance(run, HttpRun) else None


def _door(run: Run) -> dict[str, Any] | None:
    """Rate and latency of one front door's load, or None if it was not measured."""
    if isinstance(run, str):
        return None
    load, latency = run.load, run.load.latency
    return {"rps": load.rps or None, "p50_ms": latency.p50 if latency else None,
            "p99_ms": latency.p99 if latency else None, "ok": load.ok,
            "failed": load.failed}  # fmt: skip


def _flat(name: str, door: Mapping[str, Any] | None) -> dict[str, Any]:
    door = door or {}
    return {f"{name}_rps": door.get("rps"), f"{name}_p50_ms": door.get("p50_ms"),
            f"{name}_p99_ms": door.get("p99_ms")}  # fmt: skip


def _detail(run: Run) -> dict[str, Any] | None:
    return None if isinstance(run, str) else run.load.to_dict()


def _configs(runs: Sequence[ConfigRun] | str) -> list[dict[str, Any]]:
    """Each MLServer configuration: its settings, REST and gRPC figures, CPU, errors."""
    if isinstance(runs, str):
        return []
    return [run.config.to_dict() | {
        "rest": _door(run.rest), "grpc": _door(run.grpc),
        "server_cpu_ms_per_request": _cpu(run.rest) | _cpu(run.grpc),
        "errors": {door: why for door, why in (("rest", run.rest), ("grpc", run.grpc))
                   if isinstance(why, str)},
    } for run in runs]  # fmt: skip


def _cpu(run: Run) -> dict[str, float | None]:
    return {} if isinstance(run, str) else dict(run.server_cpu_ms)


def _eps(run: KafkaRun | str) -> float | None:
    return (run.throughput.eps or None) if isinstance(run, KafkaRun) else None


def _label(m: GatewayMeasured) -> str | None:
    return m.mlserver_kafka_config.label if m.mlserver_kafka_config else None


def _ratios(report: Mapping[str, Any]) -> dict[str, float | None]:
    def of(a: str, b: str) -> float | None:
        return ratio(report.get(a), report.get(b))

    return {
        "gateway_vs_mlserver_rps": of("gateway_rps", "mlserver_rps"),
        "gateway_vs_mlserver_p99": of("gateway_p99_ms", "mlserver_p99_ms"),
        "grpc_vs_mlserver_grpc_rps": of("grpc_rps", "mlserver_grpc_rps"),
        "grpc_vs_mlserver_grpc_p99": of("grpc_p99_ms", "mlserver_grpc_p99_ms"),
        "gateway_kafka_vs_mlserver_rps": of("gateway_kafka_rps", "mlserver_rps"),
        "gateway_vs_gateway_kafka_rps": of("gateway_rps", "gateway_kafka_rps"),
        "scorer_vs_mlserver_kafka": of("scorer_sklearn_eps", "mlserver_kafka_eps"),
    }


def _server_cpu(m: GatewayMeasured) -> dict[str, float | None]:
    """CPU ms per request of every server process: the gateways and the scorer, and
    MLServer in the configurations with the best REST and gRPC rates."""
    found: dict[str, float | None] = {}
    for run in (m.direct.rest, m.direct.grpc, m.gateway_kafka):
        found |= _cpu(run)
    if not isinstance(m.mlserver, str):
        for door in ("rest", "grpc"):
            runs = [r for r in m.mlserver if not isinstance(getattr(r, door), str)]
            fastest = max(runs, key=lambda r: getattr(r, door).load.rps, default=None)
            found |= _cpu(getattr(fastest, door)) if fastest else {}
    return found


def _kafka(run: KafkaRun | str, sent: int) -> dict[str, Any] | None:
    if isinstance(run, str):
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


def _compare(a: Run, b: Run) -> dict[str, Any] | None:
    if not isinstance(a, HttpRun) or not isinstance(b, HttpRun):
        return None
    return {"rows": min(len(a.probabilities), len(b.probabilities)),
            "max_probability_difference": max_difference(a.probabilities,
                                                         b.probabilities)}  # fmt: skip


def _agreement(m: GatewayMeasured) -> dict[str, Any]:
    """The check rows' probabilities: each gateway against MLServer (its first measured
    configuration), and the direct gateway against the scorer behind ``--via-kafka``."""
    runs = [] if isinstance(m.mlserver, str) else m.mlserver
    reference = next((r for r in runs if isinstance(r.rest, HttpRun)), None)
    mlserver: Run = reference.rest if reference else "not measured"
    return {
        "mlserver_config": reference.config.label if reference else None,
        "gateway_vs_mlserver": _compare(m.direct.rest, mlserver),
        "gateway_kafka_vs_mlserver": _compare(m.gateway_kafka, mlserver),
        "gateway_vs_gateway_kafka": _compare(m.direct.rest, m.gateway_kafka),
    }


def _errors(m: GatewayMeasured) -> dict[str, str]:
    direct = m.direct
    phases: dict[str, Any] = {
        "gateway": direct.rest, "grpc": direct.grpc, "logged": direct.logged,
        "gateway_kafka": m.gateway_kafka, "mlserver": m.mlserver,
        "mlserver_kafka": m.mlserver_kafka,
    }  # fmt: skip
    found = {name: value for name, value in phases.items() if isinstance(value, str)}
    if not isinstance(m.mlserver, str):
        for run in m.mlserver:
            for door in ("rest", "grpc"):
                if isinstance(why := getattr(run, door), str):
                    found[f"mlserver {door} ({run.config.label})"] = why
    return found


def _notes(report: Mapping[str, Any]) -> list[str]:
    """What a reader of the numbers should know that the table does not say."""
    notes = [f"{phase} missing: {why.splitlines()[0]}" for phase, why in report["errors"].items()]
    load = report["environment"].get("load_average_before", 0.0)
    if load > 0.5:
        notes.append(f"the machine was already busy when the run started (load average "
                     f"{load:.1f} on {report['environment'].get('cpus')} cores)")  # fmt: skip
    notes += _failed_notes(report)
    for name, kafka in report["kafka"].items():
        if kafka and kafka["answered"] < kafka["sent"]:
            notes.append(
                f"{name} (Kafka) answered {kafka['answered']:,} of {kafka['sent']:,} requests "
                f"within {kafka['budget_s']:.0f} s; its rate is over those"
            )
    logged = report["logged"]
    if logged and not logged["settled"]:
        notes.append(f"the prediction log was still growing after {logged['waited_s']:.0f} s "
                     f"of reading: logged_ratio counts what had landed")  # fmt: skip
    for pair, agreement in report["agreement"].items():
        apart = agreement.get("max_probability_difference") if isinstance(agreement, dict) else 0
        if (apart or 0.0) > 1e-9:
            notes.append(f"{pair.replace('_vs_', ' and ')} disagree on the check rows by up "
                         f"to {apart:.3g} in probability")  # fmt: skip
    return notes


def _failed_notes(report: Mapping[str, Any]) -> list[str]:
    loads = {"gateway": report["http"]["gateway"], "gateway_kafka": report["http"]["gateway_kafka"],
             "grpc": report["grpc"]["gateway"]}  # fmt: skip
    notes = [f"{name}: failed requests during the load: {detail['failed']}"
             for name, detail in loads.items() if detail and detail["failed"]]  # fmt: skip
    for config in report["mlserver_configs"]:
        for door in ("rest", "grpc"):
            if (config[door] or {}).get("failed"):
                notes.append(f"MLServer {door} ({config['label']}): failed requests during "
                             f"the load: {config[door]['failed']}")  # fmt: skip
    return notes
