"""Engine setup, SQLite pragmas and Alembic migrations on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.ledger import db
from bot.ledger.models import Base

TABLES = {
    "pairs",
    "intents",
    "orders",
    "fills",
    "transfers",
    "funding_payments",
    "funding_rates",
    "balance_snapshots",
    "events",
    "controls",
}


async def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_sqlite_engine_creates_parent_dir_and_sets_wal_and_foreign_keys(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{(tmp_path / 'a' / 'b' / 'x.db').as_posix()}"
    engine = db.make_engine(url)
    try:
        assert (tmp_path / "a" / "b").is_dir()
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    finally:
        await engine.dispose()


async def test_sqlite_foreign_keys_are_enforced(sqlite_url: str):
    await db.upgrade(sqlite_url)
    engine = db.make_engine(sqlite_url)
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO events (ts_ms, kind, pair_id, message) VALUES (1, 'info', 999, 'x')")
                )
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    ["sqlite:///x.db", "postgresql://u@h/db", "postgresql+psycopg2://u:secret@h/db", "mysql+aiomysql://u@h/db"],
)
def test_make_engine_refuses_sync_drivers_and_other_databases_without_leaking_passwords(url: str):
    with pytest.raises(db.LedgerDatabaseError) as err:
        db.make_engine(url)
    assert "secret" not in str(err.value)


def test_safe_url_masks_the_password():
    assert "hunter2" not in db.safe_url("postgresql+asyncpg://bot:hunter2@db:5432/fundbot")


async def test_current_of_a_missing_sqlite_file_is_none_and_creates_nothing(tmp_path: Path):
    path = tmp_path / "nope" / "x.db"
    assert await db.current(f"sqlite+aiosqlite:///{path.as_posix()}") is None
    assert not path.exists()


async def test_upgrade_creates_every_table_and_current_reports_head(db_url: str):
    assert await db.current(db_url) is None
    assert await db.upgrade(db_url) == db.head_revision()
    assert await db.current(db_url) == db.head_revision()
    assert await _tables(db_url) >= TABLES
    # Upgrading again is a no-op.
    assert await db.upgrade(db_url) == db.head_revision()


@pytest.mark.slow
async def test_downgrade_to_base_drops_everything_and_upgrade_restores_it(db_url: str):
    await db.upgrade(db_url)
    assert await db.downgrade(db_url, "base") is None
    assert not (TABLES & await _tables(db_url))
    assert await db.upgrade(db_url) == db.head_revision()
    assert await _tables(db_url) >= TABLES


async def test_migrated_schema_matches_the_models(db_url: str):
    """The hand-reviewed migration and the ORM models describe the same schema (no autogenerate diff)."""
    await db.upgrade(db_url)
    engine = db.make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


@pytest.mark.slow
async def test_sqlite_migration_leaves_foreign_keys_on_for_normal_connections(sqlite_url: str):
    await db.upgrade(sqlite_url)
    engine = db.make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await engine.dispose()


def test_migration_scripts_ship_inside_the_package_and_the_repo_dir_points_there():
    assert (db.MIGRATIONS_DIR / "env.py").is_file()
    assert (db.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert any(p.name.startswith("0001_") for p in (db.MIGRATIONS_DIR / "versions").glob("*.py"))
    repo_migrations = Path(__file__).resolve().parents[2] / "migrations"
    assert repo_migrations.resolve() == db.MIGRATIONS_DIR.resolve()


async def test_concurrent_upgrades_queue_and_both_succeed(db_url: str):
    """The daemon and `fundbot db upgrade` may start together; the second finds nothing to do."""
    results = await asyncio.gather(db.upgrade(db_url), db.upgrade(db_url), db.upgrade(db_url))
    assert results == [db.head_revision()] * 3


def test_memory_urls_are_recognised():
    assert db.is_memory_sqlite("sqlite+aiosqlite://")
    assert db.is_memory_sqlite("sqlite+aiosqlite:///:memory:")
    assert not db.is_memory_sqlite("sqlite+aiosqlite:///var/x.db")
    assert not db.is_memory_sqlite("postgresql+asyncpg://u@h/db")
