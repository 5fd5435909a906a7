"""The platform's processes on one machine: each API and worker, and the gateway in front.

Used by ``./sqi up``, the end-to-end tests and the benchmarks, so all three run the very
same commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "scoring", "feedback", "reporting")
GATEWAY_KEEP_ALIVE_S = 75  # as in k8s/base/gateway.yaml


def uvicorn_command(python: str) -> list[str]:
    """An app factory under uvicorn on loopback (the port and the app follow)."""
    return [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--log-level", "warning"]


def gateway_command(python: str, port: int) -> list[str]:
    """The gateway as ``./sqi up`` runs it. It decides the client address itself (citizen limits):
    no proxy headers. Its idle connections outlive its clients' (k8s/base/gateway.yaml says why)."""
    return [
        *uvicorn_command(python),
        "--no-proxy-headers",
        "--timeout-keep-alive",
        str(GATEWAY_KEEP_ALIVE_S),
        "--port",
        str(port),
        "gateway.app:create_app",
    ]


def worker_names(service: str, replicas: int) -> list[str]:
    """The process names of a service's worker replicas: ``scoring-worker``, ``scoring-worker-2``, …"""
    return [f"{service}-worker" if i == 0 else f"{service}-worker-{i + 1}" for i in range(replicas)]


class PlatformExited(RuntimeError):
    """One of the platform's processes ended on its own."""


class Platform:
    """Starts each process in its own process group and stops them all, cleanly."""

    def __init__(
        self,
        port: int,
        *,
        services: Sequence[str] = SERVICES,
        workers: Sequence[str] | None = None,
        replicas: Mapping[str, int] | None = None,
        log_dir: Path | None = None,
        worker_http_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.port = port
        # With a log directory every process writes stdout and stderr to <log_dir>/<name>.log.
        self.log_dir = log_dir
        self.services = tuple(services)
        self.workers = tuple(workers if workers is not None else services)
        # Worker processes per service (default one): scoring's workers share the work through
        # Postgres (dossiers claimed SKIP LOCKED, periods leased), so a second one uses a second core.
        self.replicas = dict(replicas or {})
        # Worker process (by name, e.g. "scoring-worker-2") → the port of its /healthz, /readyz and
        # /metrics (SQI_WORKER_HTTP_PORT; none by default: the APIs' block of ports is all
        # ./sqi up reserves).
        self.worker_http_ports = dict(worker_http_ports or {})
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = {**os.environ, **{f"SQI_{name.upper()}_URL": self.url_of(name) for name in SERVICES}}

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port + SERVICES.index(service) + 1}"

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        own = {"SQI_WORKER_HTTP_PORT": str(self.worker_http_ports[name])} if name in self.worker_http_ports else {}
        if self.log_dir is None:
            process = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **own}, start_new_session=True)
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / f"{name}.log").open("ab") as log:
                env = {**self.env, **own, "PYTHONUNBUFFERED": "1"}
                process = subprocess.Popen(
                    argv, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
                )
        self.processes.append((name, process))
        return process

    def commands(self) -> list[tuple[str, list[str]]]:
        """Each process :meth:`start` spawns, by name: the APIs, the workers (with replicas), the gateway."""
        python = sys.executable
        uvicorn = uvicorn_command(python)
        commands: list[tuple[str, list[str]]] = []
        for name in self.services:
            if find_spec(f"services.{name}.api.app"):
                port = self.port + SERVICES.index(name) + 1
                commands.append((f"{name}-api", [*uvicorn, "--port", str(port), f"services.{name}.api.app:create_app"]))
        for name in self.workers:
            if find_spec(f"services.{name}.worker"):
                for label in worker_names(name, self.replicas.get(name, 1)):
                    commands.append((label, [python, "-m", f"services.{name}.worker"]))
        commands.append(("gateway", gateway_command(python, self.port)))
        return commands

    def start(self) -> None:
        for name, argv in self.commands():
            self.spawn(name, argv)

    def connections_needed(self, pool_size: int) -> int:
        # Each process keeps its pool; a worker's relay and reporting's API also LISTEN on one more.
        return len(self.commands()) * (pool_size + 1)

    def ready_urls(self) -> list[str]:
        # With every service up the gateway's /readyz checks them all; with a subset, each one.
        if set(self.services) == set(SERVICES):
            return [f"{self.gateway}/readyz"]
        return [f"{self.url_of(s)}/readyz" for s in self.services] + [f"{self.gateway}/healthz"]

    def wait_ready(self, seconds: float = 60) -> bool:
        pending = self.ready_urls()
        deadline = time.monotonic() + seconds
        while pending and time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(pending[0], timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return not pending

    def check_alive(self, *, except_for: Sequence[str] = ()) -> None:
        for name, process in self.processes:
            if name not in except_for and process.poll() is not None:
                raise PlatformExited(f"{name} exited with status {process.returncode}")

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes}

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
