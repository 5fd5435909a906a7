"""``./sqi up``: the whole platform on one machine, in the foreground, stopped cleanly."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.settings import CommonSettings
from sqi_cli.console import Console, LogFollower
from sqi_cli.infra import ensure_pdf_typesetting, ensure_postgres, ensure_rabbitmq
from sqi_cli.migrate import migrate
from sqi_cli.platform import ROOT, Platform, PlatformExited
from sqi_cli.preflight import connection_shortfall

DEMO_USERS = (
    ("lanhdao", "leader", "CT", "Lãnh đạo Cục Thuế / leadership"),
    ("truong-p01", "unit_head", "P01", "Trưởng Thuế TP Hà Nội / head of Hà Nội office"),
    ("quantri", "admin", "CT", "Quản trị / admin"),
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def log_directory() -> Path:
    """Where this run's logs go: ``$SQI_LOG_DIR``, else ``.sqi/logs/<UTC time>`` in the repository."""
    configured = os.environ.get("SQI_LOG_DIR")
    if configured:
        return Path(configured)
    return ROOT / ".sqi" / "logs" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def status_line(started: float, platform: Platform, follower: LogFollower) -> str:
    up_for = int(time.monotonic() - started)
    running = sum(1 for _, p in platform.processes if p.poll() is None)
    line = f"sqi: up {up_for // 3600}:{up_for // 60 % 60:02d}:{up_for % 60:02d} · {running} processes"
    if follower.simulator_status:
        line += f" · simulator: {follower.simulator_status}"
    return line + f" · {follower.shown} warnings/errors shown"


def run_up(*, port: int, simulate: bool) -> int:
    settings = CommonSettings()
    ensure_postgres(settings.database_url)
    ensure_rabbitmq(settings.amqp_url)
    ensure_pdf_typesetting()
    _say("sqi: migrating…")
    migrate(settings)
    log_dir = log_directory()
    platform = Platform(port, log_dir=log_dir)
    if shortfall := connection_shortfall(
        settings.database_url, needed=platform.connections_needed(settings.db_pool_size)
    ):
        _say(f"sqi: warning: {shortfall}")
    console = Console()
    follower = LogFollower(log_dir, console)
    # Both, explicitly: a process started in the background by a script inherits SIGINT
    # ignored, and Ctrl-C (or kill -INT) must still stop everything.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        platform.start()
        _say(f"sqi: full logs of every process (JSON) in {log_dir}")
        follower.start()
        if not platform.wait_ready():
            _say("sqi: the platform did not become ready in time")
            return 1
        base = platform.gateway
        gateway_settings = GatewaySettings()
        _say(f"\nSQI is ready.\n  Trang công khai / public page: {base}/")
        _say(f"  Bảng điều khiển / dashboard: {base}/dashboard")
        hours = gateway_settings.jwt_max_lifetime_seconds // 3600
        _say(f"  API docs: {base}/docs\n  Đánh giá / rate: {base}/rate\n  Demo tokens ({hours} h):")
        for sub, role, unit, label in DEMO_USERS:
            token = mint_dev_token(gateway_settings, sub=sub, role=role, unit=unit)
            _say(f"    {label} [{role} @ {unit}]:\n      {token}")
        if simulate and find_spec("sim.cli"):
            platform.env["SQI_ADMIN_TOKEN"] = mint_dev_token(gateway_settings, sub="simulator", role="admin", unit="CT")
            # A few months of history at a twentieth of the country's volume, then a gentle live stream.
            history = ["--months", "3", "--scale", "0.05"]
            platform.spawn("simulator", [sys.executable, "-m", "sim.cli", "--gateway", base, *history, "--rate", "20"])
        _say(f"\nLogs: {log_dir}\nCtrl-C stops everything.\n")
        started = time.monotonic()
        while True:
            time.sleep(1)
            # The simulator may finish or fail on its own; the platform's processes may not.
            platform.check_alive(except_for=("simulator",))
            console.status(status_line(started, platform, follower))
    except KeyboardInterrupt:
        console.end_status()
        _say("sqi: stopping…")
        return 0
    except PlatformExited as exc:
        console.end_status()
        _say(f"sqi: {exc}; stopping (its log: {log_dir / (str(exc).split()[0] + '.log')})")
        return 1
    finally:
        platform.stop()
        follower.stop()
        _say(f"sqi: stopped; logs kept in {log_dir}")
