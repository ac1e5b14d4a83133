"""Baselines the carry strategy is measured against; same interface (``evaluate(snapshot)``), same sizing.

- ``AlwaysOn``: hold every given symbol (default: every symbol offered) at all times, whatever funding
  does, with equal weights within the carry's total cap (``max_total_fraction`` / N each, never above the
  per-symbol cap): the same caps and capital use as the carry, without its timing or selection. The fair
  benchmark: what simply holding the hedge earns. ``AlwaysOnBTC`` is the case of BTC alone (per-symbol cap).
- ``TopNByLastRate``: the naive peer: hold the top N symbols by LAST SETTLED rate (raw, not per hour,
  no costs, no forecast, no hysteresis, no settlement guard); leave a symbol as soon as it drops out.

Both record the same ``Economics`` in their reasons (computed with ``CarryParams``) so reports compare
like with like, and both size with the carry strategy's caps and joint rounding. Their quiet-hours bounds
(``quiet_hours``) are in strategies/baselines_quiet.py.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from bot.domain import ZERO
from strategies.analysis import DECIMAL_CONTEXT, Budget, SymbolAnalysis, analyse
from strategies.base import Action, PairView, Reason, Snapshot, Target
from strategies.baselines_quiet import AlwaysOnQuiet, TopNQuiet
from strategies.params import CarryParams
from strategies.quiet import QuietView
from strategies.sizing import capital_cap_qty, resize_band


def _target(a: SymbolAnalysis, pair: PairView | None, qty: Decimal, action: Action, rule: str, msg: str) -> Target:
    ref = qty if qty > 0 else (pair.hedged_qty if pair is not None and pair.hedged_qty > 0 else a.filters.min_qty())
    return Target(a.market.symbol, qty, Reason(rule, msg, a.inputs(pair), a.economics(ref)), action)


def _no_data(pair: PairView) -> Target:
    reason = Reason("hold_no_market_data", "no market snapshot for a held pair: keep it as it is")
    return Target(pair.symbol, pair.hedged_qty, reason, Action.HOLD)


def _hold_or_size(
    a: SymbolAnalysis,
    pair: PairView | None,
    budget: Budget,
    params: CarryParams,
    why: str,
    cap_qty: Decimal | None = None,
) -> Target:
    """Size to the caps (and ``cap_qty`` when given); keep a held size within the resize tolerance;
    skip/exit below the minimums."""
    limit = a.cap_qty if cap_qty is None else min(a.cap_qty, cap_qty)
    desired = a.filters.round(min(limit, budget.cap_qty(a)))
    current = ZERO if pair is None else pair.hedged_qty
    low, high = resize_band(current, params.resize_tolerance_fraction)
    if current > 0 and low <= desired <= high:
        budget.take(a, current)
        return _target(a, pair, current, Action.HOLD, "hold", f"{why}; size {current} within tolerance")
    violation = a.filters.violation(desired)
    if violation is not None:
        action = Action.SKIP if current == 0 else Action.EXIT
        return _target(a, pair, ZERO, action, violation[0], f"{why}; {violation[1]}")
    budget.take(a, desired)
    if current == 0:
        return _target(a, pair, desired, Action.ENTER, "enter", why)
    return _target(a, pair, desired, Action.RESIZE, "resize", f"{why}; resize {current} -> {desired}")


class AlwaysOn:
    """Hold every given symbol (None: every symbol in the snapshot) always, equal weights within the total cap."""

    def __init__(self, params: CarryParams | None = None, symbols: tuple[str, ...] | None = None) -> None:
        self.params = params or CarryParams()
        self.symbols = None if symbols is None else tuple(symbols)
        self.name = (
            "always_on"
            if self.symbols is None
            else "always_on_" + "_".join(s.split("/")[0].lower() for s in self.symbols)
        )

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        with localcontext(DECIMAL_CONTEXT):
            return self._run(snapshot)

    def quiet_hours(self, view: QuietView) -> AlwaysOnQuiet:
        """The hours its rules certainly answer with holds and skips (strategies/baselines_quiet.py)."""
        return AlwaysOnQuiet(self.params, self.symbols, view)

    def holds(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def _run(self, snapshot: Snapshot) -> list[Target]:
        p = self.params
        live = snapshot.live_pairs()
        mine = [m for m in sorted(snapshot.markets, key=lambda m: m.symbol) if self.holds(m.symbol)]
        # Equal weights of the total cap among the symbols offered now, never above the per-symbol cap: the
        # shares add up to the total cap, so each is sized on its own (a shared budget drained in symbol
        # order would make the last symbol absorb every other pair's drift within tolerance).
        weight = min(p.max_per_symbol_fraction, p.max_total_fraction / len(mine)) if mine else ZERO
        notional_share = (
            None
            if snapshot.limits.max_total_notional is None or not mine
            else (snapshot.limits.max_total_notional / len(mine))
        )
        why = f"baseline: always hold {'every symbol' if self.symbols is None else ', '.join(self.symbols)}"
        out: dict[str, Target] = {}
        for m in sorted(snapshot.markets, key=lambda m: m.symbol):
            a = analyse(m, snapshot, p)
            pair = live.get(m.symbol)
            if self.holds(m.symbol):
                share = capital_cap_qty(snapshot.capital * weight, a.capital_price(), p.capital_per_notional)
                if notional_share is not None:
                    share = min(share, notional_share / m.perp.mid)
                own = Budget(snapshot, p)
                out[m.symbol] = _hold_or_size(a, pair, own, p, f"{why} ({weight} of capital each)", share)
            elif pair is not None:
                out[m.symbol] = _target(a, pair, ZERO, Action.EXIT, "exit_baseline_other_symbol", f"{why} only")
            else:
                out[m.symbol] = _target(a, None, ZERO, Action.SKIP, "skip_baseline_other_symbol", f"{why} only")
        for sym, pair in live.items():
            out.setdefault(sym, _no_data(pair))
        return [out[s] for s in sorted(out)]


class AlwaysOnBTC(AlwaysOn):
    """``AlwaysOn`` over BTC alone: the BTC pair at the per-symbol cap, always."""

    def __init__(self, params: CarryParams | None = None, symbol: str = "BTC/USDT") -> None:
        super().__init__(params, (symbol,))


class TopNByLastRate:
    """Hold the ``max_symbols`` symbols with the highest positive last settled rate (the naive peer)."""

    name = "top_n_by_last_rate"

    def __init__(self, params: CarryParams | None = None) -> None:
        self.params = params or CarryParams()

    def quiet_hours(self, view: QuietView) -> TopNQuiet:
        """The hours its rules certainly answer with holds and skips (strategies/baselines_quiet.py)."""
        return TopNQuiet(self.params, view)

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        with localcontext(DECIMAL_CONTEXT):
            return self._run(snapshot)

    def _run(self, snapshot: Snapshot) -> list[Target]:
        live = snapshot.live_pairs()
        budget = Budget(snapshot, self.params)
        ranked = sorted(snapshot.markets, key=lambda m: (-m.funding_rate, m.symbol))
        top = {m.symbol for m in ranked[: self.params.max_symbols] if m.funding_rate > 0}
        out: dict[str, Target] = {}
        for m in ranked:
            a = analyse(m, snapshot, self.params)
            pair = live.get(m.symbol)
            if m.symbol in top:
                why = f"baseline: last rate {m.funding_rate} is in the top {self.params.max_symbols}"
                out[m.symbol] = _hold_or_size(a, pair, budget, self.params, why)
                continue
            why = "last rate is not positive" if m.funding_rate <= 0 else "not in the top N by last rate"
            action, rule = (
                (Action.EXIT, "exit_baseline_not_top_n") if pair else (Action.SKIP, "skip_baseline_not_top_n")
            )
            out[m.symbol] = _target(a, pair, ZERO, action, rule, f"baseline: {why} ({m.funding_rate})")
        for sym, pair in live.items():
            out.setdefault(sym, _no_data(pair))
        return [out[s] for s in sorted(out)]
