"""Where a sweep's Optuna study lives: the ledger database setting, through a synchronous driver.

Optuna's RDB storage is synchronous SQLAlchemy, and it keeps its own Alembic history (an
``alembic_version`` table), which cannot share a namespace with the ledger's. So:

* Postgres (``postgresql+asyncpg://...``): the same database, in the schema ``fundbot_sweep`` (psycopg);
* SQLite (``sqlite+aiosqlite:///dir/x.db``): the file ``dir/x-sweeps.db`` beside the ledger (one SQLite
  file holds one Alembic history).

A study is named; running the same ``--study`` again resumes it (finished trials are kept, trials a
stopped run left running are run again), from this machine or another one with the same URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from bot.ledger.db import BAD_URL, LedgerDatabaseError, parse_url, safe_url

SWEEP_SCHEMA = "fundbot_sweep"


def storage_url(ledger_url: str) -> URL:
    """The synchronous URL of the study storage derived from the (async) ledger URL."""
    u = parse_url(ledger_url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or "mode=memory" in db:
            raise LedgerDatabaseError(
                f"a sweep's study must outlive the run: give a SQLite file or Postgres, not {safe_url(u)}"
            )
        path = Path(db)
        return u.set(drivername="sqlite", database=str(path.with_name(f"{path.stem}-sweeps{path.suffix or '.db'}")))
    if backend == "postgresql":
        return u.set(drivername="postgresql+psycopg")
    raise LedgerDatabaseError(BAD_URL)


def open_storage(ledger_url: str) -> Any:
    """An ``optuna.storages.RDBStorage`` on the sweep's namespace of the ledger database."""
    import optuna
    import sqlalchemy

    url = storage_url(ledger_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {SWEEP_SCHEMA}"))
        finally:
            engine.dispose()
        kwargs = {"connect_args": {"options": f"-c search_path={SWEEP_SCHEMA}"}, "pool_pre_ping": True}
    else:
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 30}}
    return optuna.storages.RDBStorage(url.render_as_string(hide_password=False), engine_kwargs=kwargs)
