"""Server reflection under both names clients ask for: `grpc.reflection.v1alpha` and
`grpc.reflection.v1`.

grpcio-reflection (1.85) serves only v1alpha; grpcurl, Postman and grpc-java's tools
try v1 first and a server without it answers UNIMPLEMENTED. The two protocols are the
same messages with the same field numbers under another package, so the v1 method is
the v1alpha servicer behind a second route, and the v1 file descriptor (for clients
that describe the reflection service itself) is the v1alpha one renamed. When a later
grpcio-reflection registers the real v1 file, that one is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
#: Both names, for the interceptors that leave reflection open.
SERVICE_NAMES = frozenset({V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME})
#: The file name upstream gives the v1 proto (grpc-proto's grpc/reflection/v1).
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_V1ALPHA_PACKAGE = ".grpc.reflection.v1alpha."
_V1_PACKAGE = ".grpc.reflection.v1."


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1alpha and v1 on `server`, listing `service_names` and both
    reflection services."""
    pool = descriptor_pool.Default()
    register_v1_descriptor(pool)
    names = [*service_names, *sorted(SERVICE_NAMES)]
    reflection.enable_server_reflection(names, server, pool=pool)
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)
    handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))


def register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add the v1 reflection file to `pool` unless it is there already."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE.strip(".")
    proto.ClearField("options")  # v1alpha's go/java package names would be wrong here
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
            method.output_type = method.output_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
    pool.AddSerializedFile(proto.SerializeToString())
