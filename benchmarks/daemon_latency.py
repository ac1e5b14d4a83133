"""Print how fast the engine turns a scan into both legs' orders, against the emulator over TLS loopback.

For each round: a scan starts (the daemon's trigger: a funding scan) -> the strategy decides to enter ->
the executor sends the spot and the perp order. Figures: scan start to each leg's order sent (p50, p99),
the gap between the two legs' fills (their answers, wall clock), and what ran before an entry's first leg
left: the HTTP requests ccxt made and the ledger transactions committed since the scan started (the
scan's first entry and its second, which also waits for the first's whole action, shown apart). Between
rounds the pairs are closed (close-only) and the simulated clock moves 10 minutes. Real ccxt, real ledger
(SQLite in a temp dir).

Run: .venv/bin/python benchmarks/daemon_latency.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.config import Mode, load_settings
from bot.domain import MINUTE_MS, Leg
from bot.emulator.server import run_emulator
from bot.engine.daemon import _async_now, assemble_engine
from bot.ledger.models import ControlKind
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.venues.base import OrderRequest, OrderState
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue

SYMBOLS = ["SOL/USDT", "XRP/USDT"]
START_MS = int(datetime(2025, 7, 21, 0, 5, tzinfo=UTC).timestamp() * 1000)


class TimedVenue(CcxtVenue):
    """CcxtVenue that notes when each order is handed to ccxt and when its answer is back."""

    sent: list[tuple[str, Leg, float, float]]

    async def create_order(self, req: OrderRequest) -> OrderState:
        t0 = time.perf_counter()
        state = await super().create_order(req)
        self.sent.append((req.symbol, req.leg, t0, time.perf_counter()))
        return state


class Counted:
    """Start times (perf_counter) of every HTTP request the ccxt client makes and every ledger commit."""

    def __init__(self, client: Any, ledger: Ledger) -> None:
        self.requests: list[float] = []
        self.commits: list[float] = []
        fetch = client.fetch

        async def counted_fetch(*args: Any, **kwargs: Any) -> Any:
            self.requests.append(time.perf_counter())
            return await fetch(*args, **kwargs)

        client.fetch = counted_fetch
        event.listen(ledger.engine.sync_engine, "commit", lambda _conn: self.commits.append(time.perf_counter()))

    def clear(self) -> None:
        self.requests.clear()
        self.commits.clear()

    def before(self, t: float) -> tuple[int, int]:
        return sum(1 for r in self.requests if r < t), sum(1 for c in self.commits if c < t)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def main(rounds: int) -> None:
    clock = ManualClock(START_MS)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        settings = load_settings(
            mode=Mode.LIVE,
            database_url=db,
            symbols=SYMBOLS,
            execution={"order_timeout_s": 0.5, "poll_interval_s": 0.02, "retry_backoff_s": 0},
            treasury={"backoff_s": 0},
            http={"enabled": False},
        )
        unlimited = {"rate_limits": {"per_minute": {"api": 10**9, "sapi": 10**9, "fapi": 10**9}}}  # latency only
        async with run_emulator(symbols=SYMBOLS, clock=clock, tick_ms=50, scenario=unlimited) as handle:
            client = build_client(handle.connection, pro=True, tls=True, rateLimit=1)
            venue = TimedVenue(client, account="emulator", time_resync_s=None)
            venue.now_ms = _async_now(clock.now_ms)  # type: ignore[method-assign]  # as the daemon wires it
            venue.sent = []
            ledger = await Ledger.open(db, migrate=True)
            engine = assemble_engine(settings, venue, ledger, clock.now_ms)
            counted = Counted(client, ledger)
            try:
                await engine.start()
                to_first: list[float] = []
                to_both: list[float] = []
                fill_gap: list[float] = []
                scans: list[float] = []
                ahead: dict[int, list[tuple[float, int, int]]] = {0: [], 1: []}  # entry n: (ms, requests, commits)
                for _ in range(rounds):
                    venue.sent.clear()
                    await ledger.clear_control(ControlKind.CLOSE_ONLY, now_ms=clock.now_ms(), source="bench")
                    counted.clear()
                    t0 = time.perf_counter()
                    await engine.scan()
                    scans.append(time.perf_counter() - t0)
                    by_symbol: dict[str, dict[Leg, tuple[float, float]]] = {}
                    for symbol, leg, sent, answered in venue.sent:
                        by_symbol.setdefault(symbol, {}).setdefault(leg, (sent, answered))
                    entered = [legs for legs in by_symbol.values() if Leg.SPOT in legs and Leg.PERP in legs]
                    for n, legs in enumerate(sorted(entered, key=lambda legs: legs[Leg.SPOT][0])):
                        (s_sent, s_done), (p_sent, p_done) = legs[Leg.SPOT], legs[Leg.PERP]
                        to_first.append(min(s_sent, p_sent) - t0)
                        to_both.append(max(s_sent, p_sent) - t0)
                        fill_gap.append(abs(p_done - s_done))
                        before = counted.before(min(s_sent, p_sent))
                        ahead.setdefault(n, []).append((max(s_sent, p_sent) - t0, *before))
                    # the operator's close-only (the ledger control the scan reads), so the next round enters again
                    await ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=clock.now_ms(), source="bench")
                    await engine.scan()
                    clock.advance(10 * MINUTE_MS)
                    await handle.tick()
                await show(rounds, scans, to_first, to_both, fill_gap)
                show_ahead(ahead)
            finally:
                await venue.close()
                await ledger.close()


async def show(rounds: int, scans: list[float], *series: Any) -> None:
    names = ("scan start -> first leg sent", "scan start -> both legs sent", "gap between the legs' fills")
    print(f"{rounds} rounds, {len(series[0])} entries (2 symbols, real ccxt over TLS loopback, SQLite ledger)")
    for name, values in (("entry scan (whole)", scans), *zip(names, series, strict=True)):
        if not values:
            print(f"{name:34s} no entries measured")
            continue
        p50, p99 = statistics.median(values) * 1000, pct(values, 0.99) * 1000
        print(f"{name:34s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")


def show_ahead(ahead: dict[int, list[tuple[float, int, int]]]) -> None:
    """Per entry of a scan (1st, 2nd): scan start -> both legs sent, and the requests and commits before
    its first leg left (medians; the counts are the same every round unless the scan's work differs)."""
    for n, rows in sorted(ahead.items()):
        if not rows:
            continue
        both = [r[0] for r in rows]
        requests, commits = statistics.median(r[1] for r in rows), statistics.median(r[2] for r in rows)
        print(
            f"entry {n + 1} of the scan: both legs sent p50 {statistics.median(both) * 1000:6.1f} ms "
            f"p99 {pct(both, 0.99) * 1000:6.1f} ms; before its first leg: {requests:g} HTTP requests, "
            f"{commits:g} ledger commits"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
