"""Admin endpoints for integrator API keys (served by the gateway itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from gateway import keys
from gateway.tables import api_key
from shared.web import Admin, ApiError

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

UnitCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
KeyId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$", description="the key id")]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="the sending system, e.g. tms-p01")
    units: list[UnitCode] = Field(min_length=1, max_length=500, description="units (with subtrees) it may report for")


class KeyOut(BaseModel):
    key: str = Field(description="shown once; store it in the dossier system's secret store")
    key_id: str
    source: str
    units: list[str]


class KeyInfo(BaseModel):
    key_id: str
    source: str
    units: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@router.post("", response_model=KeyOut, status_code=201, summary="Create an integrator API key (admin)")
async def create_key(body: KeyIn, request: Request, principal: Admin) -> KeyOut:
    gw = request.app.state.gateway
    async with gw.sessions() as session, session.begin():
        issued = await keys.create_key(session, source=body.source, units=body.units, created_by=principal.sub)
    return KeyOut(**issued.__dict__)


@router.get("", response_model=list[KeyInfo], summary="List API keys without secrets (admin)")
async def list_keys(request: Request, _: Admin) -> list[KeyInfo]:
    gw = request.app.state.gateway
    async with gw.sessions() as session:
        rows = (await session.execute(select(api_key).order_by(api_key.c.created_at))).mappings().all()
    return [KeyInfo.model_validate(dict(r)) for r in rows]


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key (admin)")
async def revoke(key_id: KeyId, request: Request, _: Admin) -> None:
    gw = request.app.state.gateway
    async with gw.sessions() as session, session.begin():
        if not await keys.revoke_key(session, key_id):
            raise ApiError(404, "no active key with this id")
