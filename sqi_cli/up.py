"""``./sqi up``: the whole platform on one machine, in the foreground, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import httpx

from gateway.jwt_auth import mint_dev_token
from gateway.settings import GatewaySettings
from shared.settings import CommonSettings
from sqi_cli.infra import ensure_postgres, ensure_rabbitmq
from sqi_cli.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "scoring", "feedback", "reporting")
DEMO_USERS = (
    ("lanhdao", "leader", "CT", "Lãnh đạo Cục Thuế / leadership"),
    ("truong-p01", "unit_head", "P01", "Trưởng Thuế TP Hà Nội / head of Hà Nội office"),
    ("quantri", "admin", "CT", "Quản trị / admin"),
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Platform:
    """Starts every process in its own process group and stops them all on exit."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = {
            **os.environ,
            **{f"SQI_{name.upper()}_URL": f"http://127.0.0.1:{port + i + 1}" for i, name in enumerate(SERVICES)},
        }

    def spawn(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.processes.append((name, process))

    def start(self) -> None:
        python = sys.executable
        uvicorn = [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--log-level", "warning"]
        for i, name in enumerate(SERVICES):
            if find_spec(f"services.{name}.api.app"):
                self.spawn(
                    f"{name}-api", [*uvicorn, "--port", str(self.port + i + 1), f"services.{name}.api.app:create_app"]
                )
            if find_spec(f"services.{name}.worker"):
                self.spawn(f"{name}-worker", [python, "-m", f"services.{name}.worker"])
        # The gateway decides the client address itself (citizen limits): no proxy headers.
        self.spawn("gateway", [*uvicorn, "--no-proxy-headers", "--port", str(self.port), "gateway.app:create_app"])

    def wait_ready(self, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"sqi: {name} exited with status {process.returncode}")

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_up(*, port: int, simulate: bool) -> int:
    settings = CommonSettings()
    ensure_postgres(settings.database_url)
    ensure_rabbitmq(settings.amqp_url)
    _say("sqi: migrating…")
    migrate(settings)
    platform = Platform(port)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
        if not platform.wait_ready():
            _say("sqi: the platform did not become ready in time")
            return 1
        base = f"http://127.0.0.1:{port}"
        gateway_settings = GatewaySettings()
        _say(f"\nSQI is ready.\n  Trang công khai / public page: {base}/")
        _say(f"  Bảng điều khiển / dashboard: {base}/dashboard")
        _say(f"  API docs: {base}/docs\n  Đánh giá / rate: {base}/rate\n  Demo tokens (12 h):")
        for sub, role, unit, label in DEMO_USERS:
            token = mint_dev_token(gateway_settings, sub=sub, role=role, unit=unit)
            _say(f"    {label} [{role} @ {unit}]:\n      {token}")
        sim = None
        if simulate and find_spec("sim.cli"):
            admin = mint_dev_token(gateway_settings, sub="simulator", role="admin", unit="CT")
            sim_env = {**os.environ, "SQI_ADMIN_TOKEN": admin}
            sim = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sim.cli",
                    "--gateway",
                    base,
                    "--months",
                    "3",
                    "--scale",
                    "0.05",
                    "--then-live",
                    "--rate",
                    "20",
                ],
                cwd=ROOT,
                env=sim_env,
                start_new_session=True,
            )
            platform.processes.append(("simulator", sim))
        _say("\nCtrl-C stops everything.")
        while True:
            time.sleep(1)
            if sim is None or sim.poll() is None:
                platform.check_alive()
    except KeyboardInterrupt:
        _say("\nsqi: stopping…")
        return 0
    finally:
        platform.stop()
        _say("sqi: stopped")
