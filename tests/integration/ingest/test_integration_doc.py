"""docs/integration.md works as written: its json examples are sent to ingest and get the
documented answers, and its table of rejection reasons is the code's catalogue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.ingest.domain import reasons
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import headers, integrator

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[3] / "docs" / "integration.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The keys the examples assume: the catalogue's covers the whole tree.
KEY_UNITS = {"catalogue": ("CT",), "tms-p27": ("P27",)}


def blocks(language: str) -> list[tuple[str, str]]:
    """(info after the language, body) of each fenced block in the document, in order."""
    return [
        (m.group(2).strip(), m.group(3))
        for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))
        if m.group(1) == language
    ]


def source_of(body: Any) -> str:
    first = body[0] if isinstance(body, list) else body
    return str(first["source"])


async def test_every_event_type_has_an_example_that_is_accepted(
    client: httpx.AsyncClient, settings: IngestSettings
) -> None:
    examples = [orjson.loads(body) for info, body in blocks("json") if not info]
    from services.ingest.domain.validation import EVENT_TYPES

    assert sorted(e["type"] for e in examples) == sorted(EVENT_TYPES)
    for example in examples:
        source = source_of(example)
        answer = await client.post(
            "/api/v1/events", json=example, headers=headers(settings, integrator(source, *KEY_UNITS[source]))
        )
        assert answer.status_code == 200, (example["type"], answer.text)
        assert answer.json()["accepted"] == 1 and answer.json()["rejected"] == [], answer.text
    requests = [orjson.loads(body) for info, body in blocks("json") if info == "request"]
    answers = [orjson.loads(body) for info, body in blocks("json") if info == "answer"]
    assert len(requests) == len(answers) == 1
    for request, documented in zip(requests, answers, strict=True):
        source = source_of(request)
        answer = await client.post(
            "/api/v1/events", json=request, headers=headers(settings, integrator(source, *KEY_UNITS[source]))
        )
        got = answer.json()
        assert answer.status_code == 200
        assert {k: v for k, v in got.items() if k != "rating_codes"} == {
            k: v for k, v in documented.items() if k != "rating_codes"
        }
        assert sorted(got["rating_codes"]) == sorted(documented["rating_codes"])
        assert all(len(code) == 8 for code in got["rating_codes"].values())


def test_the_documented_reasons_are_the_codes() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split("<!-- reasons:start -->\n", 1)[1].split("\n<!-- reasons:end -->", 1)[0]
    assert documented == reasons.markdown_table(), "regenerate: .venv/bin/python -m services.ingest.domain.reasons"
