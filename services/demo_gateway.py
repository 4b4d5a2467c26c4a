"""The demo's HTTP leg: the same model through the gateway, as a client without Kafka.

Creates an API client, starts ``modelstream run gateway`` beside the demo's scorer, and
sends concurrent REST predictions, one batch (with a bad record in it), an Open
Inference Protocol request, and the calls the gateway must refuse (no token, a record
that does not fit the schema); then says what came back and how fast.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from services.gateway.clients import ClientStore
from services.gateway.policy import Limits
from services.gateway.service import wait_ready
from services.localstack import free_port
from services.settings import Settings
from streams.kafka import KafkaConfig, Topics

__all__ = ["GatewayLeg", "run_gateway_leg"]


@dataclass
class GatewayLeg:
    """What the HTTP leg measured (the demo summary's ``gateway`` key)."""

    url: str = ""
    requests: int = 0
    served: int = 0  # records answered by the scorer through the gateway
    status: Counter[int] = field(default_factory=Counter)
    latency_ms: dict[str, float] = field(default_factory=dict)
    rps: float = 0.0
    batch: dict[str, int] = field(default_factory=dict)
    infer_rows: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url, "requests": self.requests, "served": self.served,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "latency_ms": self.latency_ms, "rps": self.rps, "batch": self.batch,
            "infer_rows": self.infer_rows, "refused": self.refused,
        }  # fmt: skip


def run_gateway_leg(
    settings: Settings, kafka: KafkaConfig, names: Topics, model: str, run: str,
    records: list[dict[str, Any]], console: Console,
) -> GatewayLeg:  # fmt: skip
    """Start a gateway, call it as a client would, stop it."""
    with ClientStore(kafka, names) as store:
        _, token = store.create(
            f"demo-{run}", [f"predict:{model}", f"batch:{model}", "catalogue:read"],
            limits=Limits(rate_per_s=5_000.0, burst=5_000), description="the demo",
        )  # fmt: skip
    port = free_port()
    proc = _start(settings, kafka, names, port)
    leg = GatewayLeg(url=f"http://127.0.0.1:{port}")
    try:
        with console.status("calling the gateway over HTTP ..."):
            asyncio.run(_exercise(leg, token, model, run, records))
    finally:
        proc.terminate()
        proc.wait(30)
    _report(leg, console)
    return leg


def _start(settings: Settings, kafka: KafkaConfig, names: Topics, port: int) -> Any:
    log = settings.data_dir / "gateway.log"
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": names.prefix,
    }
    exe = str(Path(sys.executable).with_name("modelstream"))
    cmd = [exe, "run", "gateway", "--port", str(port), "--instance", "demo", "--no-access-log"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if wait_ready(f"http://127.0.0.1:{port}", proc):
        return proc
    proc.kill()
    raise RuntimeError(f"the gateway did not start; see {log}")


async def _exercise(
    leg: GatewayLeg, token: str, model: str, run: str, records: list[dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=leg.url, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=16)) as client:  # fmt: skip
        await _predictions(client, leg, model, run, records[:400])
        await _batch(client, leg, model, run, records[400:500])
        await _infer(client, leg, model, run, records[500:510])
        await _refusals(client, leg, model, records[0])


async def _predictions(
    client: httpx.AsyncClient, leg: GatewayLeg, model: str, run: str, records: list[dict[str, Any]]
) -> None:
    gate = asyncio.Semaphore(16)  # 16 clients in flight at once

    async def one(i: int, record: dict[str, Any]) -> float:
        async with gate:
            started = time.perf_counter()
            answer = await client.post(f"/v1/models/{model}/predict", json=record,
                                       headers={"X-Request-Id": f"gw-{run}-p{i}"})  # fmt: skip
            leg.status[answer.status_code] += 1
            leg.served += answer.status_code == 200
            return (time.perf_counter() - started) * 1e3

    started = time.perf_counter()
    latencies = sorted(await asyncio.gather(*(one(i, r) for i, r in enumerate(records))))
    leg.rps = round(len(records) / (time.perf_counter() - started), 1)
    leg.requests += len(records)
    leg.latency_ms = {
        f"p{q}": round(latencies[min(len(latencies) - 1, int(len(latencies) * q / 100))], 1)
        for q in (50, 95, 99)
    }


async def _batch(
    client: httpx.AsyncClient, leg: GatewayLeg, model: str, run: str, records: list[dict[str, Any]]
) -> None:
    body: list[Any] = [*records, {"x0": "not a number"}]
    answer = await client.post(f"/v1/models/{model}/batch", json=body,
                               headers={"X-Request-Id": f"gw-{run}-b"})  # fmt: skip
    leg.status[answer.status_code] += 1
    leg.requests += 1
    summary = answer.json()
    leg.batch = {k: summary[k] for k in ("count", "succeeded", "failed")}
    leg.served += summary["succeeded"]


async def _infer(
    client: httpx.AsyncClient, leg: GatewayLeg, model: str, run: str, records: list[dict[str, Any]]
) -> None:
    names = list(records[0])
    inputs = [{"name": n, "shape": [len(records)], "datatype": "BYTES" if n == "group" else "FP64",
               "data": [r[n] for r in records]} for n in names]  # fmt: skip
    answer = await client.post(f"/v2/models/{model}/infer",
                               json={"id": f"gw-{run}-i", "inputs": inputs})  # fmt: skip
    leg.status[answer.status_code] += 1
    leg.requests += 1
    if answer.status_code == 200:
        leg.infer_rows = answer.json()["outputs"][0]["shape"][0]
        leg.served += leg.infer_rows


async def _refusals(
    client: httpx.AsyncClient, leg: GatewayLeg, model: str, record: dict[str, Any]
) -> None:
    anonymous = await client.post(f"/v1/models/{model}/predict", json=record,
                                  headers={"Authorization": ""})  # fmt: skip
    bad = await client.post(f"/v1/models/{model}/predict", json={**record, "x1": "high"})
    for answer in (anonymous, bad):
        leg.status[answer.status_code] += 1
        leg.requests += 1
        leg.refused[answer.json()["error"]["code"]] = answer.status_code


def _report(leg: GatewayLeg, console: Console) -> None:
    table = Table(title=f"gateway {leg.url} (HTTP → Kafka → scorer → HTTP)", show_header=False)
    table.add_row("predict, 16 in flight", f"{leg.rps} req/s, latency {leg.latency_ms} ms")
    table.add_row("batch", str(leg.batch))
    table.add_row("v2 infer rows", str(leg.infer_rows))
    table.add_row("refused", ", ".join(f"{c} → {s}" for c, s in leg.refused.items()))
    table.add_row("HTTP status counts", str(dict(sorted(leg.status.items()))))
    console.print(table)
