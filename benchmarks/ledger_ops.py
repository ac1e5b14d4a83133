"""Cost of one ledger call on SQLite: what each executor action pays per statement.

Run: ``.venv/bin/python benchmarks/ledger_ops.py [--n 1000]``. Times the repository calls the executor
makes most (create_intent, set_intent_status, active_pair, add_event) through aiosqlite and through the
backtest's inline driver, next to the same select as a prebuilt Core statement on a held connection (the
floor SQLAlchemy allows) and plain sqlite3. Prints microseconds per call, one line each, and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from bot.backtest.core import _fast_sqlite
from bot.domain import PairState
from bot.ledger.models import EventKind, IntentKind, IntentStatus, Pair
from bot.ledger.repository import Ledger


async def _per_call(n: int, call: Callable[[int], Awaitable[object]]) -> float:
    t = time.perf_counter()
    for k in range(n):
        await call(k)
    return (time.perf_counter() - t) / n * 1e6


async def _driver(path: Path, inline: bool, n: int) -> dict[str, float]:
    led = await Ledger.open(f"sqlite+aiosqlite:///{path.as_posix()}", inline=inline)
    await _fast_sqlite(led)
    await led.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=1)
    tag = "inline" if inline else "aiosqlite"
    out = {
        "create_intent": await _per_call(
            n, lambda k: led.create_intent(IntentKind.ORDER, f"{tag}{k}", now_ms=k, payload={"a": "b"})
        ),
        "set_intent_status": await _per_call(
            n, lambda k: led.set_intent_status(f"{tag}{k}", IntentStatus.SENT, now_ms=k, count_attempt=True)
        ),
        "active_pair": await _per_call(n, lambda _k: led.active_pair("binance", "BTC/USDT")),
        "add_event": await _per_call(n, lambda k: led.add_event(EventKind.INFO, "x", ts_ms=k)),
    }
    stmt = select(Pair.__table__).where(
        Pair.venue == "binance", Pair.symbol == "BTC/USDT", Pair.state != PairState.CLOSED
    )
    async with led.engine.connect() as conn:

        async def core(_k: int) -> object:
            return (await conn.execute(stmt)).all()

        out["core_select_held_connection"] = await _per_call(n, core)
    await led.close()
    return out


def _plain_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    for _ in range(n):
        conn.execute(
            "SELECT * FROM pairs WHERE venue = ? AND symbol = ? AND state != ?", ("binance", "BTC/USDT", "closed")
        ).fetchall()
    conn.close()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    figures: dict[str, object] = {"calls": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        for inline in (False, True):
            path = Path(tmp) / f"{inline}.db"
            for name, us in asyncio.run(_driver(path, inline, args.n)).items():
                figures[f"{'inline' if inline else 'aiosqlite'}.{name}_us"] = round(us, 1)
        figures["plain_sqlite3.select_us"] = round(_plain_sqlite(Path(tmp) / "True.db", args.n), 1)
    for k, v in figures.items():
        print(f"{k:45s} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
