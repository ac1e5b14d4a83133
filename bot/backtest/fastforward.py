"""Fast-forward: run a stretch of hours in one simulator jump when nothing in it can act.

While the book is settled (every live pair OPEN with matching legs, no open order or intent, the treasury
quiet) the hourly loop only repeats three checks, each of which can be decided ahead from the replayed
prices (``bot.backtest.paths``) and the positions, which do not change until something acts:

1. **Strategy** (scan hours): ``FundingCarry`` returns only holds and skips when
   - every held pair's forecast APR is above ``exit_threshold_apr`` (no exit rule fires), at most
     ``max_symbols`` are held (no ``exit_not_in_top_n``), and its resize target stays within
     ``resize_tolerance_fraction`` of the held size (or above it while entries are blocked by the
     forecast), for every order the ranking could take (the budget is bounded both ways);
   - no other symbol can enter: the slots are full, or its forecast is below ``entry_threshold_apr``.
2. **Treasury**: the collateral ratio stays strictly inside the band, so ``transfer_need`` is None.
3. **Liquidation**: the margin balance at the worst mark of the stretch stays far above maintenance.

Every test is done in float with a margin far above the float error (forecast: 1e-4 APR against a
measured error below 3e-6; quantities: 1e-6 relative plus one step and one tick), so an hour is only
skipped when the Decimal code would certainly decide the same. The stretch ends at the first hour that
is not certain, which then runs for real. The simulator jumps straight to the stretch's snapshot hours
and its end: it settles funding at each settlement's own instant and checks liquidation over the whole
path, which certificate 3 bounds. Funding is written to the ledger as the hourly sync would (each
payment recorded at the first grid hour at or after it), balance snapshots at their hours, in one
transaction each. Timeline rows come from the same float arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from bot.backtest.paths import SymbolPaths
from bot.domain import HOUR_MS, PairState, common_step, exchange_id
from bot.ledger.models import Wallet
from bot.ledger.repository import AssetBalance, EventRecord
from strategies.params import CarryParams

if TYPE_CHECKING:
    from bot.backtest.core import TickJobs
    from bot.backtest.result import Timeline

APR_MARGIN = 1e-4  # forecast: measured float-vs-Decimal error is below 3e-6 APR
REL_MARGIN = 1e-5  # quantities (float error ~1e-15; the sim's 1e-8 price quantum is added where it counts)
BAND_MARGIN = 1e-4  # collateral ratio thresholds, relative
PRICE_QUANTUM = 1e-8  # the simulator rounds every replayed price to this
MIN_MARK = 1e-3  # below this the price quantum is too coarse for the band margin: run for real
MM_SAFETY = 3.0  # margin balance must stay above this many times maintenance
CHUNK = 512  # hours certified per numpy pass
BOOK_DEPTH = 20  # levels the snapshot reads (SnapshotBuilder.book_depth)


@dataclass
class Held:
    """One live pair and its perp position, frozen for the stretch (floats for the certificates)."""

    binance_id: str
    qty: float  # hedged quantity (both legs)
    perp_amt: float  # signed position
    entry: float
    step: float  # the pair's common step
    ticks: tuple[float, float]  # spot, perp
    steps: tuple[float, float]
    half_spread: float  # the sim book's shape (fractions of mid)
    level_gap: float
    levels: int
    level_notional: float


@dataclass
class Book:
    """The account as the stretch starts; only funding moves it until something acts."""

    held: list[Held]
    spot_usdt: float
    spot_coins: dict[str, float]  # Binance id -> quantity (every priced spot asset)
    wallet: float  # futures USDT wallet
    mm_rate: float  # a maintenance ratio bound for notionals up to MM_NOTIONAL_X times the current one
    notional0: float


MM_NOTIONAL_X = 4.0


class FastForward:
    """Certifies stretches and runs them (see the module docstring)."""

    def __init__(self, jobs: TickJobs, paths: dict[str, SymbolPaths], grid: np.ndarray, scan: np.ndarray,
                 unsafe: np.ndarray, blocked: dict[str, np.ndarray], params: CarryParams, band: object,
                 strategy: str) -> None:
        self.jobs = jobs
        self.paths = paths
        self.grid = grid
        self.scan = scan
        self.unsafe = unsafe
        self.blocked = blocked  # unified -> bool per hour: not offered to the strategy for entry
        self.p = params
        self.strategy = strategy  # which certificate applies (an unknown strategy runs every scan)
        self.low = float(band.low)  # type: ignore[attr-defined]
        self.high = float(band.high)  # type: ignore[attr-defined]
        self.hours_skipped = 0
        self.stretches = 0
        self.unified = {sid: f"{sid[:-4]}/USDT" for sid in paths}

    # ------------------------------------------------------------------ the book

    async def book(self) -> Book | None:
        """The settled book, or None when something is in motion (then every hour runs for real)."""
        jobs = self.jobs
        core = jobs.core
        ex = core.exchange
        if not jobs._treasury_quiet or ex._live():
            return None
        if jobs._open_intents is None:
            jobs._open_intents = bool(await core.ledger.open_intents())
        if jobs._open_intents:
            return None
        await jobs._refresh_pairs()
        tol = self.p.hedge_tolerance_fraction
        held: list[Held] = []
        positions = {p.symbol: p for p in ex.futures.open_positions()}
        for sym, pair in sorted(jobs._live.items()):
            if pair.state is not PairState.OPEN:
                return None
            larger = max(pair.spot_qty, pair.perp_qty)
            if larger <= 0 or abs(pair.spot_qty - pair.perp_qty) / larger > tol:
                return None
            sid = exchange_id(sym)
            pos = positions.pop(sid, None)
            if pos is None or pos.isolated or pos.amt != -pair.perp_qty:
                return None
            spot_spec, perp_spec = ex._spec("spot", sid), ex._spec("perp", sid)
            cfg = ex._book_cfg(sid)
            held.append(Held(
                sid, float(pair.hedged_qty), float(pos.amt), float(pos.entry_price),
                float(common_step(spot_spec.step_size, perp_spec.step_size)),
                (float(spot_spec.tick_size), float(perp_spec.tick_size)),
                (float(spot_spec.step_size), float(perp_spec.step_size)),
                float(cfg.spread_bps) / 2e4, float(cfg.level_gap_bps) / 1e4, cfg.levels, float(cfg.level_notional),
            ))
        if positions or ex.futures.other_assets:
            return None  # a position without a pair, or non-USDT futures assets: not modelled here
        coins: dict[str, float] = {}
        usdt = 0.0
        for asset, (free, locked) in ex.spot_account().balances.items():
            amount = free + locked
            if not amount:
                continue
            if asset == "USDT":
                usdt = float(amount)
            elif f"{asset}USDT" in self.paths:
                coins[f"{asset}USDT"] = float(amount)
            else:
                return None
        notional0 = sum(abs(h.perp_amt) * float(ex._mark(h.binance_id)) for h in held)
        mm_rate = 0.0
        for h in held:
            cap = Decimal(repr(MM_NOTIONAL_X * max(notional0, 1.0)))
            rates = [b.maint_margin_ratio for b in ex._brackets[h.binance_id] if b.notional_floor <= cap]
            mm_rate = max(mm_rate, float(max(rates)))
        return Book(held, usdt, coins, float(ex.futures.wallet), mm_rate, notional0)

    # ------------------------------------------------------------------ the certificates

    def _funding(self, book: Book, t0: int, times: np.ndarray) -> np.ndarray:
        """Futures wallet at each of ``times``: the start wallet plus funding settled in (t0, t]."""
        wallet = np.full(len(times), book.wallet)
        for h in book.held:
            p = self.paths[h.binance_id]
            a = np.searchsorted(p.settle_ts, t0, side="right")
            b = np.searchsorted(p.settle_ts, times[-1], side="right")
            if b <= a:
                continue
            ts = p.settle_ts[a:b]
            pay = -h.perp_amt * p.settle_mark[a:b] * p.settle_rate[a:b]
            if np.isnan(pay).any():
                return np.full(len(times), np.nan)
            k = np.searchsorted(ts, times, side="right")
            wallet += np.concatenate(([0.0], np.cumsum(pay)))[k]
        return wallet

    def certify(self, book: Book, i0: int, i1: int) -> tuple[int, dict[str, np.ndarray]]:
        """First hour in [i0, i1) that must run for real (i1 when none), and the float state rows."""
        grid = self.grid[i0:i1]
        n = len(grid)
        equity = np.full(n, book.spot_usdt)
        for sid, qty in book.spot_coins.items():
            equity += qty * self.paths[sid].spot[i0:i1]
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
            worst = np.maximum.accumulate(p.mark_high[i0:i1]) if h.perp_amt < 0 else np.minimum.accumulate(
                p.mark_low[i0:i1])
            worst_upnl += h.perp_amt * (worst - h.entry)
            worst_notional += abs(h.perp_amt) * worst
        margin = wallet + upnl
        equity = equity + margin
        rows = {"equity": equity, "ratio": np.where(notional > 0, margin / np.where(notional > 0, notional, 1), np.nan),
                "notional": notional}
        if book.held:
            ratio = rows["ratio"]
            ok &= (ratio > self.low * (1 + BAND_MARGIN)) & (ratio < self.high * (1 - BAND_MARGIN))
            for h in book.held:
                ok &= self.paths[h.binance_id].mark[i0:i1] >= MIN_MARK
            wallet_low = np.minimum.accumulate(np.minimum(wallet, book.wallet))
            ok &= wallet_low + worst_upnl > MM_SAFETY * book.mm_rate * worst_notional
            ok &= worst_notional <= MM_NOTIONAL_X * max(book.notional0, 1.0)
        scan = self.scan[i0:i1]
        if scan.any():
            quiet = {
                "carry": self._strategy_quiet,
                "always-on-btc": self._always_on_quiet,
                "top-n": self._top_n_quiet,
            }.get(self.strategy)
            ok &= ~scan | (quiet(book, i0, i1, equity) if quiet is not None else False)
        bad = np.flatnonzero(~(ok & ~np.isnan(equity)))
        end = i0 + (int(bad[0]) if len(bad) else n)
        return end, rows

    def _strategy_quiet(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
        """bool per hour: ``FundingCarry.evaluate`` returns only holds and skips (module docstring)."""
        p = self.p
        n = i1 - i0
        quiet = np.ones(n, dtype=bool)
        held_ids = {h.binance_id for h in book.held}
        if len(book.held) > p.max_symbols:
            return np.zeros(n, dtype=bool)
        exit_thr = float(p.exit_threshold_apr)
        entry_thr = float(p.entry_threshold_apr)
        if exit_thr <= 0:
            return np.zeros(n, dtype=bool)  # the negative-forecast rule would need its own bound
        # candidates: every other symbol the snapshot would offer for entry
        if len(book.held) < p.max_symbols:
            for sid, path in self.paths.items():
                if sid in held_ids:
                    continue
                offered = ~self.blocked[sid][i0:i1]
                apr = path.apr[i0:i1]
                below = path.steady[i0:i1] & (apr < entry_thr - APR_MARGIN)
                quiet &= ~offered | below
        if not book.held:
            return quiet
        cap = np.maximum(capital, 0.0)
        f = float(p.max_per_symbol_fraction)
        cpn = float(p.capital_per_notional)
        total = cap * float(p.max_total_fraction)
        tol = float(p.resize_tolerance_fraction)
        liq_f = float(p.liquidity_fraction)
        ask_lo: dict[str, np.ndarray] = {}
        ask_hi: dict[str, np.ndarray] = {}
        for h in book.held:
            path = self.paths[h.binance_id]
            apr = path.apr[i0:i1]
            quiet &= path.steady[i0:i1] & (apr >= exit_thr + APR_MARGIN)
            spot = path.spot[i0:i1]
            ask_lo[h.binance_id] = (spot - PRICE_QUANTUM) * (1 + h.half_spread) * (1 - REL_MARGIN)
            ask_hi[h.binance_id] = (spot + PRICE_QUANTUM) * (1 + h.half_spread) * (1 + REL_MARGIN) + h.ticks[0]
        for h in book.held:
            sid = h.binance_id
            path = self.paths[sid]
            lo_a, hi_a = ask_lo[sid], ask_hi[sid]
            per_lo = cap * f / (hi_a * cpn)
            per_hi = cap * f / (lo_a * cpn)
            # Pairs ranked before this one (higher forecast; the symbol breaks ties) have taken their held
            # size; the others still hold their reservation (held size within its own cap). Where two
            # forecasts are too close to rank for certain, either may come first: bound both ways.
            others_max = np.zeros(i1 - i0)
            others_min = np.zeros(i1 - i0)
            apr_h = path.apr[i0:i1]
            for o in book.held:
                if o is h:
                    continue
                apr_o = self.paths[o.binance_id].apr[i0:i1]
                o_first = self.unified[o.binance_id] < self.unified[sid]  # the strategy's tie-break
                tie = (path.inputs[i0:i1] == self.paths[o.binance_id].inputs[i0:i1]) & (path.inputs[i0:i1] >= 0)
                unsure = (np.abs(apr_o - apr_h) < 2 * APR_MARGIN) & ~tie
                before = np.where(tie, o_first, apr_o > apr_h)
                o_per = cap * f / (ask_hi[o.binance_id] * cpn)
                held_max = o.qty * ask_hi[o.binance_id] * cpn
                held_min = o.qty * ask_lo[o.binance_id] * cpn
                reserved_max = np.minimum(o.qty, cap * f / (ask_lo[o.binance_id] * cpn)) * ask_hi[o.binance_id] * cpn
                reserved_min = np.minimum(o.qty, o_per) * ask_lo[o.binance_id] * cpn
                others_max += np.where(before | unsure, held_max, reserved_max)
                others_min += np.where(before & ~unsure, held_min, reserved_min)
            budget_lo = np.maximum(total - others_max, 0.0) / (hi_a * cpn)
            budget_hi = np.maximum(total - others_min, 0.0) / (lo_a * cpn)
            liq = liq_f * self._depth_low(path, h, i0, i1)
            desired_hi = np.minimum(per_hi, budget_hi) * (1 + REL_MARGIN)
            desired_lo = np.minimum(np.minimum(per_lo, h.qty + liq), budget_lo) * (1 - REL_MARGIN) - h.step
            q = h.qty
            keep_low = desired_lo >= q * (1 - tol) + q * REL_MARGIN
            keep_high = desired_hi <= q * (1 + tol) - q * REL_MARGIN
            growth_blocked = path.apr[i0:i1] < entry_thr - APR_MARGIN
            quiet &= keep_low & (keep_high | growth_blocked)
        return quiet

    # ------------------------------------------------------------------ the baselines (strategies/baselines.py)

    def _asks(self, h: Held, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        spot = self.paths[h.binance_id].spot[i0:i1]
        return ((spot - PRICE_QUANTUM) * (1 + h.half_spread) * (1 - REL_MARGIN),
                (spot + PRICE_QUANTUM) * (1 + h.half_spread) * (1 + REL_MARGIN) + h.ticks[0])

    def _baseline_keeps(
        self, h: Held, i0: int, i1: int, capital: np.ndarray, taken_before: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """``_hold_or_size`` keeps ``h``: its target min(per-symbol cap, liquidity cap, budget left after the
        pairs sized before it) stays within the resize tolerance. ``taken_before``: their capital (lo, hi)."""
        p = self.p
        cpn = float(p.capital_per_notional)
        f = float(p.max_per_symbol_fraction)
        tol = float(p.resize_tolerance_fraction)
        cap = np.maximum(capital, 0.0)
        lo_a, hi_a = self._asks(h, i0, i1)
        total = cap * float(p.max_total_fraction)
        path = self.paths[h.binance_id]
        liq = float(p.liquidity_fraction) * self._depth_low(path, h, i0, i1)
        desired_lo = np.minimum(np.minimum(cap * f / (hi_a * cpn), liq),
                                np.maximum(total - taken_before[1], 0.0) / (hi_a * cpn)) * (1 - REL_MARGIN) - h.step
        desired_hi = np.minimum(cap * f / (lo_a * cpn), np.maximum(total - taken_before[0], 0.0) / (lo_a * cpn))
        desired_hi = desired_hi * (1 + REL_MARGIN)
        q = h.qty
        have_data = ~np.isnan(path.perp[i0:i1]) & ~np.isnan(path.spot[i0:i1])
        keep = (desired_lo >= q * (1 - tol) + q * REL_MARGIN) & (desired_hi <= q * (1 + tol) - q * REL_MARGIN)
        return have_data & keep

    def _always_on_quiet(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
        """``AlwaysOnBTC``: only its pair is held and keeps its size, or it is not held and not offered."""
        n = i1 - i0
        target = "BTCUSDT"
        if any(h.binance_id != target for h in book.held):
            return np.zeros(n, dtype=bool)
        if not book.held:
            offered = ~self.blocked[target][i0:i1] if target in self.blocked else np.zeros(n, dtype=bool)
            return ~offered
        zero = np.zeros(n)
        return self._baseline_keeps(book.held[0], i0, i1, capital, (zero, zero))

    def _top_n_quiet(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
        """``TopNByLastRate``: the held set is exactly the top N by last settled rate among the offered
        symbols, and each held pair keeps its size with the budget taken in rank order."""
        n = i1 - i0
        held = {h.binance_id: h for h in book.held}
        ids = sorted(self.paths, key=lambda sid: self.unified[sid])  # the strategy breaks ties by symbol
        rates = np.full((n, len(ids)), np.nan)
        for col, sid in enumerate(ids):
            path = self.paths[sid]
            k = np.searchsorted(path.settle_ts, self.grid[i0:i1], side="right")
            last = np.where(k >= 1, path.settle_rate[np.maximum(k - 1, 0)], np.nan)
            data = ~np.isnan(path.perp[i0:i1]) & ~np.isnan(path.spot[i0:i1])
            offered = data & (True if sid in held else ~self.blocked[sid][i0:i1])
            rates[:, col] = np.where(offered, last, np.nan)
            # the last rate is what the snapshot's cached history says only while intervals are regular
            quiet_col = path.steady[i0:i1] | ~offered
            rates[:, col] = np.where(quiet_col, rates[:, col], np.nan)
            if sid in held:
                rates[:, col] = np.where(data & path.steady[i0:i1], last, np.nan)
        known = ~np.isnan(rates)
        quiet = np.ones(n, dtype=bool)
        for sid in ids:
            if sid not in held:
                path = self.paths[sid]
                offered = ~np.isnan(path.perp[i0:i1]) & ~np.isnan(path.spot[i0:i1]) & ~self.blocked[sid][i0:i1]
                quiet &= path.steady[i0:i1] | ~offered
        for col, sid in enumerate(ids):
            if sid in held and not known[:, col].all():
                quiet &= known[:, col]  # a held pair without data or a settled rate: run for real
        r = np.nan_to_num(rates, nan=-np.inf)
        rank = np.zeros((n, len(ids)), dtype=np.int64)
        for col in range(len(ids)):
            before = (r > r[:, [col]]) | ((r == r[:, [col]]) & (np.arange(len(ids)) < col))
            rank[:, col] = (before & known).sum(axis=1)
        top = known & (rank < self.p.max_symbols) & (r > 0)
        cpn = float(self.p.capital_per_notional)
        for col, sid in enumerate(ids):
            want = top[:, col]
            quiet &= want if sid in held else ~want
        for col, sid in enumerate(ids):
            h = held.get(sid)
            if h is None:
                continue
            lo = np.zeros(n)
            hi = np.zeros(n)
            for ocol, oid in enumerate(ids):
                o = held.get(oid)
                if o is None or o is h:
                    continue
                first = rank[:, ocol] < rank[:, col]
                a_lo, a_hi = self._asks(o, i0, i1)
                lo += np.where(first, o.qty * a_lo * cpn, 0.0)
                hi += np.where(first, o.qty * a_hi * cpn, 0.0)
            quiet &= self._baseline_keeps(h, i0, i1, capital, (lo, hi))
        return quiet

    def _depth_low(self, path: SymbolPaths, h: Held, i0: int, i1: int) -> np.ndarray:
        """A lower bound of the thinnest book side of both legs (base quantity over 20 levels)."""
        out = None
        legs = ((path.spot[i0:i1], h.ticks[0], h.steps[0]), (path.perp[i0:i1], h.ticks[1], h.steps[1]))
        levels = min(h.levels, BOOK_DEPTH)
        for mid, tick, step in legs:
            # every level holds at least what the deepest (dearest) ask level holds
            px = mid * (1 + h.half_spread + h.level_gap * (levels - 1)) * (1 + REL_MARGIN) + (levels + 1) * tick
            total = levels * np.maximum(h.level_notional / px - step, 0.0)
            out = total if out is None else np.minimum(out, total)
        assert out is not None
        return out

    # ------------------------------------------------------------------ running a stretch

    async def run(self, book: Book, i0: int, end: int, rows: dict[str, np.ndarray], timeline: Timeline,
                  in_market: dict[str, int], last_snapshot_ms: int | None, every_h: int) -> int | None:
        """Hours [i0, end) in jumps: to each balance-snapshot hour, then to the last hour; the ledger gets
        what the hourly loop would have written. Returns the last snapshot time."""
        jobs = self.jobs
        core = jobs.core
        times = [int(t) for t in self.grid[i0:end]]
        snapshots: list[tuple[str, Wallet, int, dict[str, AssetBalance]]] = []
        events: list[EventRecord] = []
        for t in times:
            if last_snapshot_ms is None or t - last_snapshot_ms >= every_h * HOUR_MS:
                core.clock.set(t)
                core.exchange.step(t)
                balances = await core.venue.fetch_balances()
                jobs._last_balances = balances
                snapshots += jobs.balance_rows(t, balances)
                prices = jobs.prices_event(t)
                if prices is not None:
                    events.append(prices)
                last_snapshot_ms = t
        core.clock.set(times[-1])
        core.exchange.step(times[-1])
        payments = await jobs.funding_records(lambda ms: int(self.grid[np.searchsorted(self.grid, ms)]))
        if payments:
            await core.ledger.record_funding_payments(payments)
        if snapshots:
            await core.ledger.record_balance_snapshots(snapshots)
        if events:
            await core.ledger.add_events(events)
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

    async def advance(self, i: int, timeline: Timeline, in_market: dict[str, int], last_snapshot_ms: int | None,
                      every_h: int) -> tuple[int, int | None]:
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
