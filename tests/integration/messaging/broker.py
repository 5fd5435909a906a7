"""The broker's side of the messaging tests: dropping one client connection as a network failure
or a node restart would."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_ENV = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"}


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], env=_ENV, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def skip_without_rabbitmqctl() -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot drop a connection on the broker")


def drop_connection(name: str) -> None:
    """The broker closes the client connection named ``name`` (a network failure, a node restart)."""
    for line in rabbitmqctl("list_connections", "--no-table-headers", "pid", "client_properties").splitlines():
        pid, _, properties = line.partition("\t")
        if f'"{name}"' in properties:
            rabbitmqctl("close_connection", pid.strip(), "test: connection dropped")
            return
    raise AssertionError(f"no broker connection named {name!r}")
