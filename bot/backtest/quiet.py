"""Which scan hours a strategy provably answers with holds and skips only (fast-forward certificates).

Each certificate replays, in float on the arrays of ``bot.backtest.paths``, the decision rules of one
strategy for a settled book (``Book``: the pairs held and their sizes do not change until something acts)
and says, per hour, whether every target would be passive (hold or skip), so the executor would do
nothing. Every comparison keeps a margin far above the float error and the simulator's price quantum; an
hour that is not certain is left to the real strategy.

- ``carry`` (``FundingCarry``): no exit rule fires (the forecast's expected loss over the horizon stays
  below a lower bound of a round trip's cost), at most ``max_symbols`` held, each held size within
  ``resize_tolerance_fraction`` of its target (the others using their reservations, whatever the ranking),
  or above it while the forecast or the break-even blocks growth; no entry (every offered symbol's forecast below
  ``entry_threshold_apr``, or too low for any size to break even in time: see
  ``StrategyQuiet.break_even_floor``; with every slot held, it may instead be too low to switch in: its
  forecast less its round trip / ``max_break_even_fraction`` below the lowest held forecast plus that
  pair's round trip / ``max_break_even_fraction``).
- ``always_on`` (``AlwaysOn``; ``always_on_btc`` over BTC alone): only its symbols are held, each at a size
  within tolerance of its equal share, and none of its other symbols is offered.
- ``top_n`` (``TopNByLastRate``): the held set is the top N by last settled rate and keeps its sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from bot.backtest.data import unified_symbol
from bot.backtest.paths import SymbolPaths
from strategies.params import CarryParams

APR_MARGIN = 1e-4  # forecast: measured float-vs-Decimal error is below 3e-6 APR
REL_MARGIN = 1e-5  # quantities (float error ~1e-15; the sim's 1e-8 price quantum is added where it counts)
PRICE_QUANTUM = 1e-8  # the simulator rounds every replayed price to this
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
class SpotHoldings:
    """The spot wallet (free + locked) in floats, valued along the replayed prices."""

    usdt: float
    coins: dict[str, float]  # Binance id -> quantity, for every coin the data set prices
    unpriced: bool  # some other asset is held: the simulator values it at 0

    @classmethod
    def read(cls, balances: Mapping[str, tuple[Decimal, Decimal]], paths: Mapping[str, SymbolPaths]) -> SpotHoldings:
        usdt, coins, unpriced = 0.0, {}, False
        for asset, (free, locked) in balances.items():
            amount = float(free + locked)
            if not amount:
                continue
            if asset == "USDT":
                usdt = amount
            elif f"{asset}USDT" in paths:
                coins[f"{asset}USDT"] = amount
            else:
                unpriced = True
        return cls(usdt, coins, unpriced)

    def value(self, paths: Mapping[str, SymbolPaths], i0: int, i1: int) -> np.ndarray:
        """USDT value at each grid hour in [i0, i1), as ``EngineLoop._capital_from`` values the spot wallet:
        the replayed spot price, the last known one in a gap, 0 before the first."""
        out = np.full(i1 - i0, self.usdt)
        for sid, qty in self.coins.items():
            out += qty * np.nan_to_num(paths[sid].spot[i0:i1], nan=0.0)
        return out


@dataclass(frozen=True)
class BookShape:
    """The simulator's top of book for one symbol: ticks and the half spread (fraction of mid)."""

    spot_tick: float
    perp_tick: float
    half_spread: float


@dataclass
class Book:
    """The account as the stretch starts; only funding moves it until something acts."""

    held: list[Held]
    spot: SpotHoldings
    wallet: float  # futures USDT wallet
    mm_rate: float  # a maintenance ratio bound for notionals up to MM_NOTIONAL_X times the current one
    notional0: float


class StrategyQuiet:
    """The certificates of one run (its prices, parameters and which symbols are offered for entry)."""

    def __init__(
        self,
        paths: dict[str, SymbolPaths],
        grid: np.ndarray,
        blocked: dict[str, np.ndarray],
        params: CarryParams,
        fees: tuple[float, float] | None = None,
        books: Mapping[str, BookShape] | None = None,
    ) -> None:
        self.paths = paths
        self.grid = grid
        self.blocked = blocked  # Binance id -> bool per hour: not offered to the strategy for entry
        self.p = params
        self.unified = {sid: unified_symbol(sid) for sid in paths}
        # Binance id -> a round trip's cost per notional, as APR over the horizon, per hour (0: no bound):
        # below the break-even floor no entry pays in time; a held pair exits only when its forecast is
        # below minus this (its expected loss exceeds leaving and coming back)
        books = books or {}
        horizon = float(params.hold_horizon_hours)
        self.cost_apr = {
            sid: self.cost_floor(path, fees, books[sid]) * 8760.0 / horizon
            if fees is not None and sid in books
            else np.zeros(len(grid))
            for sid, path in paths.items()
        }
        # Binance id -> forecast APR per hour below which no entry breaks even in time (-inf: no bound)
        self.entry_floor = {
            sid: self.break_even_floor(self.cost_apr[sid] * horizon / 8760.0)
            if fees is not None and sid in books
            else np.full(len(grid), -np.inf)
            for sid in paths
        }

    def cost_floor(self, path: SymbolPaths, fees: tuple[float, float], book: BookShape) -> np.ndarray:
        """Per hour, a lower bound of ``FundingCarry``'s round-trip cost per unit of perp notional, at ANY
        size (strategies/economics.py, mids are the books' (bid + ask) / 2).

        Per unit of quantity the round trip costs ``2 * (spot_mid * spot_fee + perp_mid * perp_fee)`` in
        fees, at least each leg's top-of-book spread ``ask - bid`` in slippage (any size crosses it in and
        out; walking deeper costs more) and ``perp_mid * basis_cost_bps / 1e4``.

        The sim's top of book is its mid plus/minus the half spread, rounded out to the tick; here every
        piece is bounded on the cheap side: the price quantum on the mid, 1e-6 tick on each rounding, and a
        mid within half a tick of the price. NaN prices give NaN, which certifies nothing."""
        spot_fee, perp_fee = fees
        spot, perp = path.spot, path.perp
        s_lo, s_hi, p_lo, p_hi = spot - PRICE_QUANTUM, spot + PRICE_QUANTUM, perp - PRICE_QUANTUM, perp + PRICE_QUANTUM
        hs = book.half_spread

        def spread_low(lo: np.ndarray, hi: np.ndarray, tick: float) -> np.ndarray:
            ask = np.ceil(lo * (1 + hs) / tick - 1e-6) * tick
            bid = np.floor(hi * (1 - hs) / tick + 1e-6) * tick
            return np.maximum(ask - bid, 0.0)

        perp_mid_hi = p_hi + book.perp_tick / 2
        spot_mid_lo = np.maximum(s_lo - book.spot_tick / 2, 0.0)
        return (
            2 * (spot_mid_lo / perp_mid_hi * spot_fee + perp_fee)
            + (spread_low(s_lo, s_hi, book.spot_tick) + spread_low(p_lo, p_hi, book.perp_tick)) / perp_mid_hi
            + float(self.p.basis_cost_bps) / 1e4
        ) * (1 - REL_MARGIN)

    def break_even_floor(self, cost: np.ndarray) -> np.ndarray:
        """Per hour, a forecast APR below which ``FundingCarry`` rejects an entry (or a growth, or a switch
        in) at ANY size for its break-even (``skip_break_even_too_long``): funding pays ``perp_mid * apr /
        8760`` an hour, so the break-even is at least ``cost / perp_mid * 8760 / apr`` hours, and the entry
        is rejected when that exceeds the limit plus the 0.01 h it is rounded to. ``cost``: ``cost_floor``."""
        limit = float(self.p.hold_horizon_hours * self.p.max_break_even_fraction) + 0.01
        return cost * 8760.0 / limit - APR_MARGIN

    def for_strategy(self, name: str) -> Any:
        """The certificate of a backtest strategy name, or None (that strategy runs every scan)."""
        certificates = {
            "carry": self.carry,
            "always-on": self.always_on,
            "always-on-btc": self.always_on_btc,
            "top-n": self.top_n,
        }
        return certificates.get(name)

    def carry(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
        """bool per hour: ``FundingCarry.evaluate`` returns only holds and skips (module docstring)."""
        p = self.p
        n = i1 - i0
        quiet = np.ones(n, dtype=bool)
        held_ids = {h.binance_id for h in book.held}
        if len(book.held) > p.max_symbols:
            return np.zeros(n, dtype=bool)
        entry_thr = float(p.entry_threshold_apr)
        full = len(book.held) == p.max_symbols
        # a switch needs (candidate forecast - held forecast) * max_break_even_fraction above both round
        # trips (APR over the horizon): so the candidate's forecast less its round trip / fraction must beat
        # some held pair's forecast plus its round trip / fraction; below the least of those, none switches
        frac = float(p.max_break_even_fraction)
        switch_bar = np.full(n, np.inf)
        for h in book.held:
            path = self.paths[h.binance_id]
            switch_bar = np.minimum(switch_bar, path.apr[i0:i1] + self.cost_apr[h.binance_id][i0:i1] / frac)
        # candidates: every other symbol the snapshot would offer for entry
        for sid, path in self.paths.items():
            if sid in held_ids:
                continue
            offered = ~self.blocked[sid][i0:i1]
            apr = path.apr[i0:i1]
            below = path.steady[i0:i1] & ((apr < entry_thr - APR_MARGIN) | (apr < self.entry_floor[sid][i0:i1]))
            if full:
                below |= path.steady[i0:i1] & (apr - self.cost_apr[sid][i0:i1] / frac < switch_bar - 2 * APR_MARGIN)
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
            # exit_negative_funding: the expected loss over the horizon exceeds a round trip
            quiet &= path.steady[i0:i1] & (apr >= APR_MARGIN - self.cost_apr[h.binance_id][i0:i1])
            spot = path.spot[i0:i1]
            ask_lo[h.binance_id] = (spot - PRICE_QUANTUM) * (1 + h.half_spread) * (1 - REL_MARGIN)
            ask_hi[h.binance_id] = (spot + PRICE_QUANTUM) * (1 + h.half_spread) * (1 + REL_MARGIN) + h.ticks[0]
        for h in book.held:
            sid = h.binance_id
            path = self.paths[sid]
            lo_a, hi_a = ask_lo[sid], ask_hi[sid]
            per_lo = cap * f / (hi_a * cpn)
            per_hi = cap * f / (lo_a * cpn)
            # Every other kept pair uses its reservation: its held size within its own per-symbol cap
            # (FundingCarry.keep), whatever the ranking order.
            others_max = np.zeros(i1 - i0)
            others_min = np.zeros(i1 - i0)
            for o in book.held:
                if o is h:
                    continue
                o_per = cap * f / (ask_hi[o.binance_id] * cpn)
                others_max += np.minimum(o.qty, cap * f / (ask_lo[o.binance_id] * cpn)) * ask_hi[o.binance_id] * cpn
                others_min += np.minimum(o.qty, o_per) * ask_lo[o.binance_id] * cpn
            budget_lo = np.maximum(total - others_max, 0.0) / (hi_a * cpn)
            budget_hi = np.maximum(total - others_min, 0.0) / (lo_a * cpn)
            liq = liq_f * self._depth_low(path, h, i0, i1)
            desired_hi = np.minimum(per_hi, budget_hi) * (1 + REL_MARGIN)
            desired_lo = np.minimum(np.minimum(per_lo, h.qty + liq), budget_lo) * (1 - REL_MARGIN) - h.step
            q = h.qty
            keep_low = desired_lo >= q * (1 - tol) + q * REL_MARGIN
            keep_high = desired_hi <= q * (1 + tol) - q * REL_MARGIN
            # growth needs the entry rules and the break-even at the larger size (else it holds)
            apr_h = path.apr[i0:i1]
            growth_blocked = (apr_h < entry_thr - APR_MARGIN) | (apr_h < self.entry_floor[sid][i0:i1])
            quiet &= keep_low & (keep_high | growth_blocked)
        return quiet

    # ------------------------------------------------------------------ the baselines (strategies/baselines.py)

    def _asks(self, h: Held, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        spot = self.paths[h.binance_id].spot[i0:i1]
        return (
            (spot - PRICE_QUANTUM) * (1 + h.half_spread) * (1 - REL_MARGIN),
            (spot + PRICE_QUANTUM) * (1 + h.half_spread) * (1 + REL_MARGIN) + h.ticks[0],
        )

    def _baseline_keeps(
        self,
        h: Held,
        i0: int,
        i1: int,
        capital: np.ndarray,
        taken_before: tuple[np.ndarray, np.ndarray],
        weight: float | None = None,
    ) -> np.ndarray:
        """``_hold_or_size`` keeps ``h``: its target min(per-symbol cap, liquidity cap, ``weight`` of capital
        when given, budget left after the pairs sized before it) stays within the resize tolerance.
        ``taken_before``: their capital (lo, hi)."""
        p = self.p
        cpn = float(p.capital_per_notional)
        f = float(p.max_per_symbol_fraction) if weight is None else min(float(p.max_per_symbol_fraction), weight)
        tol = float(p.resize_tolerance_fraction)
        cap = np.maximum(capital, 0.0)
        lo_a, hi_a = self._asks(h, i0, i1)
        total = cap * float(p.max_total_fraction)
        path = self.paths[h.binance_id]
        liq = float(p.liquidity_fraction) * self._depth_low(path, h, i0, i1)
        desired_lo = (
            np.minimum(np.minimum(cap * f / (hi_a * cpn), liq), np.maximum(total - taken_before[1], 0.0) / (hi_a * cpn))
            * (1 - REL_MARGIN)
            - h.step
        )
        desired_hi = np.minimum(cap * f / (lo_a * cpn), np.maximum(total - taken_before[0], 0.0) / (lo_a * cpn))
        desired_hi = desired_hi * (1 + REL_MARGIN)
        q = h.qty
        have_data = ~np.isnan(path.perp[i0:i1]) & ~np.isnan(path.spot[i0:i1])
        keep = (desired_lo >= q * (1 - tol) + q * REL_MARGIN) & (desired_hi <= q * (1 + tol) - q * REL_MARGIN)
        return have_data & keep

    def always_on(
        self, book: Book, i0: int, i1: int, capital: np.ndarray, symbols: tuple[str, ...] | None = None
    ) -> np.ndarray:
        """``AlwaysOn`` over ``symbols`` (Binance ids; None: all): only they are held, none of the others
        is offered (it would be entered), so the held ones are the N sharing the total cap, and each keeps
        its size against its own share."""
        n = i1 - i0
        mine = set(self.paths) if symbols is None else set(symbols)
        held = {h.binance_id: h for h in book.held}
        if any(sid not in mine for sid in held):
            return np.zeros(n, dtype=bool)
        quiet = np.ones(n, dtype=bool)
        for sid in mine - set(held):
            if sid in self.blocked:
                quiet &= self.blocked[sid][i0:i1]  # not offered: no data or a gap ahead
        if not held:
            return quiet
        weight = float(self.p.max_total_fraction) / len(held)
        zero = np.zeros(n)
        for h in held.values():  # each share is sized on its own (no budget shared between them)
            quiet &= self._baseline_keeps(h, i0, i1, capital, (zero, zero), weight)
        return quiet

    def always_on_btc(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
        """``AlwaysOnBTC``: ``AlwaysOn`` over BTCUSDT alone."""
        return self.always_on(book, i0, i1, capital, ("BTCUSDT",))

    def top_n(self, book: Book, i0: int, i1: int, capital: np.ndarray) -> np.ndarray:
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
