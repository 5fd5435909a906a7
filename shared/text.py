"""What people's and other systems' text must not carry, one definition for every service: their
input checks refuse it, reporting's pages strip it from what was stored before the checks."""

from __future__ import annotations

# The explicit direction controls: embeddings and overrides (U+202A–U+202E) and isolates
# (U+2066–U+2069). Vietnamese text never needs one; printed, an override turns the rest of its
# line around ("2025" reads "5202", a score "93,45" "54,39").
DIRECTION_CONTROLS = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
DIRECTION_CONTROLS_NAMED = "direction controls (U+202A–U+202E, U+2066–U+2069)"
