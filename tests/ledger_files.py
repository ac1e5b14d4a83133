"""A SQLite ledger file migrated to head once per test process, copied where a test needs a new ledger.

Migrating a new SQLite file costs about 0.15 s (Alembic loads and runs every revision); copying a migrated
one costs a millisecond. The migrations themselves are tested from scratch in tests/ledger/test_db.py.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import make_url

from bot.ledger.repository import Ledger

_template: list[Path] = []


def migrated_template() -> Path:
    """The process's migrated SQLite ledger file (do not write to it: copy it)."""
    if not _template:
        folder = Path(tempfile.mkdtemp(prefix="fundbot-ledger-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "fundbot.db"

        async def migrate() -> None:
            led = await Ledger.open(f"sqlite+aiosqlite:///{path.as_posix()}", migrate=True)
            await led.close()

        with ThreadPoolExecutor(1) as pool:  # a loop of its own: callers may be inside a running one
            pool.submit(asyncio.run, migrate()).result()
        _template.append(path)
    return _template[0]


def copy_migrated(url: str) -> bool:
    """When ``url`` names a SQLite file that does not exist yet, make it a copy of the migrated template
    and say so (open it with ``migrate=False``); False for any other URL (Postgres, an existing file)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return False
    path = Path(u.database)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_template(), path)
    return True


async def open_ledger(url: str) -> Ledger:
    """``Ledger.open(url, migrate=True)``, from a copy of the template when ``url`` is a new SQLite file."""
    return await Ledger.open(url, migrate=not copy_migrated(url))
