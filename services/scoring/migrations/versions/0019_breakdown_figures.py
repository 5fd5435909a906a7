"""score payloads: the breakdown's figures only; the API adds the methodology's words on read

A refresh under a stream rewrites every office's score row. Each payload held the full breakdown
(≈ 11–13 KB of JSON: group and indicator names, how each indicator was computed); it now holds
the figures (≈ 1.2 KB) in the positional arrays of ``services.scoring.domain.breakdown``, and the
API rebuilds the words from the methodology that scored them. This rewrites the stored payloads
in place, in SQL (no application code: a migration must not change when that code does). Their
digests then differ from what a refresh computes, so each period's next refresh rewrites and
announces its rows once, with the same figures.

Downgrade: every scored period is marked dirty; the previous code recomputes each full breakdown.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_FIGURES = """
UPDATE scoring.score SET payload = jsonb_build_object(
    'unit_name', payload -> 'unit_name',
    'level', payload -> 'level',
    'parent_code', payload -> 'parent_code',
    'methodology_version', payload -> 'methodology_version',
    'groups', coalesce((
        SELECT jsonb_agg(jsonb_build_array(g -> 'id', g -> 'points', coalesce((
            SELECT jsonb_agg(jsonb_build_array(
                i -> 'id', i -> 'numerator', i -> 'denominator', i -> 'ratio', i -> 'points',
                i -> 'max_points', i -> 'applicable', i -> 'inherited') ORDER BY k)
            FROM jsonb_array_elements(g -> 'indicators') WITH ORDINALITY AS ind(i, k)
        ), '[]'::jsonb)) ORDER BY j)
        FROM jsonb_array_elements(payload -> 'groups') WITH ORDINALITY AS grp(g, j)
    ), '[]'::jsonb))
WHERE jsonb_typeof(payload -> 'groups' -> 0) = 'object'
"""

_MARK_SCORED = """
INSERT INTO scoring.dirty_period (period) SELECT DISTINCT period FROM scoring.score
ON CONFLICT (period) DO UPDATE SET marked_at = now()
"""


def upgrade() -> None:
    op.execute(_FIGURES)


def downgrade() -> None:
    op.execute(_MARK_SCORED)
