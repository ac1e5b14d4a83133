"""Fast-forward: run a stretch of hours in one simulator jump when nothing in it can act.

While the book is settled (every live pair OPEN with matching legs, no open order or intent, the treasury
quiet) the hourly loop only repeats three checks, each of which can be decided ahead from the replayed
prices (``bot.backtest.paths``) and the positions, which do not change until something acts:

1. **Strategy** (scan hours): it returns only holds and skips, as the strategy's own quiet-hours bound says
   (``strategies.base.PublishesQuietHours``, strategies/quiet.py); a strategy without one runs every scan.
2. **Treasury**: the collateral ratio stays strictly inside the band (relative margin 1e-4), so
   ``transfer_need`` is None.
3. **Liquidation**: the margin balance at the worst mark of the stretch stays above 3x maintenance.

Every test is done in float with margins far above the float error and the simulator's price quantum,
so an hour is only skipped when the Decimal code would certainly decide the same. The stretch ends at
the first hour that is not certain, which then runs for real. The simulator jumps straight to the
stretch's funding-sync hours (the first grid hour at or after each settlement of a held symbol, where
the hourly loop's sync would see it), its snapshot hours and its end: it settles funding at each
settlement's own instant and checks liquidation over the whole path, which certificate 3 bounds. At
those hours the engine's own jobs run (``sync_funding``, ``snapshot_balances``), so the ledger gets
what the hourly loop writes there. The scans of a stretch are not run: their decisions (holds and skips
only, certificate 1) and predicted funding rates are what a stretch leaves out of the ledger. Timeline
rows come from the same float arrays.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.backtest.book import Book, Held, SpotHoldings
from bot.backtest.paths import SymbolPaths
from bot.domain import HOUR_MS, PairState, common_step, exchange_id
from strategies.base import QuietBound
from strategies.params import CarryParams
from strategies.quiet import BookShape

if TYPE_CHECKING:
    from bot.backtest.core import EngineLoop
    from bot.backtest.result import Timeline
    from bot.treasury.maths import Band

BAND_MARGIN = 1e-4  # collateral ratio thresholds, relative
MIN_MARK = 1e-3  # below this the price quantum is too coarse for the band margin: run for real
MM_SAFETY = 3.0  # margin balance must stay above this many times maintenance
CHUNK = 512  # hours certified per numpy pass
MM_NOTIONAL_X = 4.0  # the maintenance ratio bound holds for short notionals up to this multiple of the start


def book_shapes(ex: Any, sids: list[str]) -> dict[str, BookShape]:
    """Each symbol's top-of-book shape in the simulator ``ex`` (for the candidates' break-even floor)."""
    out = {}
    for sid in sids:
        if ex.has_market("spot", sid) and ex.has_market("perp", sid):
            out[sid] = BookShape(
                float(ex.spec("spot", sid).tick_size),
                float(ex.spec("perp", sid).tick_size),
                float(ex.book_config(sid).spread_bps) / 2e4,
            )
    return out


class FastForward:
    """Certifies stretches and runs them (see the module docstring)."""

    def __init__(
        self,
        jobs: EngineLoop,
        paths: dict[str, SymbolPaths],
        grid: np.ndarray,
        scan: np.ndarray,
        unsafe: np.ndarray,
        blocked: dict[str, np.ndarray],
        params: CarryParams,
        band: Band,
        bound: QuietBound | None,
        unified: dict[str, str],
    ) -> None:
        self.jobs = jobs
        self.paths = paths
        self.grid = grid
        self.scan = scan
        self.unsafe = unsafe
        self.p = params
        self.blocked = blocked  # Binance id -> bool per hour: not offered to the strategy for entry
        self.bound = bound  # the strategy's own quiet-hours bound; None: every scan runs
        self.unified = unified  # Binance id -> unified symbol
        self.low = float(band.low)
        self.high = float(band.high)
        self.hours_skipped = 0
        self.stretches = 0

    # ------------------------------------------------------------------ the book

    async def book(self) -> Book | None:
        """The settled book, or None when something is in motion (then every hour runs for real)."""
        jobs = self.jobs
        core = jobs.core
        ex = core.exchange
        if not jobs.treasury_quiet or ex.has_open_orders() or await jobs.open_intents():
            return None
        tol = self.p.hedge_tolerance_fraction
        held: list[Held] = []
        positions = {p.symbol: p for p in ex.open_positions()}
        for sym, pair in sorted(jobs.live.items()):
            if pair.state is not PairState.OPEN:
                return None
            larger = max(pair.spot_qty, pair.perp_qty)
            if larger <= 0 or abs(pair.spot_qty - pair.perp_qty) / larger > tol:
                return None
            sid = exchange_id(sym)
            pos = positions.pop(sid, None)
            if pos is None or pos.isolated or pos.amt != -pair.perp_qty:
                return None
            spot_spec, perp_spec = ex.spec("spot", sid), ex.spec("perp", sid)
            cfg = ex.book_config(sid)
            held.append(
                Held(
                    binance_id=sid,
                    qty=float(pair.hedged_qty),
                    step=float(common_step(spot_spec.step_size, perp_spec.step_size)),
                    ticks=(float(spot_spec.tick_size), float(perp_spec.tick_size)),
                    steps=(float(spot_spec.step_size), float(perp_spec.step_size)),
                    half_spread=float(cfg.spread_bps) / 2e4,
                    level_gap=float(cfg.level_gap_bps) / 1e4,
                    levels=cfg.levels,
                    level_notional=float(cfg.level_notional),
                    perp_amt=float(pos.amt),
                    entry=float(pos.entry_price),
                )
            )
        if positions or ex.holds_other_futures_assets():
            return None  # a position without a pair, or non-USDT futures assets: not modelled here
        spot = SpotHoldings.read(ex.spot_account().balances, self.paths)
        if spot.unpriced:
            return None
        notional0 = sum(abs(h.perp_amt) * float(ex.margin_mark(h.binance_id)) for h in held)
        mm_rate = 0.0
        for h in held:
            cap = Decimal(repr(MM_NOTIONAL_X * max(notional0, 1.0)))
            rates = [b.maint_margin_ratio for b in ex.brackets(h.binance_id) if b.notional_floor <= cap]
            mm_rate = max(mm_rate, float(max(rates)))
        return Book(held, spot, float(ex.futures_wallet_balance()), mm_rate, notional0)

    # ------------------------------------------------------------------ the certificates

    def _funding(self, book: Book, t0: int, times: np.ndarray) -> np.ndarray:
        """Futures wallet at each of ``times``: the start wallet plus funding settled in (t0, t]; NaN from
        the first settlement whose mark is unknown (the hours before it stay certifiable)."""
        wallet = np.full(len(times), book.wallet)
        for h in book.held:
            p = self.paths[h.binance_id]
            a = np.searchsorted(p.settle_ts, t0, side="right")
            b = np.searchsorted(p.settle_ts, times[-1], side="right")
            if b <= a:
                continue
            ts = p.settle_ts[a:b]
            pay = -h.perp_amt * p.settle_mark[a:b] * p.settle_rate[a:b]
            k = np.searchsorted(ts, times, side="right")
            wallet += np.concatenate(([0.0], np.cumsum(pay)))[k]
        return wallet

    def certify(self, book: Book, i0: int, i1: int) -> tuple[int, dict[str, np.ndarray]]:
        """First hour in [i0, i1) that must run for real (i1 when none), and the float state rows."""
        grid = self.grid[i0:i1]
        n = len(grid)
        equity = book.spot.value(self.paths, i0, i1)
        wallet = self._funding(book, int(self.grid[i0 - 1]), grid)
        upnl = np.zeros(n)
        notional = np.zeros(n)
        worst_upnl = np.zeros(n)
        worst_notional = np.zeros(n)
        ok = ~self.unsafe[i0:i1]
        for h in book.held:
            p = self.paths[h.binance_id]
            mark = p.mark[i0:i1]
            upnl += h.perp_amt * (mark - h.entry)
            notional += abs(h.perp_amt) * mark
            # the worst mark since the stretch began (the simulator checks the whole jumped path)
            worst = (
                np.maximum.accumulate(p.mark_high[i0:i1])
                if h.perp_amt < 0
                else np.minimum.accumulate(p.mark_low[i0:i1])
            )
            worst_upnl += h.perp_amt * (worst - h.entry)
            worst_notional += abs(h.perp_amt) * worst
        margin = wallet + upnl
        equity = equity + margin
        rows = {
            "equity": equity,
            "ratio": np.where(notional > 0, margin / np.where(notional > 0, notional, 1), np.nan),
            "notional": notional,
        }
        if book.held:
            ratio = rows["ratio"]
            ok &= (ratio > self.low * (1 + BAND_MARGIN)) & (ratio < self.high * (1 - BAND_MARGIN))
            for h in book.held:  # and no hole ahead: the loop closes the pair then (runner._gaps_ahead)
                ok &= (self.paths[h.binance_id].mark[i0:i1] >= MIN_MARK) & ~self.blocked[h.binance_id][i0:i1]
            wallet_low = np.minimum.accumulate(np.minimum(wallet, book.wallet))
            ok &= wallet_low + worst_upnl > MM_SAFETY * book.mm_rate * worst_notional
            ok &= worst_notional <= MM_NOTIONAL_X * max(book.notional0, 1.0)
        scan = self.scan[i0:i1]
        if scan.any():
            ok &= ~scan | (self.bound.quiet(book.held, i0, i1, equity) if self.bound is not None else False)
        bad = np.flatnonzero(~(ok & ~np.isnan(equity)))
        end = i0 + (int(bad[0]) if len(bad) else n)
        return end, rows

    # ------------------------------------------------------------------ running a stretch

    async def run(
        self,
        book: Book,
        i0: int,
        end: int,
        rows: dict[str, np.ndarray],
        timeline: Timeline,
        in_market: dict[str, int],
        last_snapshot_ms: int | None,
        every_h: int,
    ) -> int | None:
        """Hours [i0, end) in jumps: to each funding-sync and balance-snapshot hour, then to the last hour,
        where the engine's jobs write what the hourly loop would have written. Returns the last snapshot time."""
        jobs = self.jobs
        times = [int(t) for t in self.grid[i0:end]]
        syncs = self._sync_hours(book, times)
        for t in times:
            snapshot = last_snapshot_ms is None or t - last_snapshot_ms >= every_h * HOUR_MS
            if not (snapshot or t in syncs or t == times[-1]):
                continue
            await jobs.step(t)
            await jobs.sync_funding()
            if snapshot:
                await jobs.snapshot_balances()
                last_snapshot_ms = t
        k = end - i0
        timeline.equity[i0:end] = rows["equity"][:k]
        timeline.collateral_ratio[i0:end] = rows["ratio"][:k]
        timeline.notional[i0:end] = rows["notional"][:k]
        for h in book.held:
            sym = self.unified[h.binance_id]
            in_market[sym] = in_market.get(sym, 0) + k
        self.hours_skipped += k
        self.stretches += 1
        return last_snapshot_ms

    def _sync_hours(self, book: Book, times: list[int]) -> set[int]:
        """The hours of ``times`` at which the hourly loop's funding sync first sees a held symbol's
        settlement (the first grid hour at or after it)."""
        out: set[int] = set()
        lo, hi = times[0] - HOUR_MS, times[-1]
        for h in book.held:
            ts = self.paths[h.binance_id].settle_ts
            inside = ts[(ts > lo) & (ts <= hi)]
            out.update(int(self.grid[k]) for k in np.searchsorted(self.grid, inside))
        return out

    async def advance(
        self, i: int, timeline: Timeline, in_market: dict[str, int], last_snapshot_ms: int | None, every_h: int
    ) -> tuple[int, int | None]:
        """From hour ``i``: run every certain hour in stretches; returns the first hour to run for real."""
        n = len(self.grid)
        while i < n:
            book = await self.book()
            if book is None:
                break
            limit = min(n, i + CHUNK)
            end, rows = self.certify(book, i, limit)
            if end == i:
                break
            last_snapshot_ms = await self.run(book, i, end, rows, timeline, in_market, last_snapshot_ms, every_h)
            i = end
            if end < limit:
                break
        return i, last_snapshot_ms
