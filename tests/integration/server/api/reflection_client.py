"""A reflection client in its own process, for tests/integration/server/api/test_reflection.py.

`python reflection_client.py ADDRESS v1|v1alpha` lists the server's services and
resolves the file that declares `hodei.api.v1.JobExecutionService`, then prints what it
found as JSON. For v1 it uses stubs generated from grpc-proto's own
`grpc/reflection/v1/reflection.proto` (copied in reflection_v1/; the test compiles it
onto PYTHONPATH), not
anything of the server's; for v1alpha it uses grpcio-reflection's descriptor database,
the client tools build on.
"""

from __future__ import annotations

import json
import sys

import grpc
from google.protobuf import descriptor_pb2

SYMBOL = "hodei.api.v1.JobExecutionService"
V1_SERVICE = "grpc.reflection.v1.ServerReflection"


def v1(channel: grpc.Channel) -> dict[str, object]:
    import reflection_pb2
    import reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SYMBOL),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        # What grpcurl's `describe` of the reflection service itself asks.
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1_SERVICE),
    ]
    listed, found, missing, itself = stub.ServerReflectionInfo(iter(requests), timeout=10)
    own = descriptor_pb2.FileDescriptorProto.FromString(
        itself.file_descriptor_response.file_descriptor_proto[0]
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    return {
        "services": sorted(s.name for s in listed.list_services_response.service),
        "files": sorted(f.name for f in files),
        "methods": sorted(
            m.name
            for f in files
            for s in f.service
            if s.name == SYMBOL.rsplit(".", 1)[1]
            for m in s.method
        ),
        "missing_code": missing.error_response.error_code,
        "itself": [own.name, own.package, own.service[0].method[0].input_type],
    }


def v1alpha(channel: grpc.Channel) -> dict[str, object]:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    database = ProtoReflectionDescriptorDatabase(channel)
    found = database.FindFileContainingSymbol(SYMBOL)
    service = next(s for s in found.service if s.name == SYMBOL.rsplit(".", 1)[1])
    return {
        "services": sorted(database.get_services()),
        "files": [found.name],
        "methods": sorted(m.name for m in service.method),
        "missing_code": 0,
    }


def main() -> None:
    address, version = sys.argv[1], sys.argv[2]
    with grpc.insecure_channel(address) as channel:
        found = v1(channel) if version == "v1" else v1alpha(channel)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
