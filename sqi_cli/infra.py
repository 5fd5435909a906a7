"""Finding PostgreSQL and RabbitMQ, or starting local ones when none answers (ci.md)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import asyncpg

from sqi_cli.preflight import Unreachable

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(host, port, 0.5):
            return True
        time.sleep(0.2)
    return False


def _say(message: str) -> None:
    print(f"sqi: {message}", file=sys.stderr, flush=True)


def _apt_install(*packages: str) -> None:
    names = " ".join(packages)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unreachable(f"{names} is not installed and cannot be installed here (needs root and apt-get)")
    _say(f"installing {names} with apt-get…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def ensure_postgres(url: str) -> None:
    parsed = urlparse(url.replace("+asyncpg", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5432
    if reachable(host, port):
        return
    if host not in LOOPBACK:
        raise Unreachable(f"PostgreSQL at {host}:{port} does not answer — start it or set SQI_DATABASE_URL")
    if not shutil.which("pg_ctlcluster"):
        _apt_install("postgresql")
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise Unreachable("no PostgreSQL cluster found under /etc/postgresql — install one or set SQI_DATABASE_URL")
    _say(f"starting PostgreSQL {versions[-1]}…")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    if not _wait(host, port, 30):
        raise Unreachable(f"PostgreSQL at {host}:{port} did not start — see its log, or set SQI_DATABASE_URL")


def ensure_rabbitmq(url: str) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5672
    if reachable(host, port):
        return
    if host not in LOOPBACK:
        raise Unreachable(f"RabbitMQ at {host}:{port} does not answer — start it or set SQI_AMQP_URL")
    if not shutil.which("rabbitmq-server"):
        _apt_install("rabbitmq-server")
    _say("starting RabbitMQ…")
    # Keep every listener (epmd included) on loopback.
    env = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1"}
    subprocess.run(["rabbitmq-server", "-detached"], check=False, env=env)
    if not _wait(host, port, 60):
        raise Unreachable(f"RabbitMQ at {host}:{port} did not start — see its log, or set SQI_AMQP_URL")


async def ensure_database(dsn: str) -> None:
    """Create the database named in the DSN when it does not exist yet."""
    parsed = urlparse(dsn)
    name = parsed.path.lstrip("/")
    admin_dsn = parsed._replace(path="/postgres").geturl()
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def ensure_chromium() -> str | None:
    """The browser tests drive Debian's Chromium; install it when missing and possible."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path:
        return path
    try:
        _apt_install("chromium")
    except (Unreachable, subprocess.CalledProcessError) as exc:
        _say(f"Chromium unavailable, browser tests will be skipped: {exc}")
        return None
    return shutil.which("chromium")


# What the PDF briefing needs from Debian: Pango for WeasyPrint and fonts with every Vietnamese
# glyph (DejaVu Sans and its condensed cut); the tests also use poppler-utils (pdftoppm) to turn
# a page into a picture.
PDF_PACKAGES = {
    "libpango-1.0-0": lambda: _has_library("pango-1.0"),
    "libpangoft2-1.0-0": lambda: _has_library("pangoft2-1.0"),
    "fonts-dejavu-core": lambda: os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "fonts-dejavu-extra": lambda: os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf"),
}
PDF_TEST_PACKAGES = {"poppler-utils": lambda: shutil.which("pdftoppm") is not None}


def _has_library(name: str) -> bool:
    import ctypes.util

    return ctypes.util.find_library(name) is not None


def ensure_pdf_typesetting(*, for_tests: bool = False) -> bool:
    """WeasyPrint's Pango and the Vietnamese fonts of the PDF briefing; install what is missing."""
    wanted = {**PDF_PACKAGES, **(PDF_TEST_PACKAGES if for_tests else {})}
    missing = [package for package, present in wanted.items() if not present()]
    if not missing:
        return True
    try:
        _apt_install(*missing)
    except (SystemExit, subprocess.CalledProcessError) as exc:
        _say(f"PDF briefing unavailable (missing {' '.join(missing)}): {exc}")
        return False
    return True
