"""The gRPC servicer without a network: each RPC called directly over a plain directory
and a fake serving backend, checking REST's order (token → model → scope → version →
size → tensors → limits → contract) and the status each refusal ends with."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc
import numpy as np
import pytest

from services.gateway.bridge import TIMEOUT, BridgeClosedError
from services.gateway.clients import ClientRecord, Limits
from services.gateway.context import GatewayConfig, GatewayContext
from services.gateway.grpc import InferenceServicer
from services.gateway.grpc import inference_pb2 as pb
from services.gateway.grpc._tensors import encode_bytes
from services.gateway.policy import PolicyManager
from tests.unit.services.gateway.test_catalogue import Directory, entry

Tensor = pb.ModelInferRequest.InferInputTensor
SCOPES = {
    "caller": ("predict:churn", "batch:churn"),
    "single": ("predict:churn",),
    "other": ("predict:fraud",),
    "reader": ("catalogue:read",),
    "tiny": ("predict:churn",),
    "slow": ("predict:churn", "batch:churn"),
    "few": ("predict:churn", "batch:churn"),
}
LIMITS = {"tiny": Limits(max_body_bytes=64), "slow": Limits(rate_per_s=0.001, burst=2),
          "few": Limits(max_batch=2)}  # fmt: skip


class Clients:
    def __init__(self) -> None:
        self._records = {
            token: ClientRecord(token, "0123456789ab", "0" * 64, scopes,
                                limits=LIMITS.get(token, Limits()))
            for token, scopes in SCOPES.items()
        }  # fmt: skip
        self.ready = True

    def authenticate(self, token: str) -> ClientRecord | None:
        return self._records.get(token)


class Serving:
    """Answers every row with ``outcome`` (a reply is made per row when it is None)."""

    ready = True
    max_record_bytes = 995_904

    def __init__(self) -> None:
        self.outcome: Any = None
        self.sent: list[tuple[str, bytes]] = []
        self.dlq: list[bytes] = []

    async def request_many(
        self, model: str, requests: list[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        self.sent += requests
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return [self.outcome or reply(rid) for rid, _ in requests]

    def publish_dlq(self, model: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.dlq.append(value)


def reply(rid: str) -> dict[str, Any]:
    return {"request_id": rid, "prediction": "yes", "probabilities": {"no": 0.25, "yes": 0.75},
            "served_by": "champion", "model_version": 2}  # fmt: skip


class AbortedError(Exception):
    pass


class Context:
    """The part of grpc.aio.ServicerContext the servicer uses."""

    def __init__(self, token: str | None = None) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    async def abort(self, code: grpc.StatusCode, details: str, trailing: Any = ()) -> None:
        self.code, self.details, self.trailing = code, details, tuple(trailing)
        raise AbortedError


@pytest.fixture
def serving() -> Serving:
    return Serving()


@pytest.fixture
def servicer(serving: Serving) -> InferenceServicer:
    directory = Directory(entry())
    directory.synced = threading.Event()
    directory.synced.set()
    ctx = GatewayContext(GatewayConfig(version="9.9"), serving, directory, Clients(),  # type: ignore[arg-type]
                         PolicyManager())  # fmt: skip
    return InferenceServicer(ctx)


def call(servicer: InferenceServicer, rpc: str, request: Any, token: str | None = None) -> Any:
    context = Context(token)
    try:
        answer = asyncio.run(getattr(servicer, rpc)(request, context))
    except AbortedError:
        return context
    return answer, context


def rows_request(count: int = 2, **fields: Any) -> pb.ModelInferRequest:
    inputs = [
        Tensor(name="age", datatype="INT32", shape=[count]),
        Tensor(name="plan", datatype="BYTES", shape=[count, 1]),
        Tensor(name="spend", datatype="FP64", shape=[count]),
        Tensor(name="note", datatype="BYTES", shape=[count]),
    ]
    raws = [np.arange(30, 30 + count, dtype="<i4").tobytes(), encode_bytes(["pro"] * count),
            np.full(count, 9.5).tobytes(), encode_bytes(["hi"] * count)]  # fmt: skip
    return pb.ModelInferRequest(
        model_name="churn", inputs=inputs, raw_input_contents=raws, **fields
    )


def test_server_rpcs_need_no_token(servicer: InferenceServicer) -> None:
    assert call(servicer, "ServerLive", pb.ServerLiveRequest())[0].live
    assert call(servicer, "ServerReady", pb.ServerReadyRequest())[0].ready
    metadata = call(servicer, "ServerMetadata", pb.ServerMetadataRequest())[0]
    assert (metadata.name, metadata.version) == ("modelstream", "9.9")


def test_model_metadata_and_ready(servicer: InferenceServicer) -> None:
    metadata, _ = call(servicer, "ModelMetadata", pb.ModelMetadataRequest(name="churn"), "reader")
    assert list(metadata.versions) == ["1", "2", "3"]
    assert [(t.name, t.datatype) for t in metadata.inputs] == [
        ("age", "INT32"), ("plan", "BYTES"), ("spend", "FP64"), ("note", "BYTES")]  # fmt: skip
    assert [t.name for t in metadata.outputs] == ["predict", "probabilities", "served_by"]
    again, _ = call(servicer, "ModelMetadata", pb.ModelMetadataRequest(name="churn"), "caller")
    assert again is metadata  # built once per directory snapshot
    assert call(servicer, "ModelReady", pb.ModelReadyRequest(name="churn"), "caller")[0].ready
    stale = pb.ModelReadyRequest(name="churn", version="1")
    assert not call(servicer, "ModelReady", stale, "caller")[0].ready


@pytest.mark.parametrize(
    ("rpc", "request_", "token", "code", "says"),
    [
        ("ModelInfer", pb.ModelInferRequest(model_name="churn"), None, "UNAUTHENTICATED",
         "no API token was sent"),
        ("ModelInfer", pb.ModelInferRequest(model_name="nope"), "other", "NOT_FOUND", "nope"),
        ("ModelInfer", pb.ModelInferRequest(model_name="churn"), "reader", "PERMISSION_DENIED",
         "lacks the scope predict:churn"),
        ("ModelMetadata", pb.ModelMetadataRequest(name="churn"), "other", "PERMISSION_DENIED",
         "predict:churn or catalogue:read"),
        ("ModelReady", pb.ModelReadyRequest(name="zzz"), "bogus", "UNAUTHENTICATED", "not valid"),
        ("ModelInfer", rows_request(model_version="1"), "caller", "NOT_FOUND", "not v1"),
        ("ModelInfer", rows_request(), "tiny", "RESOURCE_EXHAUSTED", "at most 64"),
        ("ModelInfer", pb.ModelInferRequest(model_name="churn"), "caller", "INVALID_ARGUMENT",
         "non-empty list of tensors"),
        ("ModelInfer", rows_request(3), "slow", "INVALID_ARGUMENT", "at most 2 per batch"),
        ("ModelInfer", rows_request(2), "single", "PERMISSION_DENIED", "lacks the scope batch"),
        ("ModelInfer", rows_request(3), "few", "INVALID_ARGUMENT", "this client's max_batch"),
    ],
)  # fmt: skip
def test_refusals_in_rest_order(
    servicer: InferenceServicer, rpc: str, request_: Any, token: str | None, code: str, says: str
) -> None:
    context = call(servicer, rpc, request_, token)
    assert isinstance(context, Context) and context.code is not None
    assert (context.code.name, says in context.details) == (code, True), context.details


def test_infer_answers_raw_outputs(servicer: InferenceServicer, serving: Serving) -> None:
    response, context = call(servicer, "ModelInfer", rows_request(2, id="q"), "caller")
    assert (response.model_name, response.model_version, response.id) == ("churn", "2", "q")
    assert [o.name for o in response.outputs] == ["predict", "probabilities", "served_by"]
    assert response.raw_output_contents[0] == encode_bytes(["yes", "yes"])
    assert np.frombuffer(response.raw_output_contents[1], "<f8").tolist() == [0.25, 0.75] * 2
    assert response.outputs[1].parameters["classes"].string_param == "no,yes"
    assert [rid for rid, _ in serving.sent] == ["q-0", "q-1"]
    assert b'"age":31' in serving.sent[1][1]
    assert context.trailing == ()  # rate-limit trailers only with refusals
    picked, _ = call(servicer, "ModelInfer",
                     rows_request(1, outputs=[{"name": "served_by"}]), "caller")  # fmt: skip
    assert [o.name for o in picked.outputs] == ["served_by"]
    assert picked.id and picked.raw_output_contents[0] == encode_bytes(["champion"])


def test_rate_limit_says_when_to_retry(servicer: InferenceServicer) -> None:
    call(servicer, "ModelInfer", rows_request(2), "slow")
    context = call(servicer, "ModelInfer", rows_request(1), "slow")
    assert context.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailing = dict(context.trailing)
    assert trailing["ms-error-code"] == "rate_limited" and int(trailing["retry-after"]) > 0


def test_one_row_needs_only_predict(servicer: InferenceServicer, serving: Serving) -> None:
    response, _ = call(servicer, "ModelInfer", rows_request(1, id="one"), "single")
    assert response.id == "one" and [rid for rid, _ in serving.sent] == ["one-0"]


def test_rate_limit_is_charged_before_the_tensors_are_decoded(
    servicer: InferenceServicer, serving: Serving
) -> None:
    call(servicer, "ModelInfer", rows_request(2), "slow")  # the whole burst
    garbage = pb.ModelInferRequest(model_name="churn")  # no tensors: 400 if it were decoded
    context = call(servicer, "ModelInfer", garbage, "slow")
    assert context.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(context.trailing)["ms-error-code"] == "rate_limited"


def test_past_the_in_flight_limit_infer_is_unavailable_with_retry_after(
    servicer: InferenceServicer, serving: Serving
) -> None:
    gate = servicer._ctx.in_flight
    gate.count = gate.limit  # every slot taken by calls being served
    context = call(servicer, "ModelInfer", rows_request(1), "caller")
    assert context.code is grpc.StatusCode.UNAVAILABLE
    trailing = dict(context.trailing)
    assert trailing["ms-error-code"] == "overloaded" and trailing["retry-after"] == "1"
    assert not serving.sent and gate.count == gate.limit
    gate.count = 0
    call(servicer, "ModelInfer", rows_request(1), "caller")
    assert gate.count == 0 and len(serving.sent) == 1  # the slot is given back


def test_contract_refusal_names_fields_and_goes_to_the_dlq(
    servicer: InferenceServicer, serving: Serving
) -> None:
    request = rows_request(1, id="bad")
    request.inputs[1].datatype = "INT32"
    request.raw_input_contents[1] = np.array([7], dtype="<i4").tobytes()
    context = call(servicer, "ModelInfer", request, "caller")
    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith("plan: ") and "(request_id bad-0)" in context.details
    assert len(serving.dlq) == 1 and not serving.sent


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (TIMEOUT, "DEADLINE_EXCEEDED"),
        ({"error": {"code": "boom", "message": "x"}}, "INTERNAL"),
        ({"error": {"code": "missing_field", "message": "x0"}}, "INVALID_ARGUMENT"),
        (BridgeClosedError("the bridge is not running"), "UNAVAILABLE"),
        (RuntimeError("a bug"), "INTERNAL"),
    ],
)
def test_serving_failures(
    servicer: InferenceServicer, serving: Serving, outcome: Any, code: str
) -> None:
    serving.outcome = outcome
    context = call(servicer, "ModelInfer", rows_request(1), "caller")
    assert context.code.name == code
    assert "a bug" not in context.details  # a bug's text stays in the log
