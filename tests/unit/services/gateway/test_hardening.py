"""The gateway's own protections over REST, without a network: the in-flight limit
(503 + Retry-After), the body deadline (408), the rate limit charged before a body is
read, v2 infer's batch scope and limits, and records too large for one Kafka message
(413 before anything is queued)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from services.gateway.app import create_app
from services.gateway.auth import read_body
from services.gateway.bridge import OneRequest
from services.gateway.context import GatewayConfig, GatewayContext
from services.gateway.errors import ApiError
from services.gateway.policy import PolicyManager
from services.gateway.service import uvicorn_config
from tests.unit.services.gateway.test_catalogue import Directory, entry
from tests.unit.services.gateway.test_grpc_servicer import Clients, Serving

ROW = {"age": 3, "plan": "pro", "spend": 1.5, "note": "hi"}


class RestServing(Serving, OneRequest):
    """The gRPC tests' backend, with ``request`` and the reply fields /v1 answers."""

    async def request_many(
        self, model: str, requests: list[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        replies = await super().request_many(model, requests, client_id, timeout)
        return [{**r, "model": model, "task": "classification", "latency_ms": 1.0}
                for r in replies]  # fmt: skip


@pytest.fixture
def serving() -> Serving:
    return RestServing()


@pytest.fixture
def ctx(serving: Serving) -> GatewayContext:
    directory = Directory(entry())
    directory.synced = threading.Event()
    directory.synced.set()
    return GatewayContext(GatewayConfig(max_in_flight=4), serving, directory, Clients(),  # type: ignore[arg-type]
                          PolicyManager())  # fmt: skip


@pytest.fixture
def client(ctx: GatewayContext) -> TestClient:
    return TestClient(create_app(ctx))


def post(client: TestClient, path: str, token: str, **kwargs: Any) -> Any:
    return client.post(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def infer_body(rows: int) -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": [rows], "datatype": "BYTES",
                        "data": [value] * rows} for name, value in ROW.items()]}  # fmt: skip


def error_code(answer: Any) -> str:
    body = answer.json()
    return str(body["code"] if isinstance(body["error"], str) else body["error"]["code"])


# -- in flight


@pytest.mark.parametrize("path", ["/v1/models/churn/predict", "/v2/models/churn/infer",
                                  "/v1/catalogue"])  # fmt: skip
def test_past_the_in_flight_limit_the_answer_is_503_with_retry_after(
    ctx: GatewayContext, client: TestClient, serving: Serving, path: str
) -> None:
    ctx.in_flight.count = ctx.in_flight.limit  # every slot taken by requests being served
    answer = post(client, path, "caller", json=ROW)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert error_code(answer) == "overloaded" and not serving.sent
    assert client.get("/v2/health/ready").status_code == 200  # probes still answered
    ctx.in_flight.count = 0
    assert post(client, "/v1/models/churn/predict", "caller", json=ROW).status_code == 200
    assert ctx.in_flight.count == 0 and ctx.in_flight.refused == 1  # the slot came back


def test_uvicorn_backstops_sit_above_the_apps_own_limit() -> None:
    config = GatewayConfig(max_in_flight=100, keep_alive_timeout=3, forwarded_allow_ips="10.0.0.1")
    settings = uvicorn_config(object(), config, "127.0.0.1", 8080)
    assert settings.limit_concurrency == 264 and settings.timeout_keep_alive == 3
    assert settings.proxy_headers and settings.forwarded_allow_ips == "10.0.0.1"


# -- the body deadline


def test_a_body_that_trickles_past_the_deadline_is_408() -> None:
    async def trickle() -> dict[str, Any]:
        if not hasattr(trickle, "sent"):
            trickle.sent = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    with pytest.raises(ApiError) as caught:
        asyncio.run(read_body(Request(scope, trickle), 1_000, 0.05))
    assert caught.value.status == 408 and caught.value.code == "request_timeout"
    assert "1 bytes came" in caught.value.message


# -- the rate limit comes before the body


@pytest.mark.parametrize("path", ["/v1/models/churn/batch", "/v2/models/churn/infer"])
def test_a_client_over_its_limit_gets_429_before_its_body_is_parsed(
    client: TestClient, path: str
) -> None:
    first = post(client, path, "slow", content=b"not json")
    assert first.status_code == 422  # charged, then parsed: malformed
    post(client, path, "slow", content=b"not json")  # the last token
    over = post(client, path, "slow", content=b"not json")
    assert over.status_code == 429 and error_code(over) == "rate_limited"  # not parsed


# -- v2 infer with more than one row is a batch


def test_v2_infer_with_many_rows_needs_the_batch_scope(client: TestClient, serving: Serving
                                                       ) -> None:  # fmt: skip
    one = post(client, "/v2/models/churn/infer", "single", json=infer_body(1))
    assert one.status_code == 200, one.text
    two = post(client, "/v2/models/churn/infer", "single", json=infer_body(2))
    assert two.status_code == 403 and "lacks the scope batch:churn" in two.json()["error"]
    assert len(serving.sent) == 1
    both = post(client, "/v2/models/churn/infer", "caller", json=infer_body(2))
    assert both.status_code == 200 and both.json()["outputs"][0]["shape"] == [2]


def test_v2_infer_respects_the_clients_max_batch(client: TestClient, serving: Serving) -> None:
    answer = post(client, "/v2/models/churn/infer", "few", json=infer_body(3))
    assert answer.status_code == 422 and error_code(answer) == "batch_too_large"
    assert "at most 2 per batch (this client's max_batch)" in answer.json()["error"]
    assert not serving.sent


# -- one record, one Kafka message


def test_a_record_larger_than_a_kafka_message_is_413_before_anything_is_queued(
    client: TestClient, serving: Serving
) -> None:
    serving.max_record_bytes = 100
    big = {**ROW, "note": "x" * 200}
    predict = post(client, "/v1/models/churn/predict", "caller", json=big)
    assert predict.status_code == 413 and error_code(predict) == "payload_too_large"
    batch = post(client, "/v1/models/churn/batch", "caller", json=[ROW, big])
    assert batch.status_code == 413 and "record 1: a record of" in batch.json()["error"]["message"]
    body = infer_body(2)
    body["inputs"][3]["data"] = ["hi", "x" * 200]
    infer = post(client, "/v2/models/churn/infer", "caller", json=body)
    assert infer.status_code == 413 and "cannot be sent to Kafka" in infer.json()["error"]
    assert not serving.sent and not serving.dlq
