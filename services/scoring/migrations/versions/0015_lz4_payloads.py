"""lz4 for the large values written at every refresh: score payloads and outbox bodies

A refresh that moves every office rewrites ~800 score payloads (≈ 13 KB of JSON each, indicator
explanations included) and ~2.4 MB of announcements into the outbox; PostgreSQL compresses each
value out of line, with pglz by default. lz4 does it in a fraction of the CPU (measured: the
whole-country month's refresh 0.46–0.52 s → 0.34–0.37 s of wall time). Only where the server
was built with lz4 (PostgreSQL ≥ 14, the Debian and operator images are): elsewhere the
columns keep pglz and nothing fails. Existing values keep their compression until rewritten.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COLUMNS = (("score", "payload"), ("outbox", "body"))
_HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def _compress_with(method: str) -> None:
    if not op.get_bind().execute(sa.text(_HAS_LZ4)).scalar():
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE scoring.{table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _compress_with("lz4")


def downgrade() -> None:
    _compress_with("pglz")
