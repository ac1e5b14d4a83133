"""Shared fixtures: a fresh ledger database per test, on SQLite and on Postgres.

``db_url`` runs a test twice: on a SQLite file in ``tmp_path`` and on an empty Postgres database of its
own (``fundbot_t_<random>``, owned by this pytest process so parallel runs never collide; wiped and reused
by the next test, dropped at the end of the session). The Postgres
server comes from ``FUNDBOT_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/
test``). When it does not answer, Postgres tests skip with the reason, or FAIL when ``CI=true``.

``ledger`` is an opened, migrated ``Ledger`` on ``db_url``; ``sqlite_url`` is a SQLite-only URL for tests
that do not need both backends.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ccxt.async_support.base.exchange import Exchange as CcxtAsyncExchange
from sqlalchemy import URL, make_url

from bot.ledger.memory import MemoryLedger
from bot.ledger.repository import Ledger
from tests.ledger_files import copy_migrated, migrated_template

DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
_PG_CONNECT_TIMEOUT_S = 3.0

T = TypeVar("T")

_RAM_TMP = Path("/dev/shm")
_RAM_TMP_MIN_FREE = 4 * 2**30


def pytest_configure(config: pytest.Config) -> None:
    """Temporary files (``tmp_path``, the ledgers, the emulator's state) go to RAM when the machine has a
    roomy tmpfs at /dev/shm and the run names no place of its own (``--basetemp``, ``TMPDIR``): the
    tests write hundreds of SQLite files, and on a busy disk their syncs made the ledger tests twice as
    slow. A small /dev/shm (a container's 64 MB default) is left alone."""
    if config.option.basetemp or os.environ.get("TMPDIR"):
        return
    try:
        free = os.statvfs(_RAM_TMP)
    except OSError:
        return
    if free.f_bavail * free.f_frsize >= _RAM_TMP_MIN_FREE and os.access(_RAM_TMP, os.W_OK):
        tempfile.tempdir = str(_RAM_TMP)


# ccxt's async ``close()`` sleeps ``timeout_on_exit`` (250 ms) so aiohttp's SSL transports finish closing
# before a process exits; a test's loop lives on after its clients close, and the sleep was a quarter of
# a second per ccxt client, most of the fast tier's wall time beyond its CPU time. The daemon keeps it.
CcxtAsyncExchange.timeout_on_exit = 0


def _run(coro: Awaitable[T]) -> T:
    """Run a coroutine on a private loop (fixtures here are sync so any test, sync or async, can use them)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def postgres_server_url() -> URL:
    return make_url(os.environ.get("FUNDBOT_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL)


def _asyncpg_dsn(url: URL, database: str | None = None) -> str:
    """asyncpg's own DSN (no '+asyncpg' driver suffix) for ``url``, optionally another database."""
    u = url.set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def _pg_execute(url: URL, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=_PG_CONNECT_TIMEOUT_S)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_pg_unreachable: list[str | None] = []  # cached probe result: [None] = reachable, [reason] = not


def _postgres_unreachable_reason() -> str | None:
    if not _pg_unreachable:
        url = postgres_server_url()
        try:
            _run(_pg_execute(url, "SELECT 1"))
            _pg_unreachable.append(None)
        except Exception as err:  # any failure to connect means "no test server"
            where = url.render_as_string(hide_password=True)
            _pg_unreachable.append(
                f"Postgres test server {where} unreachable ({type(err).__name__}: {err}); "
                "start it or set FUNDBOT_TEST_POSTGRES_URL"
            )
    return _pg_unreachable[0]


def require_postgres() -> URL:
    """The test server URL; skips the test (fails under CI=true) when the server does not answer."""
    reason = _postgres_unreachable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return postgres_server_url()


class _PostgresDatabases:
    """Test databases of this pytest process: created on demand, wiped and reused, dropped at the end.

    Creating a database costs about a second on a busy machine; wiping one (drop and recreate the public
    schema) costs milliseconds, and a wiped database is as empty as a new one.
    """

    def __init__(self) -> None:
        self.free: list[str] = []
        self.created: list[str] = []

    def acquire(self, server: URL) -> str:
        if self.free:
            return self.free.pop()
        name = f"fundbot_t_{uuid.uuid4().hex[:16]}"
        _run(_pg_execute(server, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return name

    def release(self, server: URL, name: str) -> None:
        try:
            _run(_pg_execute(server.set(database=name), "DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        except Exception:
            _run(_pg_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.created.remove(name)
            raise
        self.free.append(name)

    def drop_all(self, server: URL) -> None:
        for name in self.created:
            _run(_pg_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self.free.clear()


@pytest.fixture(scope="session")
def _postgres_databases() -> Iterator[_PostgresDatabases]:
    pool = _PostgresDatabases()
    yield pool
    if pool.created:
        pool.drop_all(postgres_server_url())


@pytest.fixture
def postgres_url(_postgres_databases: _PostgresDatabases) -> Iterator[str]:
    """A fresh, empty Postgres database for this test (fundbot_t_<random>, never shared with another
    process; wiped after the test and dropped at the end of the session)."""
    server = require_postgres()
    name = _postgres_databases.acquire(server)
    yield server.set(database=name).render_as_string(hide_password=False)
    _postgres_databases.release(server, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite ledger URL in this test's tmp_path (the file does not exist yet)."""
    return f"sqlite+aiosqlite:///{(tmp_path / 'ledger' / 'fundbot.db').as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty ledger database URL, once on SQLite and once on Postgres (the Postgres run is in the
    slow tier: a database of its own costs a second or more to set up)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(name)


@pytest.fixture(params=["sql", "memory"])
def recorder(request: pytest.FixtureRequest) -> str:
    """Which ledger a ``ledger`` test records through: ``Ledger`` (SQLAlchemy, the daemon's) or
    ``MemoryLedger`` (a backtest's, flushed to its SQLite file). The memory one runs only on SQLite and
    in the modules marked ``memory_ledger`` (the others are deselected)."""
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The memory ledger is SQLite only, and runs where a module asks for it: drop the rest at collection."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        memory = params.get("recorder") == "memory"
        unwanted = params.get("db_url") == "postgres" or item.get_closest_marker("memory_ledger") is None
        (drop if memory and unwanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def migrated_sqlite_template() -> Path:
    """A SQLite ledger migrated to head once per session (the migrations themselves are tested in
    tests/ledger/test_db.py): ``ledger`` starts from a copy, a fraction of the cost of migrating anew."""
    return migrated_template()


@pytest.fixture
async def ledger(db_url: str, recorder: str, migrated_sqlite_template: Path) -> AsyncIterator[Ledger]:
    """An opened, migrated ledger on ``db_url`` (closed after the test), started on SQLite from a copy of
    the session's migrated template (opened without re-running Alembic on it). The memory one flushes
    every few rows, so tests cross flushes: reads of flushed facts and keys found only in the file."""
    copied = copy_migrated(db_url)
    led: Any = (
        await MemoryLedger.open(db_url, flush_rows=3)
        if recorder == "memory"
        # a copy of the template is at head: Alembic's check of it cost 40-60 ms a test; Postgres migrates
        else await Ledger.open(db_url, migrate=not copied)
    )
    try:
        yield led
    finally:
        await led.close()
