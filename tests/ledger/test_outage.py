"""A SQLite ledger that turns read-only for a while, then writable again: no restart needed, the outage is
an event, and write-ahead holds meanwhile (no order without its intent).

How the file is made read-only: ``chmod 0444`` for a normal user; as root (which ignores file modes) the
file is made immutable (``chattr +i``), which refuses root's writes too. Either way SQLite opens a new
connection read-only and keeps it read-only for its whole life, the failure the issue saw; connections
opened before keep writing through the WAL, so the pool is emptied when the episode starts (as a daemon's
concurrent tasks make it open new ones)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from execution.world import SYMBOL, make_world
from sqlalchemy.exc import OperationalError

from bot.execution import SimpleTarget
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger

T0 = 1_767_225_600_000


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        try:
            yield
        finally:
            os.chmod(path, 0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: cannot make the ledger read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def db_file(url: str) -> Path:
    return Path(url.split("///", 1)[1])


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


async def test_a_read_only_episode_is_survived_without_restart_and_recorded(sqlite_url: str) -> None:
    async with await Ledger.open(sqlite_url) as ledger:
        clock = Clock()
        ledger.outages.clock = clock
        await ledger.add_event(EventKind.INFO, "before", ts_ms=clock())
        with read_only(db_file(sqlite_url)):
            await ledger.engine.dispose()
            for i in range(3):
                clock.ms += 1000
                with pytest.raises(OperationalError, match="readonly"):
                    await ledger.add_event(EventKind.INFO, f"during {i}", ts_ms=clock())
            assert [e.message for e in await ledger.events()] == ["before"]  # reads still work
        clock.ms += 10_000
        await ledger.add_event(EventKind.INFO, "after", ts_ms=clock())  # the same process writes again
        for i in range(5):  # and keeps writing: no read-only connection was handed back to the pool
            await ledger.add_event(EventKind.INFO, f"later {i}", ts_ms=clock())
        await ledger.events()  # (the outage is written by the first call that does not hold the event lock)
        events = await ledger.events()
        assert [e.message for e in events if e.kind is EventKind.INFO] == ["before", "after"] + [
            f"later {i}" for i in range(5)
        ]
        (outage,) = [e for e in events if e.kind is EventKind.LEDGER_OUTAGE]
        assert outage.details["failed_writes"] == 3
        assert (outage.details["start_ms"], outage.details["end_ms"]) == (T0 + 1000, T0 + 13_000)
        assert "readonly" in outage.details["error"] and "12s" in outage.message


@pytest.mark.slow
async def test_no_order_leaves_while_the_ledger_cannot_be_written(sqlite_url: str) -> None:
    async with await Ledger.open(sqlite_url) as ledger:
        world = make_world(ledger, spot_usdt="20000", futures_usdt="5000")
        await world.venue.setup_symbol(SYMBOL, 3, "cross")
        with read_only(db_file(sqlite_url)):
            await ledger.engine.dispose()
            with pytest.raises(OperationalError):
                await world.executor().apply(SimpleTarget(SYMBOL, Decimal("0.1")))
            assert world.sim_orders("spot") == [] and world.sim_orders("perp") == []
        result = await world.executor().apply(SimpleTarget(SYMBOL, Decimal("0.1")))
        assert result.status in {"done", "repaired"}
        assert len(world.sim_orders("spot")) == 1 and len(world.sim_orders("perp")) == 1
        assert [e.kind for e in await ledger.events(kinds=[EventKind.LEDGER_OUTAGE])] == [EventKind.LEDGER_OUTAGE]
