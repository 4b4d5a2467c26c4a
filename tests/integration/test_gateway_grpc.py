"""The Open Inference Protocol over gRPC end to end, with tritonclient as the client:
``modelstream run gateway --grpc-port`` (direct serving), answering what REST answers.

One module-wide stack and ONE gateway process (broker, registry with model ``m``,
gateway with gRPC); the tests share it and make their own clients.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from services.localstack import free_port
from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import Running, bearer, running
from tests.integration.scoring_support import FEATURES, Stack, trained

pytestmark = pytest.mark.integration
ROWS = list(rows(8, seed=23))
NUMERIC = [f for f in FEATURES if f != "group"]


@dataclass
class Grpc:
    """The running stack, its gRPC client, and one client token allowed to predict."""

    gw: Running
    client: triton.InferenceServerClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def oip(kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grpc]:
    topics = Topics(f"gg-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, Path(tmp_path_factory.mktemp("gg")))
    stack.add_model("m", trained()[0])
    port = free_port()
    # the default, direct serving (the REST tests run both modes; gRPC shares their path)
    args = ("--timeout-ms", "10000", "--grpc-port", str(port))
    with running(stack, *args, mode="direct") as gw:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        try:
            yield Grpc(gw, client, gw.client("grace", ["predict:m", "batch:m"]))
        finally:
            client.close()
    registry.close()


def inputs(batch: list[dict[str, Any]], column: bool = False) -> list[triton.InferInput]:
    """One tensor per feature, set like any Triton client sets them (raw contents)."""
    shape = [len(batch), 1] if column else [len(batch)]
    tensors = []
    for name in NUMERIC:
        tensor = triton.InferInput(name, shape, "FP64")
        tensor.set_data_from_numpy(
            np.array([r[name] for r in batch], dtype=np.float64).reshape(shape)
        )
        tensors.append(tensor)
    group = triton.InferInput("group", shape, "BYTES")
    group.set_data_from_numpy(
        np.array([r["group"] for r in batch], dtype=np.object_).reshape(shape)
    )
    return [*tensors, group]


def rest_predict(oip: Grpc, row: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{oip.gw.url}/v1/models/m/predict", json=row,
                        headers=bearer(oip.token), timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refused(call: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_health_and_metadata(oip: Grpc) -> None:
    assert oip.client.is_server_live() and oip.client.is_server_ready()
    assert oip.client.get_server_metadata().name == "modelstream"
    assert oip.client.is_model_ready("m", headers=oip.auth)
    metadata = oip.client.get_model_metadata("m", headers=oip.auth)
    assert metadata.name == "m" and list(metadata.versions) == ["1"]
    assert [(t.name, t.datatype) for t in metadata.inputs] == [
        *((f, "FP64") for f in NUMERIC), ("group", "BYTES")]  # fmt: skip
    assert [t.name for t in metadata.outputs] == ["predict", "probabilities", "served_by"]


def test_infer_one_row_answers_what_rest_answers(oip: Grpc) -> None:
    result = oip.client.infer("m", inputs(ROWS[:1]), request_id="g-1", headers=oip.auth)
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("m", "1", "g-1")
    rest = rest_predict(oip, ROWS[0])
    assert result.as_numpy("predict").tolist() == [rest["prediction"].encode()]
    assert result.as_numpy("served_by").tolist() == [b"champion"]
    classes = result.get_output("probabilities").parameters["classes"].string_param.split(",")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (1, len(classes))
    assert probabilities[0].tolist() == pytest.approx([rest["probabilities"][c] for c in classes])


def test_infer_several_rows_in_order(oip: Grpc) -> None:
    wanted = [triton.InferRequestedOutput("predict")]
    result = oip.client.infer("m", inputs(ROWS, column=True), outputs=wanted,
                              model_version="1", headers=oip.auth)  # fmt: skip
    assert [o.name for o in result.get_response().outputs] == ["predict"]
    expected = [rest_predict(oip, row)["prediction"].encode() for row in ROWS]
    assert result.as_numpy("predict").tolist() == expected


def test_refusals_carry_grpc_statuses(oip: Grpc) -> None:
    unauthenticated = refused(oip.client.infer, "m", inputs(ROWS[:1]))
    assert unauthenticated.status() == "StatusCode.UNAUTHENTICATED"
    assert "no API token" in unauthenticated.message()
    batcher = {"authorization": f"Bearer {oip.gw.client('bert', ['batch:m'])}"}
    forbidden = refused(oip.client.infer, "m", inputs(ROWS[:1]), headers=batcher)
    assert forbidden.status() == "StatusCode.PERMISSION_DENIED"
    assert "predict:m" in forbidden.message()
    single = {"authorization": f"Bearer {oip.gw.client('sid', ['predict:m'])}"}
    rows_need_batch = refused(oip.client.infer, "m", inputs(ROWS[:2]), headers=single)
    assert rows_need_batch.status() == "StatusCode.PERMISSION_DENIED"
    assert "batch:m" in rows_need_batch.message()
    unknown = refused(oip.client.get_model_metadata, "nope", headers=oip.auth)
    assert unknown.status() == "StatusCode.NOT_FOUND"
    stale = refused(oip.client.infer, "m", inputs(ROWS[:1]), model_version="7", headers=oip.auth)
    assert stale.status() == "StatusCode.NOT_FOUND" and "not v7" in stale.message()
    text = triton.InferInput("x0", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"high"], dtype=np.object_))
    invalid = refused(oip.client.infer, "m", [*inputs(ROWS[:1])[1:], text], headers=oip.auth)
    assert invalid.status() == "StatusCode.INVALID_ARGUMENT" and "x0" in invalid.message()
