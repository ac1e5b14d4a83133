"""Cost of one ledger call: what each executor action pays per call, on either recorder.

Run: ``.venv/bin/python benchmarks/ledger_ops.py [--n 1000]``. Times the repository calls the executor
makes most (create_intent, set_intent_status, active_pair, record_fill, add_event, list_pairs) through
the daemon's ``Ledger`` (SQLAlchemy over aiosqlite, one transaction per call) and through the backtest's
``MemoryLedger`` (in memory, bulk-flushed to its SQLite file: the flush is timed on its own, per row),
next to a plain sqlite3 select as the floor. Prints microseconds per call, one line each, the ratio
of the two recorders per call, and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain import Leg, PairState, Side
from bot.ledger.memory import MemoryLedger
from bot.ledger.models import EventKind, IntentKind, IntentStatus
from bot.ledger.repository import Ledger


async def _per_call(n: int, call: Callable[[int], Awaitable[object]]) -> float:
    t = time.perf_counter()
    for k in range(n):
        await call(k)
    return (time.perf_counter() - t) / n * 1e6


async def _calls(led: Any, n: int) -> dict[str, float]:
    pair = await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=1)

    def fill(k: int) -> Awaitable[object]:
        return led.record_fill(
            venue="sim",
            market=Leg.SPOT,
            symbol="BTC/USDT",
            venue_trade_id=str(k),
            side=Side.BUY,
            quantity=Decimal("0.001"),
            price=Decimal("43000.12"),
            fee=Decimal("0.000001"),
            ts_ms=k,
            pair_id=pair.id,
        )

    return {
        "create_intent": await _per_call(
            n, lambda k: led.create_intent(IntentKind.ORDER, f"c{k}", now_ms=k, payload={"a": "b"}, pair_id=pair.id)
        ),
        "set_intent_status": await _per_call(
            n, lambda k: led.set_intent_status(f"c{k}", IntentStatus.SENT, now_ms=k, count_attempt=True)
        ),
        "active_pair": await _per_call(n, lambda _k: led.active_pair("sim", "BTC/USDT")),
        "list_pairs": await _per_call(n, lambda _k: led.list_pairs([PairState.OPENING, PairState.OPEN])),
        "record_fill": await _per_call(n, fill),
        "add_event": await _per_call(n, lambda k: led.add_event(EventKind.INFO, "x", ts_ms=k, pair_id=pair.id)),
    }


async def _sql(path: Path, n: int) -> dict[str, float]:
    led = await Ledger.open(f"sqlite+aiosqlite:///{path.as_posix()}")
    try:
        return await _calls(led, n)
    finally:
        await led.close()


async def _memory(path: Path, n: int) -> dict[str, float]:
    led = await MemoryLedger.open(f"sqlite+aiosqlite:///{path.as_posix()}", flush_rows=10 * n)
    try:
        out = await _calls(led, n)
        rows = led.pending_rows()
        t = time.perf_counter()
        led.flush()
        out["flush_per_row"] = (time.perf_counter() - t) / rows * 1e6
        return out
    finally:
        await led.close()


def _plain_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path)
    t = time.perf_counter()
    for _ in range(n):
        conn.execute(
            "SELECT * FROM pairs WHERE venue = ? AND symbol = ? AND state != ?", ("sim", "BTC/USDT", "closed")
        ).fetchall()
    conn.close()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    figures: dict[str, object] = {"calls": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        sql = asyncio.run(_sql(Path(tmp) / "sql.db", args.n))
        mem = asyncio.run(_memory(Path(tmp) / "memory.db", args.n))
        figures["plain_sqlite3.select_us"] = round(_plain_sqlite(Path(tmp) / "sql.db", args.n), 1)
    for name, us in sql.items():
        figures[f"sql.{name}_us"] = round(us, 1)
    for name, us in mem.items():
        figures[f"memory.{name}_us"] = round(us, 1)
    for name in sql:
        figures[f"ratio_sql_over_memory.{name}"] = round(sql[name] / mem[name], 1)
    for k, v in figures.items():
        print(f"{k:45s} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
