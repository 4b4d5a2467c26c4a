"""The gateway end to end: HTTP → Kafka → a real scorer subprocess → reply → HTTP.

One module-wide stack (broker, registry with model ``m``, scorer, gateway subprocess);
every test makes its own clients through the real client registry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import MODES, Running, bearer, running
from tests.integration.scoring_support import Stack, collect, reader, trained

pytestmark = pytest.mark.integration
ROWS = list(rows(50, seed=11))


@pytest.fixture(scope="module", params=MODES)
def gw(
    kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Running]:
    topics = Topics(f"gw-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, Path(tmp_path_factory.mktemp("gw")))
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    with running(stack, "--timeout-ms", "10000", mode=request.param) as handle:
        yield handle
    registry.close()


def post(gw: Running, path: str, token: str | None, **kwargs: object) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
    if token:
        headers |= bearer(token)
    return httpx.post(f"{gw.url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_predict_end_to_end_carries_client_id_into_the_log(gw: Running) -> None:
    token = gw.client("alice", ["predict:m"])
    log = reader(gw.stack.kafka, [gw.stack.topics.predictions("m")], f"g-{uuid.uuid4().hex}")
    answer = post(gw, "/v1/models/m/predict", token, json=ROWS[0],
                  headers={"X-Request-Id": "alice-1"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["request_id"] == "alice-1"
    assert body["model"] == "m" and body["model_version"] == 1
    assert body["served_by"] == "champion"
    assert body["prediction"] in {"True", "False"}
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["latency_ms"] > 0 and body["gateway_latency_ms"] >= body["latency_ms"]
    assert answer.headers["X-RateLimit-Limit"]
    logged = [m.json() for m in collect(log, 1, quiet=0.5) if m.key == b"alice-1"]
    assert [(r["client_id"], r["features"]["x0"]) for r in logged] == [("alice", ROWS[0]["x0"])]


def test_batch_json_array_keeps_order_and_isolates_bad_items(gw: Running) -> None:
    token = gw.client("bob", ["batch:m"])
    records: list[object] = [*ROWS[:5], {"x0": "high"}, *ROWS[5:10]]
    answer = post(gw, "/v1/models/m/batch", token, json=records)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["count"], body["succeeded"], body["failed"]) == (11, 10, 1)
    assert [item["index"] for item in body["results"]] == list(range(11))
    bad = body["results"][5]
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_input"
    assert {f["field"] for f in bad["error"]["fields"]} >= {"x0", "x1", "group"}
    assert all(item["ok"] and item["served_by"] == "champion"
               for i, item in enumerate(body["results"]) if i != 5)  # fmt: skip
    assert len({item["request_id"] for item in body["results"]}) == 11


def test_batch_json_lines(gw: Running) -> None:
    token = gw.client("carol", ["batch:m"])
    lines = b"\n".join(orjson.dumps(r) for r in ROWS[:20]) + b"\n"
    answer = post(gw, "/v1/models/m/batch", token, content=lines,
                  headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["succeeded"] == 20


def test_open_inference_protocol_v2(gw: Running) -> None:
    token = gw.client("dave", ["predict:m", "batch:m"])  # three rows: a batch
    features = [f"x{i}" for i in range(10)]
    columns = [{"name": f, "shape": [3], "datatype": "FP64", "data": [r[f] for r in ROWS[:3]]}
               for f in features]  # fmt: skip
    columns.append({"name": "group", "shape": [3], "datatype": "BYTES",
                    "data": [r["group"] for r in ROWS[:3]]})  # fmt: skip
    answer = post(gw, "/v2/models/m/infer", token, json={"id": "oip-1", "inputs": columns})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "m" and body["model_version"] == "1" and body["id"] == "oip-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["shape"] == [3] and len(outputs["predict"]["data"]) == 3
    assert outputs["probabilities"]["shape"] == [3, 2]
    single = post(gw, "/v1/models/m/predict", token, json=ROWS[1]).json()
    assert outputs["predict"]["data"][1] == single["prediction"]
    matrix = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [1, 11],
                "datatype": "BYTES",
                "data": [[*(ROWS[1][f] for f in features), ROWS[1]["group"]]],
            }
        ]
    }
    answer = post(gw, "/v2/models/m/infer", token, json=matrix)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [single["prediction"]]
    one_at_a_time = gw.client("dave-single", ["predict:m"])
    rows3 = post(gw, "/v2/models/m/infer", one_at_a_time, json={"inputs": columns})
    assert rows3.status_code == 403 and "batch:m" in rows3.json()["error"]
    assert post(gw, "/v2/models/m/infer", one_at_a_time, json=matrix).status_code == 200


def test_oip_metadata_and_health(gw: Running) -> None:
    token = gw.client("erin", ["predict:m"])
    assert httpx.get(f"{gw.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{gw.url}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{gw.url}/v2/models/m", headers=bearer(token)).json()
    assert meta["name"] == "m" and meta["versions"] == ["1", "2"]
    assert [i["name"] for i in meta["inputs"]] == [f"x{i}" for i in range(10)] + ["group"]
    assert meta["inputs"][0]["datatype"] == "FP64"
    ready = httpx.get(f"{gw.url}/v2/models/m/ready", headers=bearer(token))
    assert ready.status_code == 200 and ready.json() == {"name": "m", "ready": True}
    missing = httpx.get(f"{gw.url}/v2/models/zz", headers=bearer(token))
    assert missing.status_code == 404  # no such model: 404 before the scope (no names told)


def test_invalid_input_is_422_with_every_field_and_lands_on_the_dlq(gw: Running) -> None:
    token = gw.client("frank", ["predict:m"])
    dlq = reader(gw.stack.kafka, [gw.stack.topics.dlq("m")], f"g-{uuid.uuid4().hex}")
    bad = {**ROWS[0], "x1": "NaN?", "extra": 1}
    del bad["x2"]
    answer = post(gw, "/v1/models/m/predict", token, json=bad, headers={"X-Request-Id": "bad-1"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and error["request_id"] == "bad-1"
    assert {(f["field"], f["code"]) for f in error["fields"]} == {
        ("x1", "wrong_type"),
        ("x2", "missing_field"),
        ("extra", "unknown_field"),
    }
    entries = [m for m in collect(dlq, 1, quiet=0.5) if m.headers.get("ms-request-id") == b"bad-1"]
    assert len(entries) == 1
    assert orjson.loads(entries[0].value) == bad  # the original bytes
    assert entries[0].headers["ms-stage"] == b"gateway"
    assert entries[0].headers["client-id"] == b"frank"
    not_json = post(gw, "/v1/models/m/predict", token, content=b"{nope",
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "malformed"


def test_auth_matrix(gw: Running) -> None:
    good = gw.client("grace", ["predict:m"])
    other = gw.client("heidi", ["catalogue:read", "predict:other"])
    revoked = gw.client("ivan", ["predict:m"])
    gw.clients.revoke("ivan")
    path = "/v1/models/m/predict"
    deadline = time.monotonic() + 10
    while post(gw, path, revoked, json=ROWS[0]).status_code != 401:
        assert time.monotonic() < deadline, "revocation never reached the gateway"
        time.sleep(0.05)
    cases = {
        "no token": (None, 401),
        "bad token": ("ms_000000000000_" + "x" * 43, 401),
        "garbage": ("not-a-token", 401),
        "revoked": (revoked, 401),
        "missing scope": (other, 403),
        "right scope": (good, 200),
    }
    got = {name: post(gw, path, token, json=ROWS[0]).status_code
           for name, (token, _) in cases.items()}  # fmt: skip
    assert got == {name: status for name, (_, status) in cases.items()}
    unauthenticated = post(gw, path, None, json=ROWS[0])
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    assert unauthenticated.json()["error"]["code"] == "unauthenticated"
    assert post(gw, "/v1/models/m/batch", good, json=ROWS[:2]).status_code == 403


def test_rate_limit_burst_gets_429_with_retry_after(gw: Running) -> None:
    token = gw.client("judy", ["predict:m"], rate_per_s=0.01, burst=3)  # no refill mid-test
    statuses = [post(gw, "/v1/models/m/predict", token, json=ROWS[0]) for _ in range(5)]
    assert [s.status_code for s in statuses[:3]] == [200, 200, 200]
    refused = statuses[3]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert statuses[4].status_code == 429


def test_quota_exhaustion_is_429(gw: Running) -> None:
    token = gw.client("ken", ["batch:m"], quota=5, quota_window_s=3600.0)
    assert post(gw, "/v1/models/m/batch", token, json=ROWS[:5]).status_code == 200
    refused = post(gw, "/v1/models/m/batch", token, json=ROWS[:1])
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) > 3000


def test_oversized_body_is_413(gw: Running) -> None:
    token = gw.client("leo", ["predict:m", "batch:m"], max_body_bytes=2_000)
    big = {**ROWS[0], "padding": "x" * 5_000}
    assert post(gw, "/v1/models/m/predict", token, json=big).status_code == 413
    chunked = post(gw, "/v1/models/m/batch", token, content=iter([orjson.dumps(ROWS * 2)]),
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "payload_too_large"
    assert post(gw, "/v1/models/m/predict", token, json=ROWS[0]).status_code == 200
    # the default 1 MiB body limit, but one record is one Kafka message (1,000,000 bytes
    # at most): refused with 413 before anything is queued, not failed by Kafka
    roomy = gw.client("leo-roomy", ["predict:m"])
    huge = {**ROWS[0], "padding": "x" * 1_000_000}
    refused = post(gw, "/v1/models/m/predict", roomy, json=huge)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"


def test_unknown_model_is_404(gw: Running) -> None:
    token = gw.client("mia", ["predict:*"])
    answer = post(gw, "/v1/models/nosuch/predict", token, json=ROWS[0])
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_model"


def test_no_scorer_means_504_with_the_request_id(kafka: KafkaConfig, tmp_path: Path) -> None:
    topics = Topics(f"gw504-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, tmp_path)
    stack.add_model("m", trained()[0])
    from tests.integration.gateway_support import ClientStore, GatewayProcess, wait_until_known

    gateway = GatewayProcess(stack, "--via-kafka", "--timeout-ms", "800").start()
    try:
        _, token = ClientStore(kafka, topics).create("nora", ["predict:m"])
        wait_until_known(gateway.url, token)
        answer = httpx.post(
            f"{gateway.url}/v1/models/m/predict",
            json=ROWS[0],
            headers={**bearer(token), "X-Request-Id": "late-1"},
            timeout=10,
        )
        assert answer.status_code == 504
        assert answer.json()["error"] | {"message": ""} == {
            "code": "timeout",
            "message": "",
            "request_id": "late-1",
        }
    finally:
        gateway.stop()
        registry.close()


def test_a_batch_that_can_never_fit_is_422_not_429(gw: Running) -> None:
    token = gw.client("olga", ["batch:m"], burst=3, max_batch=4)
    over_burst = post(gw, "/v1/models/m/batch", token, json=ROWS[:4])
    assert over_burst.status_code == 422
    assert over_burst.json()["error"]["code"] == "batch_too_large"
    assert "at most 3" in over_burst.json()["error"]["message"]
    over_max = post(gw, "/v1/models/m/batch", token, json=ROWS[:5])
    assert over_max.status_code == 422 and "at most 3" in over_max.json()["error"]["message"]
    assert post(gw, "/v1/models/m/batch", token, json=ROWS[:3]).json()["succeeded"] == 3


def test_many_concurrent_requests_share_the_bridge(gw: Running) -> None:
    """300 requests at once: all answered, each with its own reply, none crossed."""
    import asyncio

    token = gw.client("pat", ["predict:m"], rate_per_s=10_000.0, burst=10_000)
    records = list(rows(300, seed=5))

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=gw.url, headers=bearer(token), limits=limits,
                                     timeout=30) as client:  # fmt: skip
            return await asyncio.gather(*(
                client.post("/v1/models/m/predict", json=r, headers={"X-Request-Id": f"c{i}"})
                for i, r in enumerate(records)
            ))  # fmt: skip

    answers = asyncio.run(fire())
    assert [a.status_code for a in answers] == [200] * 300
    assert [a.json()["request_id"] for a in answers] == [f"c{i}" for i in range(300)]
    single = {i: post(gw, "/v1/models/m/predict", token, json=records[i]).json()["prediction"]
              for i in (0, 150, 299)}  # fmt: skip
    assert {i: answers[i].json()["prediction"] for i in single} == single


def test_the_same_request_id_from_two_clients_answers_each_its_own(gw: Running) -> None:
    """Request ids are the callers' own: the gateway matches replies by its own nonce."""
    import asyncio

    tokens = [gw.client(name, ["predict:m"]) for name in ("sam", "sue")]
    records = list(rows(20, seed=11))

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            return await asyncio.gather(*(
                client.post("/v1/models/m/predict", json=record,
                            headers={**bearer(tokens[i % 2]), "X-Request-Id": "same"})
                for i, record in enumerate(records)
            ))  # fmt: skip

    answers = asyncio.run(fire())
    assert [a.status_code for a in answers] == [200] * len(records)
    assert {a.json()["request_id"] for a in answers} == {"same"}
    alone = {i: post(gw, "/v1/models/m/predict", tokens[0], json=records[i]).json()
             for i in range(len(records))}  # fmt: skip
    assert [a.json()["prediction"] for a in answers] == [
        alone[i]["prediction"] for i in range(len(records))
    ]

    def rounded(probabilities: dict[str, float]) -> dict[str, float]:  # batch size: last bit
        return {label: round(p, 9) for label, p in probabilities.items()}

    assert [rounded(a.json()["probabilities"]) for a in answers] == [
        rounded(alone[i]["probabilities"]) for i in range(len(records))
    ]


def test_tokens_never_reach_the_log(gw: Running) -> None:
    token = gw.client("quinn", ["predict:m"])
    post(gw, "/v1/models/m/predict", token, json=ROWS[0])
    post(gw, "/v1/models/m/predict", token + "x", json=ROWS[0])
    secret = token[-43:]  # ms_<id>_<secret>: the secret may itself contain "_"
    assert secret not in gw.gateway.log.read_text()


@pytest.mark.parametrize("gw", ["via-kafka"], indirect=True)  # the scorer's replies
def test_fast_replies_answer_from_the_same_scorer(gw: Running) -> None:
    """A second gateway, reading replies read_uncommitted, beside the first one."""
    from tests.integration.gateway_support import GatewayProcess, wait_until_known

    fast = GatewayProcess(gw.stack, "--via-kafka", "--fast-replies", instance="fast").start()
    try:
        token = gw.client("rita", ["predict:m"])
        wait_until_known(fast.url, token)
        answers = [httpx.post(f"{fast.url}/v1/models/m/predict", json=r, headers=bearer(token),
                              timeout=30) for r in ROWS[:20]]  # fmt: skip
        slow = [post(gw, "/v1/models/m/predict", token, json=r) for r in ROWS[:20]]
    finally:
        fast.stop()
    assert [a.status_code for a in answers] == [200] * 20
    assert [a.json()["prediction"] for a in answers] == [s.json()["prediction"] for s in slow]
