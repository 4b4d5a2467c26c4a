"""The gRPC load generator's own process: standard library and grpcio only.

:func:`services.bench._grpc_load.run_grpc_load` runs this file as a script (``python -I
<path>``, :mod:`services.bench._driver`), so it imports nothing of modelstream, nor any
generated protobuf code: the requests come pre-serialized, and the method is called
through a generic unary-unary callable that sends bytes and returns bytes. What a call
costs here is the same whichever server answers it.

``concurrency`` calls in flight on one asyncio loop (grpc.aio), spread over ``channels``
channels, each with its own HTTP/2 connection (a local subchannel pool: channels to the
same target would otherwise share one), one call per slot (closed loop): a slot sends its
next request as soon as the previous answer came, for ``warmup + seconds``.

Protocol: the spec as JSON on stdin (:meth:`services.bench._grpc_load.GrpcSpec.to_json`,
requests base64); on stdout ``tick <calls done>`` once a second, then ``result <json>``
with every call as ``[sent, done, code]`` (seconds since the start; the gRPC status code
name, ``"OK"`` for an answer), the first answers (base64) and the CPU time it used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import sys
import time
from collections.abc import Mapping
from typing import Any

import grpc

__all__ = ["drive"]

SAMPLES = 3  # the first answers are kept, to show what was answered
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
Record = tuple[float, float, str]


class _Driver:
    """The shared state of one load: what to send, on which channels, what came back."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.concurrency = int(spec["concurrency"])
        self.timeout = float(spec["request_timeout"])
        self.metadata = tuple((str(k), str(v)) for k, v in spec["metadata"])
        self.requests = [base64.b64decode(r) for r in spec["requests"]]
        self.channels = [grpc.aio.insecure_channel(spec["target"], options=CHANNEL_OPTIONS)
                         for _ in range(int(spec["channels"]))]  # fmt: skip
        # no serializers: the request goes out as the bytes given, the answer comes as bytes
        self.calls = [channel.unary_unary(spec["method"]) for channel in self.channels]
        self.records: list[Record] = []
        self.samples: list[str] = []
        self.began = time.perf_counter()
        self.deadline = self.began + float(spec["warmup"]) + float(spec["seconds"])

    async def worker(self, slot: int) -> None:
        """One call in flight: send, await the answer, record, repeat."""
        call, clock = self.calls[slot % len(self.calls)], time.perf_counter
        i, requests, records = slot, self.requests, self.records
        while (sent := clock()) < self.deadline:
            try:
                answer = await call(requests[i % len(requests)], timeout=self.timeout,
                                    metadata=self.metadata)  # fmt: skip
            except grpc.aio.AioRpcError as exc:
                records.append((sent, clock(), exc.code().name))
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
                continue
            records.append((sent, clock(), "OK"))
            if len(self.samples) < SAMPLES:
                self.samples.append(base64.b64encode(answer).decode())
            i += self.concurrency

    async def ticker(self) -> None:
        """``tick <calls done>`` once a second (the parent's progress), until cancelled."""
        next_tick = self.began + 1.0
        while True:
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            print(f"tick {len(self.records)}", flush=True)
            next_tick += 1.0

    def relative(self) -> list[Record]:
        """The records in seconds since the start, to the microsecond."""
        t0 = self.began
        return [(round(s - t0, 6), round(d - t0, 6), code) for s, d, code in self.records]

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


async def drive(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run the load in this process: records, samples and the CPU seconds it took."""
    cpu_before = _cpu_seconds()
    driver = _Driver(spec)
    ticker = asyncio.create_task(driver.ticker())
    try:
        await asyncio.gather(*(driver.worker(i) for i in range(driver.concurrency)))
    finally:
        ticker.cancel()
        await driver.close()
    return {"records": driver.relative(), "samples": driver.samples,
            "client_cpu_seconds": _cpu_seconds() - cpu_before}  # fmt: skip


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    result = asyncio.run(drive(spec))  # grpc.aio runs on asyncio's own loop, not uvloop
    print("result " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
