"""The gateway's own schema: integrator API keys (hashed) and the audit of admin changes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db import service_metadata

SCHEMA = "gateway"
metadata = service_metadata(SCHEMA)

api_key = Table(
    "api_key",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("secret_sha256", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("units", ARRAY(Text), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("request_id", Text, nullable=False),
)
