"""TickJobs reads the sim once per instant for the timeline row and the collateral gate; on a real-data
window that trades and transfers, every hour's values equal what the venue calls give."""

from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bot.backtest import runner
from bot.backtest.core import TickJobs, TickState
from bot.backtest.params import BacktestParams
from bot.config import TreasuryConfig
from bot.domain import ZERO
from bot.treasury.maths import transfer_need

from .equivalence import run_window


class VenueCheckedJobs(TickJobs):
    """Computes each row and gate decision a second time through the Venue protocol and compares."""

    checked: ClassVar[list[int]] = []

    async def _venue_capital(self) -> Decimal:
        total = ZERO
        for b in await self.core.venue.fetch_balances():
            if b.asset == "USDT":
                total += b.total
            elif b.wallet == "spot":
                sid = f"{b.asset}USDT"
                px = self.core.exchange.price("spot", sid) or self.core.exchange._last_good.get(("spot", sid), ZERO)
                total += b.total * px
        return total

    async def _band_left(self) -> bool:
        fast = await super()._band_left()
        venue = self.core.venue
        symbols = sorted(self._live)
        account = await venue.fetch_futures_account()
        positions = await venue.fetch_positions(symbols) if symbols else {}
        notional = sum((abs(p.qty) * p.mark_price for p in positions.values()), ZERO)
        assert fast == (transfer_need(account.margin_balance, notional, self.core.treasury.band) is not None)
        return fast

    async def state(self, t: int) -> TickState:
        fast = await super().state(t)
        venue = self.core.venue
        equity = await self._venue_capital()
        notional, held = ZERO, []
        if self._live:
            for sym, pos in (await venue.fetch_positions(list(self._live))).items():
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
    monkeypatch.setattr(runner, "TickJobs", VenueCheckedJobs)
    tight = TreasuryConfig(target_ratio="0.5", low_ratio="0.49", high_ratio="0.51", min_transfer="1")
    VenueCheckedJobs.checked = []
    result = run_window(tmp_path / "w", BacktestParams(treasury=tight), days=3)
    assert result.summary.trades > 0 and result.stats.treasury_runs > 0
    assert len(VenueCheckedJobs.checked) == result.stats.ticks_evaluated > 0
    if not any(x == x for x in result.timeline.collateral_ratio):
        pytest.fail("the window must hold a pair for the comparison to mean anything")
