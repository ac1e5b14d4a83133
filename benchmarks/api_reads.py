"""What the dashboard's polling costs the daemon, on a ledger as a daemon writes it over weeks.

Run: ``.venv/bin/python benchmarks/api_reads.py [--days 7 30 90]``. Writes a SQLite ledger like a daemon
holding 4 pairs for N days (a balance snapshot of both wallets and a ``prices`` event every 15 minutes,
positions and decisions now and then, 3 funding payments a day per pair), then times the API's reads
through ``LedgerViews``: the first call (which reads the ledger from its start) and a later call after one
more snapshot (which reads only what is new), next to rebuilding the price book from the whole ledger
as ``fundbot status`` does. Prints milliseconds per call, one line per size, and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bot.domain import DAY_MS, MINUTE_MS
from bot.ledger.models import EventKind, FundingSource, Wallet
from bot.ledger.reads import build_price_book
from bot.ledger.repository import AssetBalance, EventRecord, FundingRecord, Ledger
from bot.ops.status import collect_status
from bot.ops.views import LedgerViews

VENUE = "binance"
T0 = 1_752_192_000_000  # 2025-07-11
PAIRS = {
    "BTC/USDT": Decimal("118000"),
    "ETH/USDT": Decimal("3000"),
    "SOL/USDT": Decimal("160"),
    "XRP/USDT": Decimal("2.9"),
}
STEP = 15 * MINUTE_MS


def _bal(total: str) -> AssetBalance:
    return AssetBalance(free=Decimal(total), used=Decimal(0), total=Decimal(total))


async def write_ledger(led: Ledger, days: int) -> int:
    """A daemon's ledger over ``days``; returns the last instant written."""
    for i, sym in enumerate(PAIRS):
        await led.upsert_pair(
            venue=VENUE, symbol=sym, now_ms=T0 + i, target_qty=Decimal(1), spot_qty=Decimal(1), perp_qty=Decimal(1)
        )
    t = T0
    end = T0 + days * DAY_MS
    while t < end:
        day_end = min(t + DAY_MS, end)
        snaps, events, payments = [], [], []
        while t < day_end:
            spot = {"USDT": _bal("20000"), **{s.split("/")[0]: _bal("1") for s in PAIRS}}
            snaps.append((VENUE, Wallet.SPOT, t, spot))
            snaps.append((VENUE, Wallet.FUTURES, t, {"USDT": _bal("30000")}))
            prices = {s: str(p) for s, p in PAIRS.items()} | {f"{s}:USDT": str(p) for s, p in PAIRS.items()}
            events.append(EventRecord(EventKind.INFO, "prices: ...", t, details={"prices": prices}))
            if (t - T0) % (8 * 3_600_000) == 0:
                for n, sym in enumerate(PAIRS, 1):
                    payments.append(
                        FundingRecord(
                            VENUE, "main", f"{sym}:USDT", t, Decimal("1.5"), FundingSource.INCOME, t, pair_id=n
                        )
                    )
                    events.append(
                        EventRecord(
                            EventKind.DECISION,
                            f"{sym} hold",
                            t,
                            symbol=sym,
                            details={"rule": "hold_carry", "inputs": {"spot_bid": "1", "spot_ask": "1"}},
                        )
                    )
            t += STEP
        await led.record_balance_snapshots(snaps)
        await led.add_events(events)
        await led.record_funding_payments(payments)
    return t


async def _ms(coro_fn) -> float:
    start = time.perf_counter()
    await coro_fn()
    return (time.perf_counter() - start) * 1000


async def measure(days: int, tmp: Path) -> dict[str, float]:
    led = await Ledger.open(f"sqlite+aiosqlite:///{(tmp / f'ledger{days}.db').as_posix()}", migrate=True)
    now = await write_ledger(led, days)
    views = LedgerViews(led, venue=VENUE)
    out = {
        "status_first": await _ms(lambda: views.status(now)),
        "equity_first": await _ms(lambda: views.equity_curve(None, now)),
    }
    await led.record_balance_snapshot(venue=VENUE, wallet=Wallet.FUTURES, ts_ms=now, balances={"USDT": _bal("30001")})
    await led.add_event(EventKind.INFO, "prices: ...", ts_ms=now, details={"prices": {"BTC/USDT": "118001"}})
    out["status_next"] = await _ms(lambda: views.status(now))
    out["equity_next"] = await _ms(lambda: views.equity_curve(None, now))
    out["events_next"] = await _ms(lambda: views.events(kinds=["decision"], limit=60))

    async def rebuilt() -> None:
        await collect_status(led, now, prices=await build_price_book(led))

    out["status_rebuilt_each_time"] = await _ms(rebuilt)
    await led.close()
    return out


async def main(sizes: list[int]) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for days in sizes:
            r = await measure(days, Path(tmp))
            results[days] = r
            print(
                f"{days:>4} days: status first {r['status_first']:8.1f} ms, next {r['status_next']:6.1f} ms "
                f"(rebuilt each time {r['status_rebuilt_each_time']:8.1f} ms); "
                f"equity first {r['equity_first']:8.1f} ms, next {r['equity_next']:6.1f} ms; "
                f"events {r['events_next']:5.1f} ms"
            )
    print(json.dumps({str(k): {n: round(v, 1) for n, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[7, 30, 90])
    asyncio.run(main(parser.parse_args().days))
