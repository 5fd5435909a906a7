"""Schemathesis over the merged OpenAPI document: no operation answers a 5xx (issue 10).

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests
(valid and invalid ones), with an admin token (staff operations) or an integrator key (the
integrator's operations) so that generation reaches past authentication. The check that must
hold everywhere is schemathesis' ``not_a_server_error``: bad input of any shape is the
caller's mistake, a 4xx. Every failing operation is reported at once, with a curl command.

The run writes random data (units, keys, calendar days) into the shared platform, so
``tests/e2e/conftest.py`` runs it after every other test of the session.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 12
# Operations whose 500s are known and owned by another branch (issue 10, "No request earns
# a 500"), as "METHOD /path"; skipped here so this test guards everything else.
KNOWN_ELSEWHERE: dict[str, str] = {}

INTEGRATOR_PATHS = ("/api/v1/events", "/api/v1/ratings/import", "/api/v1/dossiers/")


@pytest.fixture(scope="session")
def merged_schema(platform: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{platform}/api/v1/openapi.json", wait_for_schema=60)


def strategy_for(operation: Any) -> st.SearchStrategy[Any]:
    modes = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            modes.append(operation.as_strategy(mode))
        except Exception:  # noqa: S112 - some operations have no invalid form to generate
            continue
    return st.one_of(*modes)


def probe_for(operation: Any, base_url: str, headers: dict[str, str], statuses: dict[int, int]) -> Any:
    """A bounded Hypothesis test of one operation; raises AssertionError on a 5xx."""

    @given(case=strategy_for(operation))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def probe(case: schemathesis.Case) -> None:
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
        except requests.RequestException as exc:  # no answer at all is a finding too
            raise AssertionError(f"no answer: {exc}") from exc
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            curl = case.as_curl_command(headers=headers)
            raise AssertionError(f"{response.status_code}: {response.text[:200]}\n    {curl}")

    return probe


def test_no_operation_answers_a_server_error(
    merged_schema: BaseSchema,
    platform: str,
    admin_token: str,
    make_key,  # type: ignore[no-untyped-def]
) -> None:
    credentials = {"admin": admin_token, "integrator": make_key("schemathesis", ["P01"])}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    tested = 0
    for result in merged_schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in KNOWN_ELSEWHERE:
            continue
        who = "integrator" if operation.path.startswith(INTEGRATOR_PATHS) else "admin"
        tested += 1
        try:
            probe_for(operation, platform, {"Authorization": f"Bearer {credentials[who]}"}, statuses)()
        except AssertionError as exc:
            failures.append(f"{label}: {exc}")
    print(f"schemathesis: {tested} operations, answers by status: {dict(sorted(statuses.items()))}")
    assert tested >= 30, f"only {tested} operations in the merged document"
    assert sum(statuses.values()) >= tested * 3, statuses
    assert not failures, "\n".join(failures)
