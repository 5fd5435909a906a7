"""Text that people and other systems typed, as the pages and the briefing show it."""

from __future__ import annotations

from typing import Any

# The explicit direction controls: embeddings and overrides (U+202A–U+202E) and isolates
# (U+2066–U+2069). Vietnamese text never needs one; in a unit's name a right-to-left override
# turned the text after it around on the same line ("2025" read "5202", a score "93,45" "54,39").
DIRECTION_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def shown(value: Any) -> Any:
    """``value`` as written into a page: a string without explicit direction controls (the
    templates' ``finalize``, so every value printed gets it); anything else as it is."""
    return value.translate(DIRECTION_CONTROLS) if isinstance(value, str) else value
