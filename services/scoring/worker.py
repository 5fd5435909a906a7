"""``python -m services.scoring.worker``: consumer, outbox relay and score refresher."""

from __future__ import annotations

import asyncio

from services.scoring.bootstrap import SERVICE, bootstrap, worker_parts
from shared.telemetry import configure_telemetry
from shared.worker import run_worker


async def _health_server(port: int, stop: asyncio.Event) -> None:
    """A minimal ``/healthz`` for the liveness probe (any GET answers 200 ok)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        body = b'{"status":"ok"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)  # noqa: S104 (probe inside the pod)
    async with server:
        await stop.wait()


def main() -> None:
    app = bootstrap()
    configure_telemetry(f"{SERVICE}-worker", log_level=app.settings.log_level)
    parts = worker_parts(app)
    port = app.settings.worker_http_port
    if port:
        parts.background = [*parts.background, lambda stop: _health_server(port, stop)]
    asyncio.run(run_worker(parts))


if __name__ == "__main__":
    main()
