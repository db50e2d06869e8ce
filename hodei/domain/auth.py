"""Who may call what: roles, the credential of a call, the token format. No I/O.

A token is `hodei_<id as 32 hex>_<secret>`: the server finds it by id and compares
SHA-256(secret) with the stored hash in constant time. The secret is 256 random bits,
so a fast hash is right: a slow password hash protects guessable secrets, and there is
nothing to guess here; it would only add its cost to every uncached call.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from hodei.errors import InvalidArgument, PermissionDenied, Unauthenticated

TOKEN_PREFIX = "hodei_"
#: The gRPC metadata key a token travels in, as `Bearer <token>`.
METADATA_KEY = "authorization"
_TOKEN_RX = re.compile(r"^hodei_([0-9a-f]{32})_([A-Za-z0-9_-]{20,100})$")
_NAME_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
#: `--expires 30d`: a number and a unit.
_EXPIRY_RX = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_EXPIRY_SECONDS = 10 * 365 * 86400


class Role(enum.StrEnum):
    WORKER = "worker"
    CLIENT = "client"
    ADMIN = "admin"


_JOBS = "hodei.api.v1.JobExecutionService"
_LOGS = "hodei.api.v1.LogStreamService"
_WORKERS = "hodei.api.v1.WorkerAgentService"
_PLATFORM = "hodei.api.v1.PlatformService"

#: Services anyone may call: how one sees whether a server is there at all.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

_CLIENT = frozenset({Role.CLIENT, Role.ADMIN})
_WORKER = frozenset({Role.WORKER, Role.ADMIN})

#: The roles allowed on each method. A method missing here is admin-only, so a new RPC
#: is closed until someone decides who may call it.
METHOD_ROLES: dict[str, frozenset[Role]] = {
    f"/{_JOBS}/QueueJob": _CLIENT,
    f"/{_JOBS}/QueueJobs": _CLIENT,
    # A client sees and cancels only the jobs it submitted (OWNED_METHODS).
    f"/{_JOBS}/GetJob": _CLIENT,
    f"/{_JOBS}/ListJobs": _CLIENT,
    f"/{_JOBS}/CancelJob": _CLIENT,
    f"/{_LOGS}/SubscribeLogs": _CLIENT,
    f"/{_LOGS}/SubscribeLogBatches": _CLIENT,
    f"/{_LOGS}/GetLogs": _CLIENT,
    f"/{_WORKERS}/Register": _WORKER,
    f"/{_WORKERS}/WorkerStream": _WORKER,
    f"/{_WORKERS}/ListWorkers": _CLIENT,
    f"/{_PLATFORM}/GetQueue": _CLIENT,
    f"/{_PLATFORM}/GetServerInfo": _CLIENT,
    # Provider errors name infrastructure (daemons, images, namespaces): operators only.
    f"/{_PLATFORM}/ListProviders": frozenset({Role.ADMIN}),
}


def service_of(method: str) -> str:
    """'/pkg.Service/Method' -> 'pkg.Service'."""
    return method.strip("/").split("/")[0]


def is_open(method: str) -> bool:
    return service_of(method) in OPEN_SERVICES


def allowed_roles(method: str) -> frozenset[Role]:
    return METHOD_ROLES.get(method, frozenset({Role.ADMIN}))


@dataclass(frozen=True)
class Caller:
    """The credential a call was made with. `token_id` is None when authentication is
    off: such a caller is an admin and owns nothing."""

    role: Role
    token_id: uuid.UUID | None = None
    name: str = ""

    @property
    def sees_all_jobs(self) -> bool:
        return self.role == Role.ADMIN

    def owner_filter(self) -> uuid.UUID | None:
        """The owner a job read is limited to; None: every job."""
        return None if self.sees_all_jobs else self.token_id

    def may_see(self, owner: uuid.UUID | None) -> bool:
        return self.sees_all_jobs or (owner is not None and owner == self.token_id)


#: The caller of every call while authentication is off.
UNAUTHENTICATED_ADMIN = Caller(Role.ADMIN, None, "(authentication off)")


def authorize(method: str, caller: Caller) -> None:
    """PermissionDenied with a one-line reason unless the caller's role may call it."""
    roles = allowed_roles(method)
    if caller.role not in roles:
        names = " or ".join(sorted(str(r) for r in roles))
        name = method.rsplit("/", 1)[-1]
        raise PermissionDenied(
            f"token {caller.name!r} has role {caller.role}; {name} needs role {names}"
        )


@dataclass(frozen=True)
class ParsedToken:
    token_id: uuid.UUID
    secret: str


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def format_token(token_id: uuid.UUID, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token_id.hex}_{secret}"


def parse_token(text: str) -> ParsedToken:
    match = _TOKEN_RX.match(text.strip())
    if match is None:
        raise Unauthenticated("malformed token: expected hodei_<id>_<secret>")
    return ParsedToken(uuid.UUID(hex=match.group(1)), match.group(2))


def bearer(metadata_value: str | None) -> str:
    """The token in an `authorization` value, or Unauthenticated."""
    if not metadata_value:
        raise Unauthenticated(
            "no token: send 'authorization: Bearer <token>' (hodei --token, HODEI_TOKEN)"
        )
    scheme, _, token = metadata_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
    return token.strip()


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), bytes(stored))


def check_name(name: str) -> str:
    if not _NAME_RX.match(name):
        raise InvalidArgument(
            "token name must be 1-100 letters, digits or . _ @ - (starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidArgument(f"unknown role {role!r}: expected worker, client or admin") from None


def parse_expiry(text: str) -> float:
    """'30d' -> seconds ('s', 'm', 'h', 'd', 'w'), at most ten years."""
    match = _EXPIRY_RX.match(text.strip())
    if match is None:
        raise InvalidArgument(f"invalid expiry {text!r}: expected a number and s, m, h, d or w")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= MAX_EXPIRY_SECONDS:
        raise InvalidArgument(f"invalid expiry {text!r}: between 1s and 3650d")
    return float(seconds)
