#!/bin/sh
# Regenerate the gateway's Open Inference Protocol gRPC modules from
# services/gateway/grpc/inference.proto (run from anywhere; needs the dev extra's
# grpcio-tools, in .venv or on PATH). Idempotent: same proto, same tools → same files.
#
# The modules register their messages in a private descriptor pool, not protobuf's
# default one: the protocol's package is `inference`, as in tritonclient, KServe and
# MLServer, and two files defining `inference.ModelInferRequest` in the default pool
# cannot be imported into one process.
set -eu

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
OUT=services/gateway/grpc

"$PYTHON" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
    "$OUT/inference.proto"
sed -i 's/_descriptor_pool\.Default()\.AddSerializedFile/_descriptor_pool.DescriptorPool().AddSerializedFile/' \
    "$OUT/inference_pb2.py"
grep -q '_descriptor_pool.DescriptorPool().AddSerializedFile' "$OUT/inference_pb2.py" || {
    echo "gen_grpc: protoc's output changed; inference_pb2.py does not use a private pool" >&2
    exit 1
}
echo "gen_grpc: wrote $OUT/inference_pb2.py, inference_pb2.pyi, inference_pb2_grpc.py"
