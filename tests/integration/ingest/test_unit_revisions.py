"""Each change of a unit is announced with a new revision, so the copies keep the newest."""

from __future__ import annotations

import pytest

from services.ingest.bootstrap import Ingest
from services.ingest.units import put_unit
from shared.contracts import UnitsChanged
from tests.integration.ingest.conftest import new_id, sql

pytestmark = pytest.mark.integration


async def test_each_change_of_a_unit_is_announced_with_the_next_revision(ingest: Ingest) -> None:
    code = new_id("P01.REV")
    for name in ("Thuế cơ sở thử", "Thuế cơ sở thử (đổi tên)"):
        async with ingest.uow() as uow:
            shown, _ = await put_unit(code, {"name": name, "level": "local", "parent_code": "P01"}, uow=uow)
        assert "revision" not in shown  # the units API shows what it always showed
    rows = await sql(
        ingest,
        "SELECT body FROM ingest.outbox WHERE routing_key = :rk AND position(:code in convert_from(body, 'UTF8')) > 0"
        " ORDER BY created_at",
        rk=UnitsChanged.routing_key,
        code=code,
    )
    announced = [UnitsChanged.model_validate_json(r.body).units[0] for r in rows]
    assert [(u.name, u.revision) for u in announced] == [("Thuế cơ sở thử", 1), ("Thuế cơ sở thử (đổi tên)", 2)]
