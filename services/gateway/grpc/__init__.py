"""The Open Inference Protocol (KServe predict v2) over gRPC: service
``inference.GRPCInferenceService``, so Triton, KServe and MLServer gRPC clients call
modelstream unchanged. It answers what the REST ``/v2`` routes answer, through the same
checks (:mod:`services.gateway.auth`) and the same serving (``ctx.serving``).

RPCs: ServerLive, ServerReady, ServerMetadata (no token); ModelReady, ModelMetadata
(``predict:<model>`` or ``catalogue:read``); ModelInfer (``predict:<model>``). Send the
token as metadata ``authorization: Bearer <token>``.

ModelInfer takes one tensor per feature (shape ``[N]`` or ``[N, 1]``) or one ``[N, F]``
tensor in schema order, its data typed (``contents``) or raw (``raw_input_contents``, as
tritonclient's ``set_data_from_numpy`` sends it). It answers ``predict`` (BYTES labels,
or FP64 for regression), ``probabilities`` (FP64 ``[N, C]``; parameter ``classes`` is one
string, the class labels joined by ``,``) and ``served_by`` (BYTES), all in
``raw_output_contents``, as Triton does; ``outputs`` in the request picks some of them.

Errors: the REST status of each error maps to one gRPC status (:data:`STATUS_CODES`:
400/422 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND,
408/504 DEADLINE_EXCEEDED, 413/429 RESOURCE_EXHAUSTED, 502 INTERNAL, 503 UNAVAILABLE); the
trailing metadata carries ``ms-error-code`` and, on 429 and on 503 ``overloaded`` (past
the process's in-flight limit), ``retry-after``. ModelInfer with more than one row needs
``batch:<model>`` as well, like REST.

Parts::

    inference.proto       the service and messages (KServe's field names and numbers)
    inference_pb2*.py(i)  generated: scripts/gen_grpc.sh (grpcio-tools; do not edit)
    _server.py            start_grpc(): the grpc.aio server on the gateway's event loop
    _servicer.py          the six RPCs
    _infer.py             ModelInfer, step for step as REST's infer
    _access.py            the token in the metadata → client, model, scope
    _tensors.py           protobuf tensors ↔ the REST routes' JSON-style tensors
    _status.py            gateway errors → gRPC status, details, trailing metadata

Regenerate the protobuf modules after editing ``inference.proto``::

    scripts/gen_grpc.sh
    # = .venv/bin/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \\
    #       --grpc_python_out=. services/gateway/grpc/inference.proto
    #   then, in inference_pb2.py, _descriptor_pool.Default() → DescriptorPool()

The generated messages live in a private descriptor pool: their package, ``inference``,
is tritonclient's and MLServer's too, and protobuf's default pool refuses a second
definition of ``inference.ModelInferRequest`` in one process.
"""

from services.gateway.grpc._server import MAX_MESSAGE_BYTES, GrpcStartError, start_grpc
from services.gateway.grpc._servicer import InferenceServicer
from services.gateway.grpc._status import STATUS_CODES

__all__ = ["MAX_MESSAGE_BYTES", "STATUS_CODES", "GrpcStartError", "InferenceServicer", "start_grpc"]
