"""Engine setup and schema migrations for the ledger database.

SQLite (``sqlite+aiosqlite:///path``): the parent directory is created, and every connection gets WAL
journaling (a reader such as ``fundbot tail`` never blocks the daemon), foreign keys ON and a busy
timeout. Postgres (``postgresql+asyncpg://...``) needs nothing special.

Migrations run through Alembic programmatically on an async connection; the URL is always passed in,
never read from alembic.ini. The scripts ship inside the package (``bot/ledger/migrations``; the repo's
``migrations/`` points there) so ``fundbot db upgrade`` works from a checkout and from an installed wheel.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.ledger.types import json_dumps

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK_KEY = 0x66756E64626F74  # "fundbot": Postgres advisory lock held while migrating


BAD_URL = (
    "the database URL is not one fundbot can use; give sqlite+aiosqlite:///path/to/ledger.db or "
    "postgresql+asyncpg://user@host:5432/dbname (FUNDBOT_DATABASE_URL or --url)"
)


class LedgerDatabaseError(RuntimeError):
    """The ledger database cannot be used as asked (bad URL, failed migration check)."""


_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|pass|pwd)=)[^&]*")


def parse_url(url: str | URL) -> URL:
    """``make_url`` whose failures say what is wrong with the ledger URL (never showing a password)."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # no URL at all; a port that is not a number
        raise LedgerDatabaseError(BAD_URL) from None


def safe_url(url: str | URL) -> str:
    """The URL with any password masked (``user:pw@`` and a ``?password=`` query), for messages and logs."""
    return _QUERY_PASSWORD.sub(r"\1***", make_url(url).render_as_string(hide_password=True))


def is_memory_sqlite(url: str | URL) -> bool:
    """True for an in-memory SQLite URL (``sqlite+aiosqlite://``): it lives only as long as its engine."""
    u = parse_url(url)
    if u.get_backend_name() != "sqlite":
        return False
    db = u.database or ""
    return db in ("", ":memory:") or "mode=memory" in db or u.query.get("mode") == "memory"


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None in memory or for a ``file:`` URI (left to SQLite)."""
    if is_memory_sqlite(url) or (url.database or "").startswith("file:"):
        return None
    return Path(url.database or "")


def _check_url(url: URL) -> None:
    try:
        port = url.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise LedgerDatabaseError(f"the database URL's port is not a port number (1 to 65535): {safe_url(url)}")
    if url.get_backend_name() == "sqlite" and url.get_driver_name() != "aiosqlite":
        raise LedgerDatabaseError(f"SQLite URL needs the aiosqlite driver: sqlite+aiosqlite:///... ({safe_url(url)})")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "asyncpg":
        raise LedgerDatabaseError(f"Postgres URL needs the asyncpg driver: postgresql+asyncpg://... ({safe_url(url)})")
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise LedgerDatabaseError(f"unsupported ledger database {safe_url(url)}; use SQLite or Postgres")


def make_engine(url: str | URL, *, foreign_keys: bool = True, transactional_ddl: bool = False) -> AsyncEngine:
    """An async engine for the ledger at ``url`` (SQLite via aiosqlite or Postgres via asyncpg).

    ``foreign_keys`` / ``transactional_ddl`` exist for migrations on SQLite: table rebuilds in batch mode
    need foreign keys off, and DDL is only atomic when every transaction starts with an explicit BEGIN
    (IMMEDIATE, so two migrators queue on the write lock instead of failing).
    """
    u = parse_url(url)
    _check_url(u)
    kw: dict[str, Any] = {"json_serializer": json_dumps}
    if u.get_backend_name() != "sqlite":
        return create_async_engine(u, pool_pre_ping=True, **kw)

    path = sqlite_file(u)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    on_disk = not is_memory_sqlite(u)
    engine = create_async_engine(u, **kw)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        if transactional_ddl:
            # Drive transactions ourselves (the "begin" hook below) so DDL is inside them too.
            dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: the pragmas below may wait
        if on_disk:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cur.close()

    if transactional_ddl:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# The name used in docs/contracts.md.
create_engine = make_engine


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config pointing at the packaged migration scripts (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.attributes["url"] = make_url(url)
    return cfg


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise LedgerDatabaseError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


async def migrate_engine(engine: AsyncEngine, revision: str = "head", *, action: str = "upgrade") -> None:
    """Run Alembic ``action`` ("upgrade" or "downgrade") to ``revision`` in one transaction on ``engine``.

    Concurrent migrators (the daemon and ``fundbot db upgrade`` starting together) are serialised: an
    advisory lock on Postgres, an immediate write lock on SQLite; the later one then finds nothing to do.
    """
    dialect = engine.dialect.name
    cfg = alembic_config()

    def run(sync_conn: Connection) -> None:
        if dialect == "postgresql":
            sync_conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        cfg.attributes["connection"] = sync_conn
        getattr(command, action)(cfg, revision)
        if dialect == "sqlite":
            broken = sync_conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise LedgerDatabaseError(f"migration left foreign key violations: {broken[:5]}")

    async with engine.begin() as conn:
        await conn.run_sync(run)


def _wal_before_migrating(url: URL) -> None:
    """Put a SQLite file in WAL mode before any migrator connects.

    Switching a file to WAL needs an exclusive lock. Done from each connection's set-up while another
    migrator holds its write transaction, the two wait for each other until the busy timeout ends
    (seen when the daemon and ``fundbot db upgrade`` start together on a new file). Done here, with no
    await before it, concurrent upgrades switch one after another and later connections find WAL set."""
    path = sqlite_file(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


async def _run_alembic(url: str | URL, action: str, revision: str) -> None:
    u = parse_url(url)
    _check_url(u)
    is_sqlite = u.get_backend_name() == "sqlite"
    if is_sqlite:
        _wal_before_migrating(u)
    engine = make_engine(u, foreign_keys=not is_sqlite, transactional_ddl=is_sqlite)
    try:
        await migrate_engine(engine, revision, action=action)
    finally:
        await engine.dispose()


async def upgrade(url: str | URL, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` up to ``revision``; returns the revision it is at afterwards."""
    await _run_alembic(url, "upgrade", revision)
    return await current(url)


async def downgrade(url: str | URL, revision: str) -> str | None:
    """Migrate down to ``revision`` (``"base"`` drops everything); returns the revision afterwards."""
    await _run_alembic(url, "downgrade", revision)
    return await current(url)


async def current(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated (or does not exist)."""
    u = parse_url(url)
    _check_url(u)
    if u.get_backend_name() == "sqlite" and (path := sqlite_file(u)) is not None and not path.exists():
        return None
    engine = make_engine(u)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
