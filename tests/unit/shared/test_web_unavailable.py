"""A database outage answers 503 with Retry-After in every service's app; other errors stay 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.db import retrying_conflicts
from shared.web import REQUEST_ID_HEADER, create_app, database_unavailable


def wrapped(driver_error: Exception) -> DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: its adapted error ``from`` the driver's, then
    wrapped in a DBAPIError whose ``orig`` is the adapted one."""
    adapted = Exception(f"{type(driver_error)}: {driver_error}")
    adapted.__cause__ = driver_error
    return DBAPIError("INSERT …", {}, adapted)


UNAVAILABLE = [
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"),
    OSError("Multiple exceptions: [Errno 111] …, [Errno 99] …"),
    TimeoutError(),
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
    wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")),
    wrapped(ConnectionResetError()),
]
NOT_UNAVAILABLE = [
    ValueError("a bug"),
    FileNotFoundError("/nowhere"),
    IntegrityError("INSERT …", {}, Exception("duplicate key")),
    wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint")),
    asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'),
]


@pytest.mark.parametrize("exc", UNAVAILABLE, ids=lambda e: type(e).__name__)
def test_outage_errors_are_recognised(exc: Exception) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize("exc", NOT_UNAVAILABLE, ids=lambda e: type(e).__name__)
def test_other_errors_are_not(exc: Exception) -> None:
    assert not database_unavailable(exc)


def test_an_error_raised_while_handling_an_outage_is_not_one() -> None:
    try:
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError:
            raise KeyError("x") from None
    except KeyError as exc:
        assert not database_unavailable(exc)


def app_raising(exc: Exception) -> httpx.AsyncClient:
    app = create_app("test", title="test", checks={})

    @app.post("/write")
    async def write() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize("exc", UNAVAILABLE[::3], ids=lambda e: type(e).__name__)
async def test_an_outage_is_a_503_with_retry_after(exc: Exception) -> None:
    async with app_raising(exc) as client:
        answer = await client.post("/write", headers={REQUEST_ID_HEADER: "req-1"})
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers[REQUEST_ID_HEADER] == "req-1"
    assert answer.json()["error"]["code"] == "unavailable"
    assert set(answer.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("exc", NOT_UNAVAILABLE, ids=lambda e: type(e).__name__)
async def test_anything_else_is_still_the_500(exc: Exception) -> None:
    async with app_raising(exc) as client:
        answer = await client.post("/write")
    assert answer.status_code == 500
    assert "Retry-After" not in answer.headers
    assert answer.json()["error"]["code"] == "internal"


CONFLICTS = [
    wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")),
    asyncpg.exceptions.SerializationError("could not serialize access due to concurrent update"),
]


@pytest.mark.parametrize("exc", CONFLICTS, ids=lambda e: type(e).__name__)
async def test_a_transaction_conflict_is_a_503_to_try_again_at_once(exc: Exception) -> None:
    async with app_raising(exc) as client:
        answer = await client.post("/write")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "try again" in answer.json()["error"]["message"]


async def test_a_transaction_aborted_by_a_conflict_is_run_again_and_other_errors_are_not() -> None:
    calls: list[int] = []

    async def deadlocks_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CONFLICTS[0]
        return "done"

    assert await retrying_conflicts(deadlocks_twice) == "done" and len(calls) == 3

    async def fails() -> str:
        calls.append(1)
        raise wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key"))

    calls.clear()
    with pytest.raises(DBAPIError):
        await retrying_conflicts(fails)
    assert len(calls) == 1

    async def always_deadlocks() -> str:
        raise CONFLICTS[0]

    with pytest.raises(DBAPIError):
        await retrying_conflicts(always_deadlocks, attempts=2)
