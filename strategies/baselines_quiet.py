"""The baselines' quiet-hours bounds (``AlwaysOn.quiet_hours``, ``TopNByLastRate.quiet_hours``; see
strategies/quiet.py): the scan hours at which their rules (strategies/baselines.py) certainly return only
holds and skips for a settled book. A held pair is kept when its target stays inside the resize band
(``strategies.quiet.keeps_size``, the sizing of ``_hold_or_size``).

- ``AlwaysOn`` (``AlwaysOnBTC`` over BTC alone): only its symbols are held, each at a size within the band
  of its equal share, and none of its other symbols is offered (it would be entered).
- ``TopNByLastRate``: the held set is the top N by last settled rate and keeps its sizes.

Neither enters from a flat book only when nothing is offered, which the bound does not try to prove:
``entry_possible`` is every hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from strategies.forecast import forecast_apr_hours
from strategies.params import CarryParams
from strategies.quiet import Bools, Floats, HeldPair, QuietView, ask_bounds, keeps_size


class AlwaysOnQuiet:
    """``AlwaysOn`` over ``symbols`` (unified; None: every symbol)."""

    def __init__(self, params: CarryParams, symbols: tuple[str, ...] | None, view: QuietView) -> None:
        self.p = params
        self.view = view
        self.mine = {sid for sid, m in view.markets.items() if symbols is None or m.symbol in symbols}

    def entry_possible(self) -> Bools:
        return np.ones(len(self.view.grid), dtype=bool)

    def quiet(self, held: Sequence[HeldPair], i0: int, i1: int, capital: Floats) -> Bools:
        """Only its symbols are held, none of the others is offered, so the held ones are the N sharing the
        total cap, and each keeps its size against its own share."""
        n = i1 - i0
        by_id = {h.binance_id: h for h in held}
        if any(sid not in self.mine for sid in by_id):
            return np.zeros(n, dtype=bool)
        quiet = np.ones(n, dtype=bool)
        for sid in self.mine - set(by_id):
            quiet &= self.view.markets[sid].blocked[i0:i1]  # not offered: no data or a gap ahead
        if not by_id:
            return quiet
        weight = float(self.p.max_total_fraction) / len(by_id)
        zero = np.zeros(n)
        for h in by_id.values():  # each share is sized on its own (no budget shared between them)
            quiet &= keeps_size(self.view, self.p, h, i0, i1, capital, (zero, zero), weight)
        return quiet


class TopNQuiet:
    """``TopNByLastRate``: the held set is exactly the top N by last settled rate among the offered
    symbols, and each held pair keeps its size with the budget taken in rank order."""

    def __init__(self, params: CarryParams, view: QuietView) -> None:
        self.p = params
        self.view = view
        # where the history the snapshot reads is regular, so its last settled rate is the data's
        self.steady = {
            sid: forecast_apr_hours(
                m.settle_ts, m.settle_rate, m.predicted, view.grid, params, view.history_settlements
            )[1]
            for sid, m in view.markets.items()
        }

    def entry_possible(self) -> Bools:
        return np.ones(len(self.view.grid), dtype=bool)

    def quiet(self, held: Sequence[HeldPair], i0: int, i1: int, capital: Floats) -> Bools:
        view = self.view
        n = i1 - i0
        by_id = {h.binance_id: h for h in held}
        ids = sorted(view.markets, key=lambda sid: view.markets[sid].symbol)  # the strategy breaks ties by symbol
        steady = {sid: self.steady[sid][i0:i1] for sid in ids}
        rates = np.full((n, len(ids)), np.nan)
        for col, sid in enumerate(ids):
            m = view.markets[sid]
            k = np.searchsorted(m.settle_ts, view.grid[i0:i1], side="right")
            last = np.where(k >= 1, m.settle_rate[np.maximum(k - 1, 0)], np.nan)
            data = ~np.isnan(m.perp[i0:i1]) & ~np.isnan(m.spot[i0:i1])
            offered = data & (True if sid in by_id else ~m.blocked[i0:i1])
            rates[:, col] = np.where(offered, last, np.nan)
            # the last rate is what the snapshot's cached history says only while intervals are regular
            rates[:, col] = np.where(steady[sid] | ~offered, rates[:, col], np.nan)
            if sid in by_id:
                rates[:, col] = np.where(data & steady[sid], last, np.nan)
        known = ~np.isnan(rates)
        quiet = np.ones(n, dtype=bool)
        for sid in ids:
            if sid not in by_id:
                m = view.markets[sid]
                offered = ~np.isnan(m.perp[i0:i1]) & ~np.isnan(m.spot[i0:i1]) & ~m.blocked[i0:i1]
                quiet &= steady[sid] | ~offered
        for col, sid in enumerate(ids):
            if sid in by_id and not known[:, col].all():
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
            quiet &= want if sid in by_id else ~want
        for col, sid in enumerate(ids):
            h = by_id.get(sid)
            if h is None:
                continue
            lo = np.zeros(n)
            hi = np.zeros(n)
            for ocol, oid in enumerate(ids):
                o = by_id.get(oid)
                if o is None or o is h:
                    continue
                first = rank[:, ocol] < rank[:, col]
                a_lo, a_hi = ask_bounds(view, o, i0, i1)
                lo += np.where(first, o.qty * a_lo * cpn, 0.0)
                hi += np.where(first, o.qty * a_hi * cpn, 0.0)
            quiet &= keeps_size(view, self.p, h, i0, i1, capital, (lo, hi))
        return quiet
