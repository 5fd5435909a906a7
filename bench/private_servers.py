"""A private PostgreSQL and RabbitMQ for chaos runs: restarting them disturbs nobody else.

Both come from the machine's own Debian binaries, with their own data folder under ``/tmp``,
their own ports (loopback only, epmd too) and, for RabbitMQ, their own node name — the way
``pytest-rabbitmq`` and ``pg_ctl`` with a temporary data directory do it. Started in about a
second (PostgreSQL) and five (RabbitMQ); stopped and removed afterwards.

As root, PostgreSQL runs as the ``postgres`` user (initdb refuses root) and RabbitMQ's own
wrapper switches to ``rabbitmq``; the folders are handed to those users.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqi_cli.infra import reachable
from sqi_cli.scratch import free_port_block


@dataclass(frozen=True)
class PrivateServers:
    root: Path
    pg_port: int
    amqp_port: int
    node: str

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/sqi"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    # -- PostgreSQL ------------------------------------------------------------------------------
    def _pg(self, *args: str) -> None:
        _as("postgres", [str(_pg_bin() / "pg_ctl"), "-D", str(self.root / "pg" / "data"), *args])

    def _pg_options(self) -> list[str]:
        opts = f"-p {self.pg_port} -k {self.root / 'pg'} -c listen_addresses=127.0.0.1 -c fsync=on"
        return ["-o", opts, "-l", str(self.root / "pg" / "log"), "-w"]

    def restart_database(self) -> float:
        """``pg_ctl restart -m fast``: every connection is cut, the server is back in about a second."""
        t0 = time.monotonic()
        self._pg("restart", "-m", "fast", *self._pg_options())
        _wait_port(self.pg_port, 60)
        return time.monotonic() - t0

    # -- RabbitMQ --------------------------------------------------------------------------------
    def rabbit_env(self) -> dict[str, str]:
        r = self.root / "rmq"
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(self.amqp_port + 1),
            "RABBITMQ_MNESIA_BASE": str(r / "mnesia"),
            "RABBITMQ_LOG_BASE": str(r / "log"),
            "RABBITMQ_CONFIG_FILE": str(r / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(r / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(r / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self.rabbit_env(), check=True, capture_output=True)

    def restart_broker(self) -> float:
        """``rabbitmqctl stop_app`` then ``start_app``: every connection and channel is closed."""
        t0 = time.monotonic()
        self._ctl("stop_app")
        self._ctl("start_app")
        _wait_port(self.amqp_port, 60)
        return time.monotonic() - t0


def _pg_bin() -> Path:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    return Path(versions[-1]).parent


def _as(user: str, argv: list[str]) -> None:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", user, "--", *argv]
    subprocess.run(argv, check=True, capture_output=True)


def _wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable("127.0.0.1", port, 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {seconds:.0f} s")


def available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) and shutil.which("rabbitmq-server") is not None


@contextmanager
def private_servers() -> Iterator[PrivateServers]:
    """Start both; stop them and remove their folder whatever happens."""
    base = free_port_block(4, start=39_000)
    root = Path(tempfile.mkdtemp(prefix="sqi-private-"))
    root.chmod(0o755)
    servers = PrivateServers(root, pg_port=base, amqp_port=base + 2, node=f"sqi{base}@localhost")
    pg_started = rabbit_started = False
    try:
        (root / "pg").mkdir()
        (root / "rmq").mkdir()
        (root / "rmq" / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            shutil.chown(root / "pg", "postgres")
            for path in (root / "rmq", root / "rmq" / "enabled_plugins"):
                shutil.chown(path, "rabbitmq")
        _as("postgres", [str(_pg_bin() / "initdb"), "-D", str(root / "pg" / "data"), "-A", "trust", "-U", "postgres"])
        servers._pg("start", *servers._pg_options())
        pg_started = True
        _wait_port(servers.pg_port, 30)
        subprocess.run(["rabbitmq-server", "-detached"], env=servers.rabbit_env(), check=True, capture_output=True)
        rabbit_started = True
        _wait_port(servers.amqp_port, 60)
        yield servers
    finally:
        if rabbit_started:
            subprocess.run(["rabbitmqctl", "-n", servers.node, "stop"], env=servers.rabbit_env(), capture_output=True)
        if pg_started:
            servers._pg("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)
