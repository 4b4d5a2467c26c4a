"""The gRPC load generator of ``bench --gateway``: its spec, its requests, and how its
output is read (no socket: the driver's JSON is made here)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from services.bench import LoadError
from services.bench._grpc_load import (
    METHOD,
    GrpcSpec,
    describe_answer,
    infer_request,
    parse_result,
)

ROW = [0.5, -1.25, 2.0, 0.0, 1e-3, -3.5, 0.25, 7.0, -0.125, 1.0]
SPEC = GrpcSpec("127.0.0.1:1", [b"req"], concurrency=4, seconds=2.0, warmup=1.0)


def answer(probabilities: list[float], *, raw: bool = False) -> bytes:
    response = service_pb2.ModelInferResponse(model_name="bench-sklearn")
    out = response.outputs.add(name="predict_proba", datatype="FP64", shape=[1, 2])
    if raw:
        response.raw_output_contents.append(np.array(probabilities, "<f8").tobytes())
    else:
        out.contents.fp64_contents.extend(probabilities)
    return bytes(response.SerializeToString())


def raw_result(records: list[list[Any]], samples: list[bytes] | None = None) -> dict[str, Any]:
    return {"records": records, "client_cpu_seconds": 0.75,
            "samples": [base64.b64encode(s).decode() for s in samples or []]}  # fmt: skip


def test_the_request_is_one_row_as_a_1_by_10_fp64_tensor_named_input_0() -> None:
    request = service_pb2.ModelInferRequest.FromString(infer_request("bench-sklearn", ROW))
    assert request.model_name == "bench-sklearn"
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("input-0", "FP64", [1, 10])
    assert list(tensor.contents.fp64_contents) == ROW
    assert not request.raw_input_contents and not request.outputs  # every output, typed


def test_spec_travels_as_json_with_base64_requests_and_one_channel_per_eight_calls() -> None:
    spec = GrpcSpec("127.0.0.1:9", [b"\x00\xff"], {"authorization": "Bearer ms_x"},
                    concurrency=32, seconds=5.0, warmup=1.0)  # fmt: skip
    data = json.loads(spec.to_json())
    assert data["requests"] == ["AP8="] and data["method"] == METHOD == (
        "/inference.GRPCInferenceService/ModelInfer"
    )
    assert data["metadata"] == [["authorization", "Bearer ms_x"]]
    assert (data["channels"], data["concurrency"], data["seconds"], data["warmup"]) == (
        4, 32, 5.0, 1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "changes", [{"requests": []}, {"concurrency": 0}, {"seconds": 0.0}, {"per_channel": 0}]
)
def test_spec_rejects_impossible_loads(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GrpcSpec(**({"target": "h:1", "requests": [b"x"]} | changes))


def test_ok_calls_after_the_warmup_count_and_failures_by_status_code() -> None:
    records = [[0.2, 0.25, "OK"],  # warm-up: counted as an answer, not in the rate
               [1.0, 1.004, "OK"], [1.1, 1.106, "OK"], [1.2, 1.3, "UNAVAILABLE"],
               [1.5, 11.5, "DEADLINE_EXCEEDED"], [1.6, 1.602, "UNAUTHENTICATED"]]  # fmt: skip
    result = parse_result(SPEC, raw_result(records, [answer([0.25, 0.75])]))
    assert (result.ok, result.ok_total, result.total) == (2, 3, 6)
    assert result.failed == {"UNAVAILABLE": 1, "DEADLINE_EXCEEDED": 1, "UNAUTHENTICATED": 1}
    assert result.seconds == pytest.approx(0.106)  # warm-up end → last OK answer
    assert result.latency is not None and result.latency.max == pytest.approx(6.0)
    assert result.client_cpu_seconds == 0.75 and result.concurrency == 4
    sample = json.loads(result.samples[0])
    assert sample["outputs"] == [{"name": "predict_proba", "datatype": "FP64", "shape": [1, 2],
                                  "values": [0.25, 0.75]}]  # fmt: skip


def test_a_load_without_an_answer_has_no_rate_and_no_latency() -> None:
    result = parse_result(SPEC, raw_result([[1.5, 1.6, "UNIMPLEMENTED"]]))
    assert (result.ok, result.rps, result.latency) == (0, 0.0, None)
    assert result.failed == {"UNIMPLEMENTED": 1}


def test_raw_output_contents_are_decoded_too() -> None:
    described = describe_answer(answer([0.125, 0.875], raw=True))
    assert described["model_name"] == "bench-sklearn"
    assert described["outputs"][0]["values"] == [0.125, 0.875]
    assert "undecodable" in describe_answer(b"\xff\xff\xff")


def test_raw_bytes_outputs_are_length_prefixed_strings() -> None:
    response = service_pb2.ModelInferResponse(model_name="m")
    response.outputs.add(name="predict", datatype="BYTES", shape=[2])
    response.raw_output_contents.append(b"\x05\x00\x00\x00False\x04\x00\x00\x00True")
    (out,) = describe_answer(bytes(response.SerializeToString()))["outputs"]
    assert out["values"] == ["False", "True"]


def test_a_malformed_result_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="records"):
        parse_result(SPEC, {"records": [[1.0, "OK"]], "samples": [], "client_cpu_seconds": 0})
