"""The rows of ``modelstream bench --gateway``'s table: ``(measurement, value, method
key)``, read from the report (:mod:`services.bench._gateway_report`), a dash for what
was not measured. MLServer's best figure per metric names the configuration it came
from; every configuration of the grid has a row of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.bench._format import fmt

__all__ = ["gateway_rows"]

Row = tuple[str, str, str]


def gateway_rows(report: Mapping[str, Any]) -> list[Row]:
    """Every row of the ``--gateway`` table, in the order the phases ran."""
    return [*_gateway(report), *_mlserver(report), *_cpu(report),
            ("scorer, sklearn champion (Kafka, EOS)", _rate(report, "scorer_sklearn_eps", "ev/s"),
             "scorer_sklearn"),
            (f"MLServer Kafka mode ({report.get('mlserver_kafka_config') or '—'})",
             _rate(report, "mlserver_kafka_eps", "ev/s"), "mlserver_kafka")]  # fmt: skip


def _gateway(report: Mapping[str, Any]) -> list[Row]:
    return [
        ("gateway, direct: REST (scoring in-process)", _rate(report, "gateway_rps", "req/s"),
         "http"),
        ("  latency p50 / p99", _latency(report, "gateway"), "http_latency"),
        ("    in the gateway / queued and scored, p50", _inside(report, "gateway"),
         "gateway_inside"),
        ("gateway, direct: gRPC ModelInfer (a row a call)", _rate(report, "grpc_rps", "calls/s"),
         "grpc"),
        ("  latency p50 / p99", _latency(report, "grpc"), ""),
        ("  prediction-log records / answers", _logged(report), "logged"),
        ("gateway --via-kafka → scorer → gateway", _rate(report, "gateway_kafka_rps", "req/s"),
         ""),
        ("  latency p50 / p99", _latency(report, "gateway_kafka"), ""),
        ("    in the gateway / in the scorer, p50", _inside(report, "gateway_kafka"), ""),
    ]  # fmt: skip


def _mlserver(report: Mapping[str, Any]) -> list[Row]:
    configs = report.get("mlserver_configs") or []
    return [*_best(report, "REST", "mlserver", "req/s", len(configs), "mlserver_grid"),
            *_best(report, "gRPC", "mlserver_grpc", "calls/s", len(configs), ""),
            *(_config_row(config) for config in configs)]  # fmt: skip


def _best(
    report: Mapping[str, Any], door: str, name: str, unit: str, configs: int, method: str
) -> list[Row]:
    """MLServer's best rate and latencies through ``door``, and where each came from.

    >>> rows = _best({"mlserver_rps": 500.0, "mlserver_p50_ms": 40.0, "mlserver_p99_ms": 90.0,
    ...     "mlserver_best": {"mlserver_rps": "workers=0, batching on",
    ...                       "mlserver_p99_ms": "workers=1, batching off"}},
    ...     "REST", "mlserver", "req/s", 6, "")
    >>> [value for _, value, _ in rows]  # doctest: +NORMALIZE_WHITESPACE
    ['500 req/s (workers=0, batching on)', '40.00 / 90.00 ms',
     '— / workers=1, batching off']
    """
    best = report.get("mlserver_best") or {}
    source = [best.get(f"{name}_{metric}") or "—" for metric in ("rps", "p50_ms", "p99_ms")]
    return [
        (f"MLServer {door}, best of {configs} configurations",
         f"{_rate(report, f'{name}_rps', unit)} ({source[0]})", method),
        ("  latency p50 / p99", _latency(report, name), ""),
        ("    from (p50 / p99)", f"{source[1]} / {source[2]}", ""),
    ]  # fmt: skip


def _config_row(config: Mapping[str, Any]) -> Row:
    """One configuration: REST / gRPC rates and p99s.

    >>> _config_row({"label": "workers=1, batching on",
    ...     "rest": {"rps": 512.3, "p99_ms": 91.0}, "grpc": None})  # doctest: +NORMALIZE_WHITESPACE
    ('  workers=1, batching on: REST / gRPC', '512 / — per s, p99 91.00 / — ms', '')
    """
    rest, grpc = config.get("rest") or {}, config.get("grpc") or {}
    rates = f"{fmt(rest.get('rps'), 'events/s')} / {fmt(grpc.get('rps'), 'events/s')} per s"
    tails = f"p99 {fmt(rest.get('p99_ms'), 'ms')} / {fmt(grpc.get('p99_ms'), 'ms')} ms"
    return (f"  {config.get('label')}: REST / gRPC", f"{rates}, {tails}", "")


def _cpu(report: Mapping[str, Any]) -> list[Row]:
    """CPU ms per request of each server process.

    >>> rows = _cpu({"server_cpu_ms_per_request": {"gateway": 1.25, "gateway_grpc": 1.0,
    ...     "gateway_kafka": 1.5, "scorer": 0.5, "mlserver": 2.0}})
    >>> [value for _, value, _ in rows]
    ['1.25 / 1.00 ms', '1.50 + 0.50 ms', '2.00 / — ms']
    """
    cpu = report.get("server_cpu_ms_per_request") or {}

    def of(*names: str, sep: str = " / ") -> str:
        return sep.join(fmt(cpu.get(name), "ms") for name in names) + " ms"

    return [
        ("server CPU per request: direct REST / gRPC", of("gateway", "gateway_grpc"),
         "server_cpu"),
        ("  --via-kafka: gateway + scorer", of("gateway_kafka", "scorer", sep=" + "), ""),
        ("  MLServer REST / gRPC (fastest configurations)", of("mlserver", "mlserver_grpc"), ""),
    ]  # fmt: skip


def _rate(report: Mapping[str, Any], key: str, unit: str) -> str:
    return f"{fmt(report.get(key), 'events/s')} {unit}"


def _latency(report: Mapping[str, Any], system: str) -> str:
    p50, p99 = report.get(f"{system}_p50_ms"), report.get(f"{system}_p99_ms")
    return f"{fmt(p50, 'ms')} / {fmt(p99, 'ms')} ms"


def _logged(report: Mapping[str, Any]) -> str:
    """``logged_ratio`` to four decimals, and the counts behind it.

    >>> _logged({"logged_ratio": 0.9995, "logged": {"logged": 1999, "answered": 2000}})
    '0.9995 (1,999 / 2,000)'
    >>> _logged({"logged_ratio": None, "logged": None})
    '—'
    """
    value, counts = report.get("logged_ratio"), report.get("logged") or {}
    if value is None:
        return "—"
    return f"{value:.4f} ({counts.get('logged', 0):,} / {counts.get('answered', 0):,})"


def _inside(report: Mapping[str, Any], system: str) -> str:
    """p50 of the times a gateway's answers report (``gateway_latency_ms``, ``latency_ms``)."""
    inside = report.get(f"{system}_inside_ms") or {}
    p50 = [(inside.get(part) or {}).get("p50") for part in ("gateway", "scorer")]
    return " / ".join(fmt(v, "ms") for v in p50) + " ms"
