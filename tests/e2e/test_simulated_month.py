"""One small simulated month through the platform: SQI's counts equal the simulator's answer key.

The simulator speaks only the public API (``python -m sim.cli`` against the e2e gateway): it
creates its local offices and keys, sends the month seven months before the running one at scale
0.02 (no other test uses that month: theirs are the running one and the one before it, units of
their own, or the fixed month of the integration guide's example, skipped; and none leaves a
dossier open before it), imports most ratings with the province
sources' keys and sends a few citizen writes, then settles the month's dossiers (their later
events, over the next six months, all past) so none stays open to be carried into the periods
other tests use. Dated relative to today, the month stays within the 24 months scoring keeps. It
does not send its procedure catalogue (``--no-catalogue``): the catalogue is global and the platform
keeps the reference seed's.

SQI's numerators and denominators for a sample of units are then compared with the answer key,
exactly; the definitions and the one designed difference are in :mod:`sim.answer_key`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.calendar import VN_TZ
from tests.integration.ingest.test_integration_doc import blocks

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEED = 11


def _month_start(months_back: int) -> date:
    """The first day of the month ``months_back`` before the running one (Vietnam time)."""
    today = datetime.now(VN_TZ).date()
    index = today.year * 12 + today.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


# The months of docs/integration.md's example dossier (P27, fixed dates), which the ingest test sends.
DOCS_MONTHS = {at[:7] for _, script in blocks("bash") for at in re.findall(r'"occurred_at": "([^"]+)"', script)}
BACK = next(n for n in range(7, 10) if f"{_month_start(n):%Y-%m}" not in DOCS_MONTHS)
FIRST = _month_start(BACK)
LAST = _month_start(BACK - 1) - timedelta(days=1)
MONTH = f"{FIRST:%Y-%m}"
SETTLED = _month_start(0) - timedelta(days=1)  # six months later or more: the last complete month's end

#: tax-2025 indicator → (answer-key numerator, answer-key denominator)
INDICATORS: dict[str, tuple[str, str]] = {
    "1.4": ("handled_synced", "handled"),
    "2.1": ("handled_on_time", "handled"),
    "3.1": ("handled_result_digitized", "handled"),
    "3.2": ("handled_digitized", "handled"),
    "3.3": ("handled_reused", "handled"),
    "3.4": ("handled_personal_store", "handled"),
    "3.5": ("handled_population_data", "handled"),
    "4.6": ("paid_online", "received_fee_payable"),
    "5.4": ("handled_satisfaction_ok", "handled"),
}


def _expected(counts: dict[str, int]) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {ind: (counts[n], counts[d]) for ind, (n, d) in INDICATORS.items()}
    # 4.3: qualifying online dossiers received × 1.4's ratio, in double, in that order.
    sync_rate = counts["handled_synced"] / counts["handled"] if counts["handled"] else 0.0
    out["4.3"] = (counts["received_online_qualifying"] * sync_rate, counts["received"])
    return out


def _seen(breakdown: dict[str, Any]) -> dict[str, tuple[float, int]]:
    ind = {i["id"]: i for g in breakdown["groups"] for i in g["indicators"]}
    return {k: (ind[k]["numerator"], ind[k]["denominator"]) for k in (*INDICATORS, "4.3")}


@pytest.fixture(scope="module")
def simulated(platform: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key_file = tmp_path_factory.mktemp("sim") / "key.json"
    admin = mint_dev_token(GatewaySettings(), sub="e2e-simulator", role="admin", unit="CT")
    argv = [
        sys.executable,
        "-m",
        "sim.cli",
        "--gateway",
        platform,
        "--days",
        str(LAST.day),
        "--end",
        LAST.isoformat(),
        "--scale",
        "0.02",
        "--seed",
        str(SEED),
        "--no-anomalies",
        "--no-catalogue",
        "--feedback",
        "--citizen-writes",
        "4",
        "--settle-until",
        SETTLED.isoformat(),
        "--answer-key",
        str(key_file),
    ]
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, "SQI_ADMIN_TOKEN": admin}, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    key: dict[str, Any] = orjson.loads(key_file.read_bytes())
    return {"key": key, "log": done.stderr}


def test_the_simulator_sent_everything_without_rejections(simulated: dict[str, Any]) -> None:
    log = simulated["log"]
    rejected = [int(n) for n in re.findall(r"rejected (\d+) retries", log.replace(",", ""))]
    assert rejected and set(rejected) == {0}, log[-2000:]
    # Ratings: most imported with the sources' keys, a few (within the budget) as citizens.
    feedback = simulated["key"]["feedback"]
    imported = sum(f.get("ratings_import", 0) for f in feedback.values())
    assert imported > 50
    assert f"import_accepted {imported}" in log, log[-2000:]
    assert "import_rejected" not in log
    # The citizen endpoints, within the budget (4: two ratings, two petition writes) and the limit.
    citizen = sum(f.get("ratings_citizen", 0) for f in feedback.values())
    petitions = sum(f.get("petitions", 0) for f in feedback.values())
    assert (citizen, petitions) == (2, 2)
    assert "rating_201 2" in log and "petition_201 2" in log, log[-2000:]


def test_sqi_counts_equal_the_answer_key(simulated: dict[str, Any], gateway: httpx.Client) -> None:
    key = simulated["key"]
    subtree: dict[str, dict[str, dict[str, int]]] = key["subtree"]
    leader = {
        "Authorization": f"Bearer {mint_dev_token(GatewaySettings(), sub='e2e-sim-leader', role='leader', unit='CT')}"
    }
    locals_ = sorted(
        (c for c in key["units"] if ".L" in c and MONTH in key["units"][c]),
        key=lambda c: -key["units"][c][MONTH]["handled"],
    )
    # Every provincial office (each is the union of its subtree) and local offices from the
    # busiest to the quietest. Not Cục Thuế itself: CT is the root of every test's units, and a
    # dossier another test leaves open in an earlier month is handled in this one too.
    provinces = sorted(c for c in subtree if c.startswith(("P", "CT.")) and "." not in c[3:] and MONTH in subtree[c])
    sample = [*provinces, *locals_[:3], locals_[len(locals_) // 2], locals_[-1]]
    expected = {u: _expected(subtree[u][MONTH]) for u in sample}
    assert len(provinces) == 35 and sum(expected[u]["2.1"][1] for u in provinces) > 1000  # a real month

    def read(unit: str) -> dict[str, tuple[float, int]] | None:
        r = gateway.get(f"/api/v1/scores/{unit}", params={"period": MONTH}, headers=leader)
        return _seen(r.json()) if r.status_code == 200 else None

    # Wait until scoring has caught up with every province, then compare the sample (a busy
    # machine may take minutes to judge the month: the poll returns as soon as it is there).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and any(read(u) != expected[u] for u in provinces):
        time.sleep(1)
    seen = {u: read(u) for u in sample}
    diffs: dict[str, dict[str, Any]] = {}
    for u in sample:
        got = seen[u]
        wrong = {i: (got[i] if got else None, want) for i, want in expected[u].items() if not got or got[i] != want}
        if wrong:
            diffs[u] = wrong  # indicator: (SQI, answer key)
    assert not diffs, diffs
