"""The gRPC gateway's tensors and statuses, without a server: typed and raw input decoding
for every datatype, BYTES length prefixes (a truncated buffer is a 400, not a crash),
outputs that tritonclient decodes, the status table, and wire compatibility with
tritonclient's own ``inference`` protobuf (which must import beside ours)."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
from tritonclient.grpc import InferResult, service_pb2
from tritonclient.utils import serialize_byte_tensor

from services.gateway.errors import ERROR_CODES, ApiError
from services.gateway.grpc import STATUS_CODES
from services.gateway.grpc import inference_pb2 as pb
from services.gateway.grpc._status import details, status_code, trailers
from services.gateway.grpc._tensors import (
    decode_input,
    decode_inputs,
    encode_bytes,
    encode_outputs,
    split_bytes,
)
from services.gateway.routes.oip import rows_from_inputs

Tensor = pb.ModelInferRequest.InferInputTensor
NUMERIC = {
    "BOOL": (np.bool_, [True, False, True]),
    "UINT8": (np.uint8, [0, 7, 255]),
    "UINT16": (np.uint16, [0, 7, 65535]),
    "UINT32": (np.uint32, [0, 7, 2**32 - 1]),
    "UINT64": (np.uint64, [0, 7, 2**64 - 1]),
    "INT8": (np.int8, [-128, 0, 127]),
    "INT16": (np.int16, [-(2**15), 0, 2**15 - 1]),
    "INT32": (np.int32, [-(2**31), 0, 2**31 - 1]),
    "INT64": (np.int64, [-(2**63), 0, 2**63 - 1]),
    "FP16": (np.float16, [0.5, -2.0, 1024.0]),
    "FP32": (np.float32, [0.5, -2.25, 2.0**100]),
    "FP64": (np.float64, [0.1, -2.5, 1e300]),
}
TYPED = {
    "BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
    "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
    "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents",
}  # fmt: skip


def malformed(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status == 400 and caught.value.code == "malformed"
    assert status_code(caught.value) is grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


@pytest.mark.parametrize("datatype", list(NUMERIC))
def test_raw_numeric_is_little_endian(datatype: str) -> None:
    dtype, values = NUMERIC[datatype]
    raw = np.asarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    decoded = decode_input(Tensor(name="x", datatype=datatype, shape=[3, 1]), raw)
    assert decoded == {"name": "x", "shape": [3, 1], "datatype": datatype, "data": values}


@pytest.mark.parametrize("datatype", list(TYPED))
def test_typed_contents(datatype: str) -> None:
    _, values = NUMERIC[datatype]
    tensor = Tensor(name="x", datatype=datatype, shape=[3])
    getattr(tensor.contents, TYPED[datatype]).extend(values)
    data = decode_input(tensor, None)["data"]
    if datatype == "FP32":  # float32 contents come back as the nearest doubles
        assert data == pytest.approx(values, rel=1e-7)
    else:
        assert data == values


def test_bytes_typed_and_raw_become_text() -> None:
    words = ["", "héllo", "x" * 300]
    typed = Tensor(name="g", datatype="BYTES", shape=[1, 3])
    typed.contents.bytes_contents.extend(w.encode() for w in words)
    raw = serialize_byte_tensor(np.array([w.encode() for w in words], dtype=np.object_))
    assert decode_input(typed, None)["data"] == words
    assert decode_input(Tensor(name="g", datatype="BYTES", shape=[3]), raw.item())["data"] == words
    assert encode_bytes(words) == raw.item()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\x05\x00", "ends inside the length of element 0"),
        (b"\x01\x00\x00\x00a\x03\x00", "ends inside the length of element 1"),
        (b"\x05\x00\x00\x00abc", "element 0 declares 5 bytes but only 3 remain"),
        (b"\xff\xff\xff\xff", "element 0 declares 4294967295 bytes but only 0 remain"),
    ],
)
def test_truncated_bytes_are_a_400(raw: bytes, says: str) -> None:
    assert says in malformed(split_bytes, "g", raw).message
    assert (
        "'g'" in malformed(decode_input, Tensor(name="g", datatype="BYTES", shape=[1]), raw).message
    )


def fp64(*shape: int, **contents: Any) -> Any:
    return Tensor(name="x", datatype="FP64", shape=shape, **contents)


@pytest.mark.parametrize(
    ("tensor", "raw", "says"),
    [
        (fp64(2), b"\x00" * 12, "not a whole number of 8-byte"),
        (fp64(3), b"\x00" * 16, "needs 3 values in raw_input_contents, got 2"),
        (fp64(1), None, "needs 1 values in contents.fp64_contents, got 0"),
        (fp64(-1), b"", "must not be negative"),
        (fp64(1, contents=pb.InferTensorContents(fp64_contents=[1.0])), b"\x00" * 8, "both"),
        (Tensor(name="x", datatype="COMPLEX", shape=[1]), b"", "expected one of BOOL"),
        (Tensor(name="x", datatype="FP16", shape=[1]), None, "send it in raw_input_contents"),
        (Tensor(name="g", datatype="BYTES", shape=[1]), b"\x01\x00\x00\x00\xff", "not UTF-8"),
    ],
)
def test_wrong_tensors_are_a_400(tensor: Any, raw: bytes | None, says: str) -> None:
    assert says in malformed(decode_input, tensor, raw).message


def test_raw_inputs_are_all_or_none_and_feed_the_rest_rows() -> None:
    inputs = [
        Tensor(name="a", datatype="FP64", shape=[2]),
        Tensor(name="b", datatype="BYTES", shape=[2, 1]),
    ]
    raws = [np.array([1.5, 2.5]).tobytes(), encode_bytes(["x", "y"])]
    request = pb.ModelInferRequest(inputs=inputs, raw_input_contents=raws)
    assert rows_from_inputs(decode_inputs(request), ["a", "b"]) == [
        {"a": 1.5, "b": "x"},
        {"a": 2.5, "b": "y"},
    ]
    half = pb.ModelInferRequest(inputs=inputs, raw_input_contents=raws[:1])
    assert "1 entries for 2 inputs" in malformed(decode_inputs, half).message


def test_outputs_round_trip_through_tritonclient() -> None:
    tensors = [
        {"name": "predict", "shape": [2], "datatype": "BYTES", "data": ["True", "False"]},
        {"name": "probabilities", "shape": [2, 2], "datatype": "FP64",
         "data": [0.25, 0.75, 0.9, 0.1], "parameters": {"classes": ["False", "True"]}},
        {"name": "score", "shape": [2], "datatype": "FP64", "data": [1.5, None]},
    ]  # fmt: skip
    outputs, raws = encode_outputs(tensors)
    mine = pb.ModelInferResponse(model_name="m", id="r", outputs=outputs, raw_output_contents=raws)
    result = InferResult(service_pb2.ModelInferResponse.FromString(mine.SerializeToString()))
    assert result.as_numpy("predict").tolist() == [b"True", b"False"]
    assert result.as_numpy("probabilities").tolist() == [[0.25, 0.75], [0.9, 0.1]]
    assert result.get_output("probabilities").parameters["classes"].string_param == "False,True"
    score = result.as_numpy("score")
    assert score[0] == 1.5 and np.isnan(score[1])


def test_status_table() -> None:
    expected = {
        400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
        404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 413: "RESOURCE_EXHAUSTED",
        422: "INVALID_ARGUMENT",
        429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "INTERNAL", 503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }  # fmt: skip
    assert {status: code.name for status, code in STATUS_CODES.items()} == expected
    for code, (status, _) in ERROR_CODES.items():  # every gateway error has a gRPC status
        assert status_code(ApiError(code)) is STATUS_CODES[status], code
    assert status_code(ApiError("teapot", status=418)) is grpc.StatusCode.UNKNOWN


def test_details_and_trailers() -> None:
    error = ApiError("invalid_input", "x0: expected a double", request_id="q-3")
    assert details(error) == "x0: expected a double (request_id q-3)"
    limited = ApiError(
        "rate_limited", "slow down", headers={"Retry-After": "2", "X-RateLimit-Limit": "5"}
    )
    assert trailers(limited) == (
        ("ms-error-code", "rate_limited"),
        ("retry-after", "2"),
        ("x-ratelimit-limit", "5"),
    )


def _shape(descriptor: Any) -> dict[str, Any]:
    return {
        "fields": {f.name: (f.number, f.type, f.is_repeated, f.message_type and f.message_type.name)
                   for f in descriptor.fields},
        "nested": {n.name: _shape(n) for n in descriptor.nested_types},
    }  # fmt: skip


@pytest.mark.parametrize("message", sorted(pb.DESCRIPTOR.message_types_by_name))
def test_wire_compatible_with_tritonclient(message: str) -> None:
    theirs = service_pb2.DESCRIPTOR.message_types_by_name[message]
    assert _shape(pb.DESCRIPTOR.message_types_by_name[message]) == _shape(theirs)
    assert pb.DESCRIPTOR.message_types_by_name[message].full_name == theirs.full_name


def test_service_methods_match_tritonclient() -> None:
    mine = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert mine.full_name == theirs.full_name == "inference.GRPCInferenceService"
    for method in mine.methods:
        other = theirs.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == (
            other.input_type.full_name,
            other.output_type.full_name,
        )
