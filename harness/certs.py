"""Certificates made at run time for TLS tests and trial deployments (trustme): a CA
that signs the server's and a client's certificate, and a second, unrelated CA with its
own client certificate (the "wrong CA" of the mTLS tests). Only files: the paths go to
the platform through its tls settings, as a real deployment's would.

    python -m harness.certs DIR [NAME ...]   # e.g. DIR=.tls NAME=server for compose

Never for production: the CA's key is thrown away and nothing is kept secret."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsCerts:
    ca: Path  # signed the server's and the good client's certificates
    server_cert: Path  # for localhost and 127.0.0.1
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # an unrelated CA
    other_client_cert: Path  # signed by other_ca
    other_client_key: Path

    def server(self, mtls: bool = False) -> dict[str, str]:
        """The server's tls settings."""
        values = {"cert": str(self.server_cert), "key": str(self.server_key)}
        return {**values, "client_ca": str(self.ca)} if mtls else values

    def client(self, cert: str = "none") -> dict[str, str]:
        """A client's tls settings: no client certificate, the good one, or the one
        from the other CA (cert = "none" | "good" | "other")."""
        values = {"ca": str(self.ca)}
        if cert == "good":
            values |= {"client_cert": str(self.client_cert), "client_key": str(self.client_key)}
        elif cert == "other":
            values |= {
                "client_cert": str(self.other_client_cert),
                "client_key": str(self.other_client_key),
            }
        return values


def make_certs(folder: Path, names: tuple[str, ...] = ()) -> TlsCerts:
    """The files in `folder`; the server's certificate holds localhost, 127.0.0.1 and
    `names` (a compose service name, say)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", *names)
    client = ca.issue_cert("hodei-client")
    stranger = other.issue_cert("hodei-client")

    def write(name: str, blobs: list[trustme.Blob]) -> Path:
        path = folder / name
        path.write_bytes(b"".join(blob.bytes() for blob in blobs))
        return path

    return TlsCerts(
        ca=write("ca.pem", [ca.cert_pem]),
        server_cert=write("server.pem", list(server.cert_chain_pems)),
        server_key=write("server.key", [server.private_key_pem]),
        client_cert=write("client.pem", list(client.cert_chain_pems)),
        client_key=write("client.key", [client.private_key_pem]),
        other_ca=write("other-ca.pem", [other.cert_pem]),
        other_client_cert=write("other-client.pem", list(stranger.cert_chain_pems)),
        other_client_key=write("other-client.key", [stranger.private_key_pem]),
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: python -m harness.certs DIR [SERVER_NAME ...]")
    made = make_certs(Path(sys.argv[1]), tuple(sys.argv[2:]))
    print(f"CA {made.ca}; server {made.server_cert}; client {made.client_cert}")
