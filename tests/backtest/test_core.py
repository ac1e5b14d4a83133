"""EngineLoop reads the sim once per instant for the timeline row and the collateral gate; on a real-data
window that trades and transfers, every hour's values equal what the venue calls give. And the backtest
runs the daemon's own Engine: its ledger opens with the engine's start and holds its scans' decisions and
predicted funding rates."""

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from bot.backtest import runner
from bot.backtest.core import EngineLoop, TickState
from bot.backtest.params import BacktestParams
from bot.config import TreasuryConfig
from bot.domain import ZERO
from bot.ledger.models import ControlKind, Event, FundingRate
from bot.ledger.repository import Ledger
from bot.treasury.maths import transfer_need

from .equivalence import WINDOW_START, ledger_facts, run_window, with_options

pytestmark = pytest.mark.slow  # every test here is over ~2 s


class VenueCheckedJobs(EngineLoop):
    """Computes each row and gate decision a second time through the Venue protocol and compares."""

    checked: ClassVar[list[int]] = []

    async def _venue_capital(self) -> Decimal:
        total = ZERO
        for b in await self.core.venue.fetch_balances():
            if b.asset == "USDT":
                total += b.total
            elif b.wallet == "spot":
                sid = f"{b.asset}USDT"
                px = self.core.exchange.last_known_price("spot", sid) or ZERO
                total += b.total * px
        return total

    async def check_collateral(self) -> None:
        await self._check_gate(self._band_left())
        await super().check_collateral()

    async def _check_gate(self, fast: bool) -> None:
        """The gate's one-reading answer against the treasury's rule on the venue's own reads."""
        venue = self.core.venue
        symbols = sorted(self.live)
        account = await venue.fetch_futures_account()
        positions = await venue.fetch_positions(symbols) if symbols else {}
        notional = sum((abs(p.qty) * p.mark_price for p in positions.values()), ZERO)
        assert fast == (transfer_need(account.margin_balance, notional, self.core.treasury.band) is not None)

    async def state(self, t: int) -> TickState:
        fast = await super().state(t)
        venue = self.core.venue
        equity = await self._venue_capital()
        notional, held = ZERO, []
        if self.live:
            for sym, pos in (await venue.fetch_positions(list(self.live))).items():
                notional += abs(pos.qty) * pos.mark_price
                if pos.qty != 0:
                    held.append(sym)
        ratio = float("nan")
        if notional > 0:
            ratio = float((await venue.fetch_futures_account()).margin_balance / notional)
        assert (fast.equity, fast.notional, fast.held) == (float(equity), float(notional), held)
        assert (fast.collateral_ratio != fast.collateral_ratio and ratio != ratio) or fast.collateral_ratio == ratio
        VenueCheckedJobs.checked.append(t)
        return fast


def test_one_sim_reading_per_instant_equals_the_venue_reads(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(runner, "EngineLoop", VenueCheckedJobs)
    tight = TreasuryConfig(target_ratio="0.5", low_ratio="0.49", high_ratio="0.51", min_transfer="1")
    VenueCheckedJobs.checked = []
    result = run_window(tmp_path / "w", BacktestParams(treasury=tight), days=3)
    assert result.summary.trades > 0 and result.stats.treasury_runs > 0
    assert len(VenueCheckedJobs.checked) == result.stats.ticks_evaluated > 0
    if not any(x == x for x in result.timeline.collateral_ratio):
        pytest.fail("the window must hold a pair for the comparison to mean anything")


def test_the_backtest_ledger_is_written_by_the_daemons_engine(tmp_path: Path) -> None:
    """The engine's own jobs wrote it: its start, a decision at each rule change (not every hold), a
    predicted rate per settlement its scans saw, and funding income as the daemon's sync records it."""
    result = run_window(tmp_path / "w", with_options(BacktestParams(), fast_forward=False, skip_idle_hours=False))
    facts = ledger_facts(result.ledger_url)
    events, rates = asyncio.run(_events_and_rates(result.ledger_url))
    started = ("info", "engine started on sim: 3 symbols, leverage 3x cross, close-only off")
    assert started in [e[1:] for e in events[:3]], events[:3]  # after the account's costs, as the daemon
    assert any(e[2].startswith("account costs read from sim for 3 symbols") for e in events[:3])
    decisions = [e for e in events if e[1] == "decision"]
    assert any(" enter -> " in e[2] for e in decisions) and any(" hold -> " in e[2] for e in decisions)
    assert len(decisions) < result.stats.scans * 3, "a hold is recorded when its rule changes, not every scan"
    assert {s for s, _ in rates} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert len(rates) == 4 * 3 * 3, "three settlements a day per symbol, each as the scans predicted it"
    assert facts["funding"] and {e[1] for e in events} >= {"fill", "order", "funding", "transfer", "decision"}


async def _events_and_rates(url: str) -> tuple[list[tuple[int, str, str]], list[tuple[str, int]]]:
    """Every event (ts, kind, message) in the order written, and the funding rates' (symbol, settlement)."""
    ledger = await Ledger.open(url, migrate=False)
    try:
        async with ledger.engine.connect() as conn:
            rows = (await conn.execute(select(Event.ts_ms, Event.kind, Event.message).order_by(Event.id))).all()
            rates = (await conn.execute(select(FundingRate.symbol, FundingRate.funding_time_ms))).all()
    finally:
        await ledger.close()
    return [(r[0], str(r[1]), r[2]) for r in rows], [(r[0], r[1]) for r in rates]


def test_the_operators_controls_hold_in_a_backtest(tmp_path: Path, monkeypatch: Any) -> None:
    """Close-only set in the backtest's ledger mid-run (as `fundbot control close-only` sets it in a
    daemon's) winds every pair down at the next scan and opens none after; the capital limit caps what the
    strategy allocates, as the daemon's ``engine.capital_limit`` does."""
    day = 24 * 3_600_000
    scan = EngineLoop.scan

    async def scan_then_close_only(self: EngineLoop, no_data: dict, no_entry: dict) -> None:
        if self.core.clock.now_ms() == WINDOW_START + day:
            await self.core.ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=self.core.clock.now_ms(), source="test")
        await scan(self, no_data, no_entry)

    monkeypatch.setattr(EngineLoop, "scan", scan_then_close_only)
    result = run_window(tmp_path / "close-only", with_options(BacktestParams(), fast_forward=False), days=3)
    events, _ = asyncio.run(_events_and_rates(result.ledger_url))
    decisions = [e for e in events if e[1] == "decision"]
    assert any(e[0] < WINDOW_START + day and " enter -> " in e[2] for e in decisions), "it must hold pairs first"
    exits = [e for e in decisions if e[0] == WINDOW_START + day and "close-only: winding the pair down" in e[2]]
    assert len(exits) == 3
    assert not [e for e in decisions if e[0] > WINDOW_START + day and " enter -> " in e[2]]
    assert {p[1] for p in ledger_facts(result.ledger_url)["pairs"]} == {"closed"}

    monkeypatch.setattr(EngineLoop, "scan", scan)
    limited = run_window(tmp_path / "limit", with_options(BacktestParams(), capital_limit=Decimal(20_000)), days=1)
    first = [f for f in ledger_facts(limited.ledger_url)["fills"] if f[0] == WINDOW_START and f[1] == "spot"]
    spent = sum((qty * price for _, _, _, qty, price, _ in first), ZERO)
    assert 0 < spent < Decimal(20_000)
