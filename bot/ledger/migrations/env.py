"""Alembic environment for the ledger.

Normally run by ``bot.ledger.db.upgrade`` which hands over an open connection in
``config.attributes["connection"]``. When run by the ``alembic`` command from the repo root, the URL comes
from ``-x url=...``, else from fundbot's settings (``FUNDBOT_DATABASE_URL`` / DATA_DIR); alembic.ini never
holds one. SQLite uses batch mode (table rebuilds) so future ALTERs work there too.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from bot.ledger.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return str(url) if isinstance(url, str) else url.render_as_string(hide_password=False)
    from bot.config import load_settings

    return load_settings().resolved_database_url()


async def _run_standalone() -> None:
    from bot.ledger.db import make_engine

    url = _url()
    is_sqlite = url.startswith("sqlite")
    engine = make_engine(url, foreign_keys=not is_sqlite, transactional_ddl=is_sqlite)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _configure_and_run(conn)
else:
    asyncio.run(_run_standalone())
