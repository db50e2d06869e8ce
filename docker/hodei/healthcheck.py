"""Container health probe: exit 0 when the Hodei server answers SERVING on grpc.health.v1.

    hodei-healthcheck [HOST:PORT]

Without an argument it checks 127.0.0.1:$HODEI_PORT (default 50051), the server of the
same container (or of the host, with host networking). With HODEI_TLS_CA set (and
HODEI_TLS_CLIENT_CERT/KEY under mTLS) it dials with TLS, as every Hodei client does;
the server's certificate must then hold the name dialled (127.0.0.1, or the service
name), or HODEI_TLS_SERVER_NAME one it holds. Installed into the image as
/usr/local/bin/hodei-healthcheck; used by docker-compose.e2e.yml and the containers
launcher. It is an entry point, so it may read the environment.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from hodei.errors import HodeiError
    from hodei.settings import load_settings
    from hodei.tls import client_tls, sync_channel

    address = argv[1] if len(argv) > 1 else f"127.0.0.1:{os.environ.get('HODEI_PORT', '50051')}"
    try:
        tls = client_tls(load_settings().tls)
    except HodeiError as exc:
        print(f"hodei-healthcheck: {exc}", file=sys.stderr)
        return 1
    try:
        with sync_channel(address, tls) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
    except grpc.RpcError as exc:
        print(f"hodei-healthcheck: {address}: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"hodei-healthcheck: {address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
