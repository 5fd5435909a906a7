"""Admins change the unit tree through the gateway; every change is audited; others may not."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.settings import CommonSettings

pytestmark = pytest.mark.e2e


async def audit_rows(path: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(CommonSettings().asyncpg_dsn)
    try:
        return await conn.fetch("SELECT actor, method, status FROM gateway.audit WHERE path = $1 ORDER BY id", path)
    finally:
        await conn.close()


def test_admin_creates_a_local_office_and_the_change_is_audited(gateway: httpx.Client, admin_token: str) -> None:
    code = f"P05.T{uuid.uuid4().hex[:6]}"
    path = f"/api/v1/units/{code}"
    body = {"name": "Thuế cơ sở thử nghiệm Sơn La", "level": "local", "parent_code": "P05", "valid_from": "2025-07-01"}
    created = gateway.put(path, json=body, headers={"Authorization": f"Bearer {admin_token}"})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Thuế cơ sở thử nghiệm Sơn La"
    again = gateway.put(path, json=body, headers={"Authorization": f"Bearer {admin_token}"})
    assert again.status_code == 200
    assert any(u["code"] == code and u["parent_code"] == "P05" for u in gateway.get("/api/v1/units").json())
    assert [(r["actor"], r["method"], r["status"]) for r in asyncio.run(audit_rows(path))] == [
        ("test-admin", "PUT", 201),
        ("test-admin", "PUT", 200),
    ]


def test_unit_changes_need_the_admin_role_and_a_valid_tree(gateway: httpx.Client, admin_token: str) -> None:
    leader = mint_dev_token(GatewaySettings(), sub="lead", role="leader", unit="CT")
    body = {"name": "X", "level": "local", "parent_code": "P05"}
    assert gateway.put("/api/v1/units/P05.NOPE", json=body).status_code == 401
    assert (
        gateway.put("/api/v1/units/P05.NOPE", json=body, headers={"Authorization": f"Bearer {leader}"}).status_code
        == 403
    )
    wrong_parent = gateway.put(
        "/api/v1/units/P05.BAD",
        json={**body, "parent_code": "P05.NOTHERE"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert wrong_parent.status_code == 422
    assert wrong_parent.json()["error"]["details"][0]["field"] == "parent_code"
