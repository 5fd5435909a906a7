"""The ``./sqi`` command (cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqi_cli.preflight import (
    EXIT_CODES_HELP,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    Unreachable,
    require_gateway,
    require_postgres,
    require_rabbitmq,
    unknown_units,
)

ROOT = Path(__file__).resolve().parents[1]


def gateway_url() -> str:
    """Where operator tools find the running platform."""
    return os.environ.get("SQI_GATEWAY_URL", "http://127.0.0.1:8000")


def _refuse(command: str, message: str) -> int:
    print(f"sqi {command}: {message}", file=sys.stderr)
    return EXIT_REFUSED


def cmd_up(args: argparse.Namespace) -> int:
    from sqi_cli.up import run_up

    return run_up(port=args.port, simulate=not args.no_sim)


def cmd_migrate(_: argparse.Namespace) -> int:
    from shared.settings import CommonSettings
    from sqi_cli.infra import ensure_postgres, ensure_rabbitmq
    from sqi_cli.migrate import migrate

    settings = CommonSettings()
    ensure_postgres(settings.database_url)
    ensure_rabbitmq(settings.amqp_url)
    migrate(settings)
    print("migrated", file=sys.stderr)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from shared.settings import CommonSettings
    from sqi_cli.infra import ensure_chromium, ensure_pdf_typesetting, ensure_postgres, ensure_rabbitmq

    settings = CommonSettings()
    ensure_postgres(settings.database_url)
    ensure_rabbitmq(settings.amqp_url)
    chromium = ensure_chromium()
    ensure_pdf_typesetting(for_tests=True)
    env = {**os.environ, "SQI_CHROMIUM": chromium or ""}
    bin_dir = Path(sys.executable).parent
    steps = [
        ("ruff", [str(bin_dir / "ruff"), "check", "."]),
        ("import contracts", [str(bin_dir / "lint-imports")]),
        ("mypy", [str(bin_dir / "mypy"), "shared", "gateway", "services", "sim", "sqi_cli"]),
    ]
    for name, argv in steps:
        print(f"== {name}", flush=True)
        if subprocess.run(argv, cwd=ROOT, env=env).returncode != 0:
            print(f"{name} failed", file=sys.stderr)
            return 1
    print("== pytest", flush=True)
    return subprocess.run([sys.executable, "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env).returncode


def cmd_key(args: argparse.Namespace) -> int:
    import re

    from gateway.keys import create_key
    from gateway.settings import GatewaySettings
    from shared.db import create_engine, session_factory

    units = [u.strip() for u in args.units.split(",") if u.strip()]
    if not units:
        return _refuse("key create", "--units names no unit")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", args.source):
        return _refuse("key create", "--source must be lower-case letters, digits, '.', '_' or '-' (e.g. tms-p01)")
    if problem := unknown_units(units, gateway_url()):
        return _refuse("key create", problem)
    settings = GatewaySettings()
    require_postgres(settings.database_url)

    async def run() -> str:
        engine = create_engine(settings, application_name="sqi-cli")
        try:
            async with session_factory(engine)() as session, session.begin():
                issued = await create_key(
                    session, source=args.source, units=units, created_by=f"cli:{os.environ.get('USER', 'root')}"
                )
            return issued.key
        finally:
            await engine.dispose()

    print(asyncio.run(run()))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from gateway.jwt_auth import TokenError, mint_dev_token
    from gateway.settings import GatewaySettings

    if problem := unknown_units([args.unit], gateway_url()):
        return _refuse("token", problem)
    try:
        print(mint_dev_token(GatewaySettings(), sub=args.sub, role=args.role, unit=args.unit))
    except TokenError as exc:
        return _refuse("token", str(exc))
    return 0


def ensure_admin_token(sub: str) -> None:
    """Tools that act through the gateway as admin get a development token unless one is given."""
    from gateway.jwt_auth import mint_dev_token
    from gateway.settings import GatewaySettings

    if not os.environ.get("SQI_ADMIN_TOKEN"):
        os.environ["SQI_ADMIN_TOKEN"] = mint_dev_token(GatewaySettings(), sub=sub, role="admin", unit="CT")


def cmd_simulate(args: argparse.Namespace) -> int:
    from sim.cli import main as sim_main

    if "--out" not in args.rest and not {"-h", "--help"} & set(args.rest):
        require_gateway(_option(args.rest, "--gateway") or os.environ.get("SQI_GATEWAY") or gateway_url())
        ensure_admin_token("simulator")
    return int(sim_main(args.rest) or 0)


def cmd_recompute(args: argparse.Namespace) -> int:
    from shared.settings import CommonSettings

    settings = CommonSettings()
    gateway = _option(args.rest, "--gateway") or gateway_url()
    # Everything the replay needs, checked before it starts (else: a traceback minutes later).
    require_postgres(settings.database_url)
    require_rabbitmq(settings.amqp_url)
    require_gateway(gateway)
    print(f"sqi recompute: database, broker and gateway ({gateway}) answer; replaying the raw log…", file=sys.stderr)
    from services.scoring.recompute_cli import main as recompute_main  # the scoring service's own tool

    ensure_admin_token("recompute")
    return int(recompute_main(args.rest) or 0)


def _option(argv: list[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.run import main as bench_main

    return int(bench_main(args.rest) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./sqi", description="SQI — the service-quality index of the tax administration", epilog=EXIT_CODES_HELP
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole platform (with simulated data unless --no-sim)")
    up.add_argument("--no-sim", action="store_true")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(func=cmd_up)
    sub.add_parser("migrate", help="schemas, broker topology and reference data").set_defaults(func=cmd_migrate)
    test = sub.add_parser("test", help="the whole test suite (what CI runs)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    key = sub.add_parser("key", help="integrator API keys").add_subparsers(dest="key_command", required=True)
    create = key.add_parser("create", help="create a key and print it once")
    create.add_argument("--source", required=True)
    create.add_argument("--units", required=True, help="CODE[,CODE…]: units (with subtrees) it may report for")
    create.set_defaults(func=cmd_key)
    token = sub.add_parser("token", help="a staff JWT signed with the local development key")
    token.add_argument("--sub", required=True)
    token.add_argument("--role", required=True)
    token.add_argument("--unit", required=True)
    token.set_defaults(func=cmd_token)
    for name, func, text in (
        ("simulate", cmd_simulate, "feed simulated history and live activity"),
        ("recompute", cmd_recompute, "rebuild every score from the raw log and compare"),
        ("bench", cmd_bench, "the benchmarks"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=func)
    # Commands that hand their options on (pytest's, the simulator's …) take whatever argparse
    # does not know; REMAINDER alone misses options that come first (`./sqi simulate --months 1`).
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command == "test":
            args.pytest_args = [*unknown, *args.pytest_args]
        elif hasattr(args, "rest"):
            args.rest = [*unknown, *args.rest]
        else:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except Unreachable as exc:
        print(f"sqi: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
