"""JSON parameters written through the engine: orjson, and the standard library where orjson refuses."""

from __future__ import annotations

import json

import pytest

from shared.db import json_text


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.0, "b": [1, None, "Thuế"], "c": {"d": True}},
        {1: "int keys become text, as the standard library does"},
        {"huge": 123456789012345678901234567890},  # beyond 64 bits: orjson refuses, json writes it
    ],
)
def test_json_text_reads_back_as_the_standard_library_writes(value: object) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_what_neither_can_write_still_fails() -> None:
    with pytest.raises(TypeError):
        json_text({"x": object()})
