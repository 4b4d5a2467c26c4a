"""Direct serving: the gateway scores in-process, journals every answer before sending
it, and logs every journaled answer once, with its challenger's outcome.

One module-wide stack and gateway (no scorer process): model ``m`` (River champion and
challenger) and model ``slow``, whose challenger takes 0.4 s per call.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import GatewayProcess, Running, bearer, running
from tests.integration.scoring_support import SleepyChallenger, Stack, reader, take, trained

pytestmark = pytest.mark.integration
DELAY = 0.4  # seconds the slow challenger sleeps per call


@pytest.fixture(scope="module")
def gw(kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    topics = Topics(f"gwd-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, Path(tmp_path_factory.mktemp("gwd")))
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    stack.add_model("slow", champion, SleepyChallenger(challenger, delay=DELAY))
    with running(stack, "--timeout-ms", "10000", mode="direct") as handle:
        yield handle
    registry.close()


def fire(url: str, token: str, model: str, records: list[dict[str, Any]], prefix: str
         ) -> list[httpx.Response]:  # fmt: skip
    """Every record at once, each with request id ``<prefix><i>``."""

    async def go() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=url, headers=bearer(token), timeout=30,
                                     limits=limits) as client:  # fmt: skip
            return await asyncio.gather(*(
                client.post(f"/v1/models/{model}/predict", json=r,
                            headers={"X-Request-Id": f"{prefix}{i}"})
                for i, r in enumerate(records)
            ))  # fmt: skip

    return asyncio.run(go())


def logged(gw: Running, model: str, ids: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
    """The prediction-log records of ``ids`` (read_committed), until each is there, then
    2 s more for duplicates."""
    consumer = reader(gw.stack.kafka, [gw.stack.topics.predictions(model)], uuid.uuid4().hex)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not ids <= {r["request_id"] for r in found}:
            found += [orjson.loads(m.value) for m in take(consumer, 0.2)]
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            found += [orjson.loads(m.value) for m in take(consumer, 0.2)]
    finally:
        consumer.close()
    return [r for r in found if r["request_id"] in ids]


def test_every_answer_is_logged_once_with_both_outputs(gw: Running) -> None:
    token = gw.client("ada", ["predict:m", "batch:m"], rate_per_s=10_000.0, burst=10_000)
    answers = fire(gw.url, token, "m", list(rows(200, seed=3)), "one-")
    batch = httpx.post(f"{gw.url}/v1/models/m/batch", json=list(rows(50, seed=4)),
                       headers={**bearer(token), "X-Request-Id": "many"}, timeout=30)  # fmt: skip
    assert [a.status_code for a in answers] == [200] * 200 and batch.status_code == 200
    ids = {a.json()["request_id"] for a in answers} | {
        item["request_id"] for item in batch.json()["results"] if item["ok"]
    }
    assert len(ids) == 250
    records = logged(gw, "m", ids)
    counts = Counter(r["request_id"] for r in records)
    assert set(counts) == ids and set(counts.values()) == {1}, counts.most_common(3)
    journal = f"{gw.stack.topics.prefix}.gateway-t.journal"
    for record in records:
        assert record["client_id"] == "ada" and record["served_by"] == "champion"
        assert record["source_topic"] == journal and record["source_offset"] >= 0
        assert record["champion"]["version"] == 1 and record["champion"]["output"] is not None
        assert record["challenger"]["version"] == 2
        assert record["challenger"]["output"] is not None, record["challenger"]
    replies = {a.json()["request_id"]: a.json()["prediction"] for a in answers}
    assert all(replies[r["request_id"]] == r["champion"]["output"]
               for r in records if r["request_id"] in replies)  # fmt: skip


def test_a_slow_challenger_delays_no_answer_and_is_still_logged(gw: Running) -> None:
    token = gw.client("bea", ["predict:slow"], rate_per_s=10_000.0, burst=10_000)
    records = list(rows(40, seed=8))
    answers = fire(gw.url, token, "slow", records, "slow-")
    assert [a.status_code for a in answers] == [200] * 40
    # each answer left while the challenger (0.4 s per call) was still busy with it
    assert max(a.json()["latency_ms"] for a in answers) < DELAY * 1e3
    logs = logged(gw, "slow", {f"slow-{i}" for i in range(40)})
    assert len(logs) == 40
    assert all(r["challenger"]["output"] is not None for r in logs), [
        r["challenger"] for r in logs if r["challenger"]["output"] is None
    ][:3]
    assert max(r["challenger"]["latency_ms"] for r in logs) >= DELAY * 1e3


def test_promotion_under_load_switches_versions_with_no_failed_call(gw: Running) -> None:
    token = gw.client("cy", ["predict:m"], rate_per_s=10_000.0, burst=10_000)
    records = list(rows(50, seed=9))
    versions: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=gw.url, headers=bearer(token), timeout=30) as client:
            i = 0
            while not stop.is_set():
                answer = client.post("/v1/models/m/predict", json=records[i % 50])
                if answer.status_code == 200:
                    versions.append(answer.json()["model_version"])
                else:
                    failures.append(answer.text)
                i += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        gw.stack.registry.promote("m", 2, reason="test: promotion under load")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and versions[-1:] != [2]:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        gw.stack.registry.promote("m", 1, reason="test: back to v1")
    assert failures == []
    assert versions[0] == 1 and versions[-1] == 2
    first_two = versions.index(2)
    # answers are collected from 4 threads: a v1 answer already in flight may land late
    assert versions[first_two:].count(1) <= 4, versions[first_two:][:20]


def test_kill_9_loses_no_answered_request_from_the_log(gw: Running) -> None:
    """Answers whose log records wait on the slow challenger when the gateway is killed
    are logged once by the next gateway with the same instance id."""
    stack = gw.stack
    second = GatewayProcess(stack, "--timeout-ms", "10000", instance="k").start()
    token = gw.client("dee", ["predict:slow"], rate_per_s=10_000.0, burst=10_000)
    from tests.integration.gateway_support import wait_until_known

    wait_until_known(second.url, token)
    answers = fire(second.url, token, "slow", list(rows(30, seed=12)), "kill-")
    assert second.proc is not None
    second.proc.send_signal(signal.SIGKILL)  # the challenger still sleeps on these
    second.proc.wait(10)
    assert [a.status_code for a in answers] == [200] * 30
    again = GatewayProcess(stack, "--timeout-ms", "10000", instance="k")
    again.port, again.url = second.port, second.url
    again.start()
    try:
        records = logged(gw, "slow", {f"kill-{i}" for i in range(30)})
    finally:
        restarted = again.stop()
    assert "journal records of an earlier process" in restarted, restarted[-2000:]
    counts = Counter(r["request_id"] for r in records)
    assert set(counts) == {f"kill-{i}" for i in range(30)} and set(counts.values()) == {1}
    assert all(r["challenger"]["output"] is not None for r in records)
