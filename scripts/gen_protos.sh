#!/usr/bin/env bash
# Regenerates the committed gRPC stubs in hodei/api/v1/ from proto/hodei/api/v1/*.proto.
# The proto tree mirrors the Python package, so generated imports resolve as
# `from hodei.api.v1 import common_pb2` without rewriting.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
out=${1:-$root}
cd "$root"
"$python" -m grpc_tools.protoc \
  -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/hodei/api/v1/*.proto
