"""What people's and other systems' text must not carry, one definition for every service: their
input checks refuse it, reporting's pages strip it from what was stored before the checks."""

from __future__ import annotations

import re

# The explicit direction controls: embeddings and overrides (U+202A–U+202E) and isolates
# (U+2066–U+2069). Vietnamese text never needs one; printed, an override turns the rest of its
# line around ("2025" reads "5202", a score "93,45" "54,39").
DIRECTION_CONTROLS = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
DIRECTION_CONTROLS_NAMED = "direction controls (U+202A–U+202E, U+2066–U+2069)"

# The one control-character rule (ký tự điều khiển) of ingest and feedback: C0 controls, DEL and
# the C1 controls (U+0080–U+009F, which mis-decoded Windows-1252 text is full of and no Vietnamese
# text needs), and the direction controls. NUL cannot even be stored (PostgreSQL refuses it).
# Free text (a comment, a petition, a supplement's reason) may keep tab and line breaks.
_DIRECTION = re.escape(DIRECTION_CONTROLS)
CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{_DIRECTION}]")
CONTROL_IN_TEXT = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_DIRECTION}]")
CONTROLS_NAMED = "control characters (U+0000–U+001F, U+007F–U+009F)"
