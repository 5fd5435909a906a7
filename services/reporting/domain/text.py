"""Text that people and other systems typed, as the pages and the briefing show it."""

from __future__ import annotations

from typing import Any

from shared.text import DIRECTION_CONTROLS

_STRIPPED = dict.fromkeys(map(ord, DIRECTION_CONTROLS))


def shown(value: Any) -> Any:
    """``value`` as written into a page: a string without explicit direction controls (stored
    before the services refused them at entry; the templates' ``finalize``, so every value
    printed gets it); anything else as it is."""
    return value.translate(_STRIPPED) if isinstance(value, str) else value
