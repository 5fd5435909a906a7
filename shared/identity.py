"""Who is calling: the identity the gateway verified, forwarded to services in headers.

Services trust these headers only when they come with the internal token that only the
gateway holds; the gateway strips any such headers a client sends.
"""

from __future__ import annotations

import base64
import hmac
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

PRINCIPAL_HEADER = "x-sqi-principal"
INTERNAL_TOKEN_HEADER = "x-sqi-internal-token"  # noqa: S105 (a header name)
CLIENT_ADDRESS_HEADER = "x-sqi-client-address"

Role = Literal["admin", "leader", "unit_head", "analyst", "officer"]
STAFF_ROLES: tuple[str, ...] = ("admin", "leader", "unit_head", "analyst", "officer")


class Principal(BaseModel):
    """A verified caller: an integrator (API key), a staff user (JWT) or an anonymous citizen."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["integrator", "staff", "anonymous"]
    sub: str = ""
    roles: tuple[str, ...] = ()
    unit: str | None = None  # staff: the root of the subtree they may see
    source: str | None = None  # integrator: the sending system
    units: tuple[str, ...] = ()  # integrator: units (with their subtrees) it may report for
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "staff" and "admin" in self.roles

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"


ANONYMOUS = Principal(kind="anonymous")


def encode_principal(principal: Principal) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(principal.model_dump())).decode()


def from_gateway(token: str | None, expected_token: str) -> bool:
    """Whether a request carries the internal token that only the gateway holds."""
    return bool(token) and hmac.compare_digest(str(token).encode(), expected_token.encode())


def decode_principal(header: str | None, token: str | None, expected_token: str) -> Principal:
    """The forwarded principal, or anonymous when the internal token is absent or wrong."""
    if not header or not from_gateway(token, expected_token):
        return ANONYMOUS
    try:
        return Principal.model_validate(orjson.loads(base64.urlsafe_b64decode(header.encode())))
    except ValueError:
        return ANONYMOUS
