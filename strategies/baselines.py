"""Baselines the carry strategy is measured against; same interface (``evaluate(snapshot)``), same sizing.

- ``AlwaysOnBTC``: always hold the BTC pair at the per-symbol cap, whatever funding does.
- ``TopNByLastRate``: the naive peer: hold the top N symbols by LAST SETTLED rate (raw, not per hour,
  no costs, no forecast, no hysteresis, no settlement guard); leave a symbol as soon as it drops out.

Both record the same ``Economics`` in their reasons (computed with ``CarryParams``) so reports compare
like with like, and both size with the carry strategy's caps and joint rounding.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from bot.domain import ZERO
from strategies.analysis import DECIMAL_CONTEXT, Budget, SymbolAnalysis, analyse
from strategies.base import Action, PairView, Reason, Snapshot, Target
from strategies.params import CarryParams


def _target(a: SymbolAnalysis, pair: PairView | None, qty: Decimal, action: Action, rule: str, msg: str) -> Target:
    ref = qty if qty > 0 else (pair.hedged_qty if pair is not None and pair.hedged_qty > 0 else a.filters.min_qty())
    return Target(a.market.symbol, qty, Reason(rule, msg, a.inputs(pair), a.economics(ref)), action)


def _no_data(pair: PairView) -> Target:
    reason = Reason("hold_no_market_data", "no market snapshot for a held pair: keep it as it is")
    return Target(pair.symbol, pair.hedged_qty, reason, Action.HOLD)


def _hold_or_size(a: SymbolAnalysis, pair: PairView | None, budget: Budget, params: CarryParams, why: str) -> Target:
    """Size to the caps; keep a held size within the resize tolerance; skip/exit below the minimums."""
    desired = a.filters.round(min(a.cap_qty, budget.cap_qty(a)))
    current = ZERO if pair is None else pair.hedged_qty
    if current > 0 and abs(desired - current) <= params.resize_tolerance_fraction * current:
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


class AlwaysOnBTC:
    """Hold one pair (BTC by default) at the maximum per-symbol fraction of capital, always."""

    name = "always_on_btc"

    def __init__(self, params: CarryParams | None = None, symbol: str = "BTC/USDT") -> None:
        self.params = params or CarryParams()
        self.symbol = symbol

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        with localcontext(DECIMAL_CONTEXT):
            return self._run(snapshot)

    def _run(self, snapshot: Snapshot) -> list[Target]:
        live = snapshot.live_pairs()
        budget = Budget(snapshot, self.params)
        out: dict[str, Target] = {}
        for m in snapshot.markets:
            a = analyse(m, snapshot, self.params)
            pair = live.get(m.symbol)
            if m.symbol == self.symbol:
                out[m.symbol] = _hold_or_size(a, pair, budget, self.params, "baseline: always hold this pair")
            elif pair is not None:
                out[m.symbol] = _target(
                    a, pair, ZERO, Action.EXIT, "exit_baseline_other_symbol", f"baseline holds only {self.symbol}"
                )
            else:
                out[m.symbol] = _target(
                    a, None, ZERO, Action.SKIP, "skip_baseline_other_symbol", f"baseline holds only {self.symbol}"
                )
        for sym, pair in live.items():
            out.setdefault(sym, _no_data(pair))
        return [out[s] for s in sorted(out)]


class TopNByLastRate:
    """Hold the ``max_symbols`` symbols with the highest positive last settled rate (the naive peer)."""

    name = "top_n_by_last_rate"

    def __init__(self, params: CarryParams | None = None) -> None:
        self.params = params or CarryParams()

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
