"""Open Inference Protocol tensors in protobuf ↔ the JSON-style tensors of the REST routes.

A request tensor's elements come either typed, in the ``contents`` field that matches its
datatype, or raw, as the request's ``raw_input_contents`` entry at the tensor's index (all
inputs raw or none). Raw elements are little-endian and fixed-width (``BOOL`` one byte);
a ``BYTES`` element is a 4-byte little-endian length, then that many bytes. ``BYTES``
elements become ``str`` (UTF-8), as in a JSON body. Decoded tensors are
``{"name", "shape", "datatype", "data"}`` with ``data`` flat, ready for
:func:`services.gateway.routes.oip.rows_from_inputs`.

Response tensors are always raw (``raw_output_contents``), as Triton answers; a list
parameter (``probabilities``' ``classes``) becomes one string, its items joined by ``,``.
Every malformed tensor is a 400 ``malformed`` :class:`~services.gateway.errors.ApiError`
(``INVALID_ARGUMENT``) naming the input.

>>> from services.gateway.grpc import inference_pb2 as pb
>>> request = pb.ModelInferRequest(
...     inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="INT32", shape=[2])],
...     raw_input_contents=[b"\\x01\\x00\\x00\\x00\\x02\\x00\\x00\\x00"])
>>> decode_inputs(request)
[{'name': 'x', 'shape': [2], 'datatype': 'INT32', 'data': [1, 2]}]
>>> encode_bytes(["ab", ""])
b'\\x02\\x00\\x00\\x00ab\\x00\\x00\\x00\\x00'
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from services.gateway.errors import ApiError
from services.gateway.grpc import inference_pb2 as pb

__all__ = [
    "DATATYPES",
    "decode_input",
    "decode_inputs",
    "encode_bytes",
    "encode_outputs",
    "parameter",
    "split_bytes",
]

InputTensor = pb.ModelInferRequest.InferInputTensor
OutputTensor = pb.ModelInferResponse.InferOutputTensor

# datatype → (numpy dtype of one raw element, the typed contents field), BYTES aside
DATATYPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "BOOL": ("?", "bool_contents"),
    "UINT8": ("<u1", "uint_contents"), "UINT16": ("<u2", "uint_contents"),
    "UINT32": ("<u4", "uint_contents"), "UINT64": ("<u8", "uint64_contents"),
    "INT8": ("<i1", "int_contents"), "INT16": ("<i2", "int_contents"),
    "INT32": ("<i4", "int_contents"), "INT64": ("<i8", "int64_contents"),
    "FP16": ("<f2", None), "FP32": ("<f4", "fp32_contents"), "FP64": ("<f8", "fp64_contents"),
}  # fmt: skip
_LENGTH: Final = struct.Struct("<I")
_KNOWN: Final = ", ".join([*DATATYPES, "BYTES"])


def decode_inputs(request: pb.ModelInferRequest) -> list[dict[str, Any]]:
    """Every input tensor of ``request``, JSON-style, its data taken from wherever it was
    sent (typed contents or ``raw_input_contents``)."""
    raws = request.raw_input_contents
    if raws and len(raws) != len(request.inputs):
        count = len(request.inputs)
        raise _malformed(f"raw_input_contents has {len(raws)} entries for {count} inputs; "
                         "send every input raw, or none")  # fmt: skip
    return [decode_input(t, raws[i] if raws else None) for i, t in enumerate(request.inputs)]


def decode_input(tensor: InputTensor, raw: bytes | None) -> dict[str, Any]:
    """One input tensor, JSON-style; ``raw`` is its ``raw_input_contents`` entry, if any."""
    name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
    if datatype != "BYTES" and datatype not in DATATYPES:
        raise _malformed(f"input {name!r} has datatype {datatype!r}; expected one of {_KNOWN}")
    if any(size < 0 for size in shape):
        raise _malformed(f"input {name!r} has shape {shape}; sizes must not be negative")
    if raw is not None and tensor.HasField("contents"):
        raise _malformed(f"input {name!r} has data in both contents and raw_input_contents")
    data = _from_raw(name, datatype, raw) if raw is not None else _from_contents(tensor)
    count = math.prod(shape)
    if len(data) != count:
        where = "raw_input_contents" if raw is not None else f"contents.{_field(datatype)}"
        raise _malformed(f"input {name!r} ({datatype}, shape {shape}) needs {count} values "
                         f"in {where}, got {len(data)}")  # fmt: skip
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def _field(datatype: str) -> str:
    return "bytes_contents" if datatype == "BYTES" else str(DATATYPES[datatype][1])


def _from_contents(tensor: InputTensor) -> list[Any]:
    if tensor.datatype == "FP16":
        raise _malformed(f"input {tensor.name!r} is FP16, which has no typed contents; "
                         "send it in raw_input_contents")  # fmt: skip
    values = list(getattr(tensor.contents, _field(tensor.datatype)))
    if tensor.datatype == "BYTES":
        return [_text(tensor.name, i, value) for i, value in enumerate(values)]
    return values


def _from_raw(name: str, datatype: str, raw: bytes) -> list[Any]:
    if datatype == "BYTES":
        return [_text(name, i, value) for i, value in enumerate(split_bytes(name, raw))]
    dtype = np.dtype(DATATYPES[datatype][0])
    if len(raw) % dtype.itemsize:
        raise _malformed(f"input {name!r} ({datatype}) has {len(raw)} raw bytes, not a "
                         f"whole number of {dtype.itemsize}-byte elements")  # fmt: skip
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def split_bytes(name: str, raw: bytes) -> list[bytes]:
    """The elements of a raw ``BYTES`` tensor (each a 4-byte little-endian length, then
    the bytes); a buffer that ends inside an element is a 400 naming ``name``.

    >>> split_bytes("x", b"\\x01\\x00\\x00\\x00a\\x00\\x00\\x00\\x00")
    [b'a', b'']
    """
    elements: list[bytes] = []
    position, end = 0, len(raw)
    while position < end:
        if position + _LENGTH.size > end:
            raise _malformed(f"input {name!r}: raw BYTES data ends inside the length of "
                             f"element {len(elements)} (at byte {position} of {end})")  # fmt: skip
        (size,) = _LENGTH.unpack_from(raw, position)
        position += _LENGTH.size
        if position + size > end:
            raise _malformed(f"input {name!r}: raw BYTES element {len(elements)} declares "
                             f"{size} bytes but only {end - position} remain")  # fmt: skip
        elements.append(raw[position : position + size])
        position += size
    return elements


def _text(name: str, index: int, value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise _malformed(f"input {name!r}: BYTES element {index} is not UTF-8 text") from None


def encode_outputs(
    tensors: Sequence[Mapping[str, Any]],
) -> tuple[list[OutputTensor], list[bytes]]:
    """JSON-style output tensors (``BYTES`` or ``FP64``) → protobuf tensors and their raw
    contents, in the same order."""
    outputs, raws = [], []
    for tensor in tensors:
        datatype, data = str(tensor["datatype"]), tensor["data"]
        raw = encode_bytes(data) if datatype == "BYTES" else _encode_numbers(datatype, data)
        outputs.append(OutputTensor(
            name=tensor["name"], datatype=datatype, shape=tensor["shape"],
            parameters={k: parameter(v) for k, v in (tensor.get("parameters") or {}).items()},
        ))  # fmt: skip
        raws.append(raw)
    return outputs, raws


def encode_bytes(values: Sequence[Any]) -> bytes:
    """Raw ``BYTES`` contents: each value as UTF-8 text (``bytes`` as is), length first."""
    parts: list[bytes] = []
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode()
        parts += (_LENGTH.pack(len(data)), data)
    return b"".join(parts)


def _encode_numbers(datatype: str, values: Sequence[Any]) -> bytes:
    dtype = DATATYPES[datatype][0]
    if datatype.startswith("FP"):  # a missing value (None) is NaN
        values = [math.nan if v is None else v for v in values]
    return np.asarray(values, dtype=dtype).tobytes()


def parameter(value: Any) -> pb.InferParameter:
    """One response parameter; a list becomes a string, its items joined by ``,``.

    >>> parameter(["False", "True"]).string_param
    'False,True'
    >>> parameter(1.5).double_param
    1.5
    """
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    if isinstance(value, list | tuple):
        return pb.InferParameter(string_param=",".join(str(item) for item in value))
    return pb.InferParameter(string_param=str(value))


def _malformed(message: str) -> ApiError:
    return ApiError("malformed", message, status=400)
