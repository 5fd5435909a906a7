"""Reading PostgreSQL's JSON plans in tests."""

from __future__ import annotations

from typing import Any

import orjson


def node_loops(explained: str) -> list[tuple[str, int]]:
    """Every node of ``EXPLAIN (ANALYZE, FORMAT JSON)`` output, with how many times it ran."""

    def walk(node: dict[str, Any]) -> list[tuple[str, int]]:
        return [(node["Node Type"], int(node["Actual Loops"]))] + [x for c in node.get("Plans", []) for x in walk(c)]

    return walk(orjson.loads(explained)[0]["Plan"])
