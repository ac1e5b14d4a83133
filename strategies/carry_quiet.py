"""``FundingCarry``'s quiet-hours bound (``FundingCarry.quiet_hours``): the scan hours at which its rules,
replayed in float over the whole grid, certainly return only holds and skips (strategies/quiet.py).

Every threshold comes from the function the strategy decides with: the forecast is
``strategies.forecast``'s over the grid (``forecast_apr_hours``, sharing its blend and settlement count),
the round trip's cost its fee and basis terms (``strategies.economics.round_trip_fees``, ``basis_cost``,
``cost_apr``), the break-even limit, the exit rule and the switch rule its own
(``break_even_limit_hours``, ``holding_loses``, ``switch_pays``), the resize band
``strategies.sizing.resize_band``. For a settled book (the pairs held and their sizes do not change) an
hour is quiet when:

- no exit rule fires (the forecast's expected loss over the horizon stays below a lower bound of a round
  trip's cost), at most ``max_symbols`` held, each held size inside its resize band against its target
  (the others using their reservations, whatever the ranking), or above it while the forecast or the
  break-even blocks growth;
- no entry: every offered symbol's forecast is below ``entry_threshold_apr``, or too low for any size to
  break even in time (``break_even_floor``); with every slot held it may instead be too low to switch in
  against any held pair (``switch_pays`` at the best gain, the least cost).

``entry_possible`` is the flat book's cruder bound (no forecast needed): at hours where no symbol's
forecast could reach the entry threshold, whatever the history, nothing can open a pair. With ``M`` the
largest rate settled in the 32 days up to the next settlement (the predicted rate counted too), ``B`` the
baseline per hour, ``b`` its weight and ``I`` the smallest interval among those settlements, every
per-hour rate is at most ``max(M, 0) / I``, so::

    forecast APR <= (max(M, 0) + horizon * max((1 - b) * max(M, 0) / I + b * B, 0)) / horizon * 8760

and an entry also needs its break-even within the limit, whose round trip costs at least both legs' fees
in and out plus the basis cost, with the spot price at least ``SPOT_PERP_FLOOR`` of the perp's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bot.domain import DAY_MS
from strategies.economics import (
    HOURS,
    basis_cost,
    break_even_limit_hours,
    cost_apr,
    holding_loses,
    round_trip_fees,
    switch_pays,
)
from strategies.forecast import forecast_apr_hours
from strategies.params import CarryParams
from strategies.quiet import (
    APR_MARGIN,
    PRICE_QUANTUM,
    REL_MARGIN,
    BookShape,
    Bools,
    Floats,
    HeldPair,
    MarketHours,
    QuietView,
    ask_bounds,
    depth_low,
)
from strategies.sizing import resize_band

LOOKBACK_MS = 32 * DAY_MS  # the snapshot's funding history reaches 30 days back; 2 days of slack
SAFETY = 0.999  # ``entry_possible``: skip only when the bound is clearly below the threshold
SPOT_PERP_FLOOR = 0.9  # spot/perp price ratio assumed at worst (real hourly basis stays within a few %)


class CarryQuiet:
    """The bound of one run: the forecast, the round trip's cost floor and the break-even floor per symbol
    and hour, computed once."""

    def __init__(self, params: CarryParams, view: QuietView) -> None:
        self.p = params
        self.view = view
        n = len(view.grid)
        horizon = float(params.hold_horizon_hours)
        self.apr: dict[str, Floats] = {}
        self.steady: dict[str, Bools] = {}
        # Binance id -> a round trip's cost per notional, as APR over the horizon, per hour (0: no bound):
        # below the break-even floor no entry pays in time; a held pair exits only when its forecast is
        # below minus this (its expected loss exceeds leaving and coming back)
        self.cost_apr: dict[str, Floats] = {}
        # Binance id -> forecast APR per hour below which no entry breaks even in time (-inf: no bound)
        self.entry_floor: dict[str, Floats] = {}
        for sid, m in view.markets.items():
            self.apr[sid], self.steady[sid] = forecast_apr_hours(
                m.settle_ts, m.settle_rate, m.predicted, view.grid, params, view.history_settlements
            )
            if m.shape is None:
                self.cost_apr[sid] = np.zeros(n)
                self.entry_floor[sid] = np.full(n, -np.inf)
                continue
            floor = self.cost_floor(m, m.shape)
            self.cost_apr[sid] = cost_apr(floor, np.ones(n), np.full(n, horizon))
            self.entry_floor[sid] = self.break_even_floor(floor)

    def cost_floor(self, m: MarketHours, shape: BookShape) -> Floats:
        """Per hour, a lower bound of the round-trip cost per unit of perp notional, at ANY size
        (``strategies.economics.pair_economics``; mids are the books' (bid + ask) / 2).

        Per unit of quantity the round trip costs its fees (``round_trip_fees``), at least each leg's
        top-of-book spread ``ask - bid`` in slippage (any size crosses it in and out; walking deeper costs
        more) and the basis cost (``basis_cost``).

        The replayed top of book is the mid plus/minus the half spread, rounded out to the tick; here every
        piece is bounded on the cheap side: the price quantum on the mid, 1e-6 tick on each rounding, and a
        mid within half a tick of the price. NaN prices give NaN, which certifies nothing."""
        spot_fee, perp_fee = self.view.fees
        s_lo, s_hi = m.spot - PRICE_QUANTUM, m.spot + PRICE_QUANTUM
        p_lo, p_hi = m.perp - PRICE_QUANTUM, m.perp + PRICE_QUANTUM
        hs = shape.half_spread

        def spread_low(lo: Floats, hi: Floats, tick: float) -> Floats:
            ask = np.ceil(lo * (1 + hs) / tick - 1e-6) * tick
            bid = np.floor(hi * (1 - hs) / tick + 1e-6) * tick
            return np.maximum(ask - bid, 0.0)

        perp_mid_hi = p_hi + shape.perp_tick / 2
        spot_mid_lo = np.maximum(s_lo - shape.spot_tick / 2, 0.0)
        n = len(m.spot)
        fees = round_trip_fees(1 / perp_mid_hi, spot_mid_lo, perp_mid_hi, np.full(n, spot_fee), np.full(n, perp_fee))
        slippage = (spread_low(s_lo, s_hi, shape.spot_tick) + spread_low(p_lo, p_hi, shape.perp_tick)) / perp_mid_hi
        basis = basis_cost(np.ones(n), np.full(n, float(self.p.basis_cost_bps)))
        out: Floats = (fees + slippage + basis) * (1 - REL_MARGIN)
        return out

    def break_even_floor(self, cost: Floats) -> Floats:
        """Per hour, a forecast APR below which the carry rejects an entry (or a growth, or a switch in) at
        ANY size for its break-even (``skip_break_even_too_long``): funding pays ``perp_mid * apr / 8760``
        an hour, so the break-even is at least ``cost / perp_mid * 8760 / apr`` hours, and the entry is
        rejected when that exceeds ``break_even_limit_hours`` plus the quantum it is rounded to
        (``strategies.economics.HOURS``). ``cost``: ``cost_floor``."""
        limit = float(break_even_limit_hours(self.p) + HOURS)
        out: Floats = cost * 8760.0 / limit - APR_MARGIN
        return out

    # ---- a settled book -------------------------------------------------------------------------------

    def quiet(self, held: Sequence[HeldPair], i0: int, i1: int, capital: Floats) -> Bools:
        """bool per hour of [i0, i1): ``FundingCarry.evaluate`` returns only holds and skips (module
        docstring). ``capital``: the equity at each hour."""
        p = self.p
        view = self.view
        n = i1 - i0
        quiet = np.ones(n, dtype=bool)
        held_ids = {h.binance_id for h in held}
        if len(held) > p.max_symbols:
            return np.zeros(n, dtype=bool)
        entry_thr = float(p.entry_threshold_apr)
        full = len(held) == p.max_symbols
        # candidates: every other symbol the snapshot would offer for entry
        for sid, m in view.markets.items():
            if sid in held_ids:
                continue
            offered = ~m.blocked[i0:i1]
            apr = self.apr[sid][i0:i1]
            steady = self.steady[sid][i0:i1]
            below = steady & ((apr < entry_thr - APR_MARGIN) | (apr < self.entry_floor[sid][i0:i1]))
            if full:
                # no switch in against any held pair: at its best gain (margins on both forecasts) and the
                # least cost (both round trips' floors), the switch still does not pay
                no_switch = np.ones(n, dtype=bool)
                for h in held:
                    gain = (apr + APR_MARGIN) - (self.apr[h.binance_id][i0:i1] - APR_MARGIN)
                    cost = self.cost_apr[sid][i0:i1] + self.cost_apr[h.binance_id][i0:i1]
                    no_switch &= ~switch_pays(gain, cost, p) & ~np.isnan(gain) & ~np.isnan(cost)
                below |= steady & no_switch
            quiet &= ~offered | below
        if not held:
            return quiet
        cap = np.maximum(capital, 0.0)
        f = float(p.max_per_symbol_fraction)
        cpn = float(p.capital_per_notional)
        total = cap * float(p.max_total_fraction)
        tol = float(p.resize_tolerance_fraction)
        liq_f = float(p.liquidity_fraction)
        asks = {h.binance_id: ask_bounds(view, h, i0, i1) for h in held}
        for h in held:
            apr = self.apr[h.binance_id][i0:i1]
            # exit_negative_funding, per unit of notional over the horizon (both sides as APR)
            cost = self.cost_apr[h.binance_id][i0:i1]
            no_exit = ~holding_loses(apr - APR_MARGIN, cost) & ~np.isnan(cost)
            quiet &= self.steady[h.binance_id][i0:i1] & no_exit
        for h in held:
            sid = h.binance_id
            lo_a, hi_a = asks[sid]
            per_lo = cap * f / (hi_a * cpn)
            per_hi = cap * f / (lo_a * cpn)
            # Every other kept pair uses its reservation: its held size within its own per-symbol cap
            # (FundingCarry.keep), whatever the ranking order.
            others_max = np.zeros(n)
            others_min = np.zeros(n)
            for o in held:
                if o is h:
                    continue
                o_lo, o_hi = asks[o.binance_id]
                o_per = cap * f / (o_hi * cpn)
                others_max += np.minimum(o.qty, cap * f / (o_lo * cpn)) * o_hi * cpn
                others_min += np.minimum(o.qty, o_per) * o_lo * cpn
            budget_lo = np.maximum(total - others_max, 0.0) / (hi_a * cpn)
            budget_hi = np.maximum(total - others_min, 0.0) / (lo_a * cpn)
            liq = liq_f * depth_low(view, h, i0, i1)
            desired_hi = np.minimum(per_hi, budget_hi) * (1 + REL_MARGIN)
            desired_lo = np.minimum(np.minimum(per_lo, h.qty + liq), budget_lo) * (1 - REL_MARGIN) - h.step
            q = h.qty
            low, high = resize_band(q, tol)
            keep_low = desired_lo - q * REL_MARGIN >= low
            keep_high = desired_hi + q * REL_MARGIN <= high
            # growth needs the entry rules and the break-even at the larger size (else it holds)
            apr_h = self.apr[sid][i0:i1]
            growth_blocked = (apr_h < entry_thr - APR_MARGIN) | (apr_h < self.entry_floor[sid][i0:i1])
            quiet &= keep_low & (keep_high | growth_blocked)
        return quiet

    # ---- a flat book ----------------------------------------------------------------------------------

    def entry_threshold_apr(self) -> float:
        """The smallest forecast APR with which the carry can enter (module docstring)."""
        spot_fee, perp_fee = self.view.fees
        fees = round_trip_fees(1.0, SPOT_PERP_FLOOR, 1.0, spot_fee, perp_fee)
        cost = fees + basis_cost(1.0, float(self.p.basis_cost_bps))
        floor = cost_apr(cost, 1.0, float(break_even_limit_hours(self.p)))
        return max(float(self.p.entry_threshold_apr), floor)

    def entry_possible(self) -> Bools:
        """bool per grid hour: some symbol's forecast could reach the entry threshold (module docstring)."""
        view = self.view
        p = self.p
        horizon = float(p.hold_horizon_hours)
        threshold = self.entry_threshold_apr()
        b = float(p.baseline_weight)
        baseline = b * float(p.baseline_per_hour)
        possible = np.zeros(len(view.grid), dtype=bool)
        for m in view.markets.values():
            if len(m.settle_ts) == 0:
                continue
            max_rate, min_iv = _window_stats(m)
            # The hour's window ends at its next settlement (the first one strictly after the hour).
            k = np.searchsorted(m.settle_ts, view.grid, side="right")
            beyond = k >= len(m.settle_ts)
            kk = np.minimum(k, len(m.settle_ts) - 1)
            top = np.fmax(max_rate[kk], m.predicted)
            later = np.maximum((1 - b) * np.maximum(top, 0.0) / min_iv[kk] + baseline, 0.0)
            bound = (np.maximum(top, 0.0) + horizon * later) / horizon * 8760.0
            possible |= beyond | ~(bound < threshold * SAFETY)
        return possible


def _window_stats(m: MarketHours) -> tuple[Floats, Floats]:
    """Per settlement k: max rate and min interval over the settlements in [ts_k - LOOKBACK, ts_k]."""
    idx = pd.to_datetime(m.settle_ts, unit="ms")
    win = pd.Timedelta(milliseconds=LOOKBACK_MS)
    rate = pd.Series(m.settle_rate, index=idx).rolling(win, closed="both").max()
    iv = pd.Series(m.settle_interval, index=idx).rolling(win, closed="both").min()
    return rate.to_numpy(np.float64), iv.to_numpy(np.float64)
