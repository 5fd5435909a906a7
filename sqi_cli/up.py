"""``./sqi up``: the whole platform on one machine, in the foreground, stopped cleanly."""

from __future__ import annotations

import signal
import sys
import time
from importlib.util import find_spec

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.settings import CommonSettings
from sqi_cli.infra import ensure_pdf_typesetting, ensure_postgres, ensure_rabbitmq
from sqi_cli.migrate import migrate
from sqi_cli.platform import Platform, PlatformExited

DEMO_USERS = (
    ("lanhdao", "leader", "CT", "Lãnh đạo Cục Thuế / leadership"),
    ("truong-p01", "unit_head", "P01", "Trưởng Thuế TP Hà Nội / head of Hà Nội office"),
    ("quantri", "admin", "CT", "Quản trị / admin"),
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_up(*, port: int, simulate: bool) -> int:
    settings = CommonSettings()
    ensure_postgres(settings.database_url)
    ensure_rabbitmq(settings.amqp_url)
    ensure_pdf_typesetting()
    _say("sqi: migrating…")
    migrate(settings)
    platform = Platform(port)
    # Both, explicitly: a process started in the background by a script inherits SIGINT
    # ignored, and Ctrl-C (or kill -INT) must still stop everything.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        platform.start()
        if not platform.wait_ready():
            _say("sqi: the platform did not become ready in time")
            return 1
        base = platform.gateway
        gateway_settings = GatewaySettings()
        _say(f"\nSQI is ready.\n  Trang công khai / public page: {base}/")
        _say(f"  Bảng điều khiển / dashboard: {base}/dashboard")
        _say(f"  API docs: {base}/docs\n  Đánh giá / rate: {base}/rate\n  Demo tokens (12 h):")
        for sub, role, unit, label in DEMO_USERS:
            token = mint_dev_token(gateway_settings, sub=sub, role=role, unit=unit)
            _say(f"    {label} [{role} @ {unit}]:\n      {token}")
        if simulate and find_spec("sim.cli"):
            platform.env["SQI_ADMIN_TOKEN"] = mint_dev_token(gateway_settings, sub="simulator", role="admin", unit="CT")
            # A few months of history at a twentieth of the country's volume, then a gentle live stream.
            history = ["--months", "3", "--scale", "0.05"]
            platform.spawn("simulator", [sys.executable, "-m", "sim.cli", "--gateway", base, *history, "--rate", "20"])
        _say("\nCtrl-C stops everything.")
        while True:
            time.sleep(1)
            # The simulator may finish or fail on its own; the platform's processes may not.
            platform.check_alive(except_for=("simulator",))
    except KeyboardInterrupt:
        _say("\nsqi: stopping…")
        return 0
    except PlatformExited as exc:
        _say(f"sqi: {exc}; stopping")
        return 1
    finally:
        platform.stop()
        _say("sqi: stopped")
