"""``FundingCarry``: long spot, short perp where funding net of every cost pays, sized within caps.

Interface (see ``strategies/base.py``): ``FundingCarry(params: CarryParams | None).evaluate(snapshot)``
returns one ``Target`` per symbol in the snapshot's markets or live pairs, sorted by symbol. Pure.

Rules, in the order they are applied:

1. Live pairs (state other than CLOSED):
   - no market data -> ``hold_no_market_data``; QUARANTINED -> ``hold_quarantined``; CLOSING ->
     ``exit_in_progress`` (target 0: an exit is never reversed half way).
   - the entry cost is sunk: a held pair exits only when holding is expected to lose more over the
     horizon than leaving now and coming back later costs (one full round trip: exit + re-entry) ->
     ``exit_negative_funding``. A weak or negative print alone does not force an exit: the horizon
     forecast blends it with the decayed history and the baseline rate.
   - settlement guard: no exit (nor a shrink) while a settlement that pays the short (predicted rate > 0)
     is at most ``settlement_guard_minutes`` away -> ``hold_settlement_imminent``.
   - the rest are ranked by forecast APR; beyond ``max_symbols`` -> ``exit_not_in_top_n``; each is sized
     (below) and kept unless its target moves by more than ``resize_tolerance_fraction`` (``hold``,
     ``resize_down_cap``, ``resize_up``). A size forced below the markets' minimums -> ``exit_capital_cap``.
2. New symbols are candidates unless: entries disabled (``skip_entries_disabled``); forecast APR below
   ``entry_threshold_apr`` (``skip_forecast_below_entry``); within the guard AFTER a settlement (the last
   settlement is less than ``settlement_guard_minutes`` old) while the next settlement's predicted rate,
   annualised per hour, is below the entry threshold (``skip_post_settlement_unattractive``: the
   history-heavy forecast is dominated by a payment we did not get and the next one is weak); a negative
   settlement within the guard (``skip_negative_settlement_imminent``); a size that fails either market's
   filters (``skip_below_min_qty`` / ``skip_below_min_notional``); break-even later than
   ``max_break_even_fraction`` of the horizon (``skip_break_even_too_long``). Eligible candidates are
   ranked by net APR (score per notional, annualised) and entered (``enter``) while slots and budget last
   (``skip_not_in_top_n``, ``skip_no_capital``). With every slot held, the best candidate replaces the
   held pair with the lowest forecast (``exit_switch`` + ``enter_switch``, at most one per evaluation) only
   when the forecast gain pays the switch's cost (its own round trip and that pair's, for its exit and a
   possible re-entry) back within ``max_break_even_fraction`` of the horizon, as an entry must.
3. Sizing: min(per-symbol capital cap, liquidity cap, remaining total budget, operator limits), as capital
   per pair = notional x (1 + 1/leverage + margin buffer), floored to the common step of both markets.
4. Hedge maintenance: a kept pair whose legs differ by more than ``hedge_tolerance_fraction`` of the larger
   leg gets ``rebalance_hedge_drift`` with the smaller leg (rounded) as target, so execution trims the
   excess leg and never adds exposure; if that is below the minimums -> ``exit_hedge_drift_below_minimum``.

The thresholds of these rules are small functions shared with the strategy's quiet-hours bound
(``quiet_hours``, strategies/carry_quiet.py), which a backtest uses to skip the scans these rules would
answer with holds and skips only: change a rule here and the bound follows, or a test fails.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from bot.domain import ZERO, PairState
from strategies.analysis import DECIMAL_CONTEXT, Budget, SymbolAnalysis, analyse
from strategies.base import Action, Economics, PairView, Reason, Snapshot, Target
from strategies.carry_quiet import CarryQuiet
from strategies.economics import break_even_limit_hours, cost_apr, holding_loses, switch_pays
from strategies.params import CarryParams, ParamsError, load_params
from strategies.quiet import QuietView
from strategies.sizing import resize_band

__all__ = ["CarryParams", "FundingCarry", "ParamsError", "load_params"]


class FundingCarry:
    """The carry strategy. Holds only its parameters; every decision comes from the snapshot."""

    name = "funding_carry"

    def __init__(self, params: CarryParams | None = None) -> None:
        self.params = params or CarryParams()

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        with localcontext(DECIMAL_CONTEXT):
            return _CarryRun(self.params, snapshot).run()

    def quiet_hours(self, view: QuietView) -> CarryQuiet:
        """The hours its rules certainly answer with holds and skips (strategies/carry_quiet.py)."""
        return CarryQuiet(self.params, view)


def _with_inputs(t: Target, extra: dict[str, str]) -> Target:
    r = t.reason
    return Target(t.symbol, t.target_qty, Reason(r.rule, r.message, {**r.inputs, **extra}, r.economics), t.action)


def _pct(apr: Decimal) -> str:
    return f"{(apr * 100).quantize(Decimal('0.01'))}%"


class _CarryRun:
    def __init__(self, params: CarryParams, snapshot: Snapshot) -> None:
        self.p = params
        self.s = snapshot
        self.budget = Budget(snapshot, params)

    # ---- shared helpers -------------------------------------------------------------------------

    def target(
        self,
        a: SymbolAnalysis,
        pair: PairView | None,
        qty: Decimal,
        action: Action,
        rule: str,
        message: str,
        econ: Economics | None = None,
    ) -> Target:
        if econ is None:
            econ = a.economics(self.reference_qty(a, pair, qty))
        reason = Reason(rule=rule, message=message, inputs=a.inputs(pair), economics=econ)
        return Target(a.market.symbol, qty, reason, action)

    def reference_qty(self, a: SymbolAnalysis, pair: PairView | None, qty: Decimal) -> Decimal:
        """Size the economics are shown at: the target, else the held size, else the capped size."""
        if qty > 0:
            return qty
        if pair is not None and pair.hedged_qty > 0:
            return pair.hedged_qty
        return max(a.filters.round(a.cap_qty), a.filters.min_qty())

    def guard_blocks_exit(self, a: SymbolAnalysis) -> bool:
        return a.market.predicted_rate > 0 and 0 < a.ms_to_next <= self.p.guard_ms

    def break_even_ok(self, econ: Economics) -> bool:
        limit = break_even_limit_hours(self.p)
        return econ.break_even_hours is not None and econ.break_even_hours <= limit

    # ---- rules ----------------------------------------------------------------------------------

    def exit_rule(self, a: SymbolAnalysis, pair: PairView) -> tuple[str, str] | None:
        """Exit only when holding is expected to lose more over the horizon than leaving costs: the entry
        is sunk, and leaving now and coming back later is one full round trip (exit + re-entry)."""
        econ = a.economics(self.reference_qty(a, pair, ZERO))
        if not holding_loses(econ.expected_funding, econ.round_trip_cost):
            return None
        loss = -econ.expected_funding
        return "exit_negative_funding", (
            f"holding is expected to pay {loss} USDT over {econ.horizon_hours}h (forecast {_pct(a.forecast.apr)} "
            f"APR), more than the {econ.round_trip_cost} USDT of leaving and coming back (exit + re-entry)"
        )

    def entry_block(self, a: SymbolAnalysis) -> tuple[str, str] | None:
        f = a.forecast
        if not self.s.limits.allow_entries:
            return "skip_entries_disabled", "new entries and increases are disabled by the operator"
        if f.apr < self.p.entry_threshold_apr:
            return "skip_forecast_below_entry", (
                f"forecast {_pct(f.apr)} APR is below the entry threshold {_pct(self.p.entry_threshold_apr)}"
            )
        if 0 <= a.ms_since_last < self.p.guard_ms and f.predicted_apr < self.p.entry_threshold_apr:
            return "skip_post_settlement_unattractive", (
                f"a settlement paid {a.ms_since_last // 60_000} min ago and the next one is predicted at only "
                f"{_pct(f.predicted_apr)} APR; wait for a better print"
            )
        if a.market.predicted_rate < 0 and 0 < a.ms_to_next <= self.p.guard_ms:
            return "skip_negative_settlement_imminent", (
                f"the settlement in {a.ms_to_next // 60_000} min is negative ({a.market.predicted_rate})"
            )
        return None

    def guard_hold(self, a: SymbolAnalysis, pair: PairView, rule: str, message: str) -> Target:
        self.budget.take(a, pair.hedged_qty)
        return self.target(
            a,
            pair,
            pair.hedged_qty,
            Action.HOLD,
            "hold_settlement_imminent",
            f"would {rule} ({message}) but the settlement in {a.ms_to_next // 60_000} min pays the "
            f"short {a.market.predicted_rate}; act after it",
        )

    def exit(self, a: SymbolAnalysis, pair: PairView, rule: str, message: str) -> Target:
        if self.guard_blocks_exit(a):
            return self.guard_hold(a, pair, rule, message)
        return self.target(a, pair, ZERO, Action.EXIT, rule, message)

    def keep(self, a: SymbolAnalysis, current: Decimal) -> None:
        """A kept size uses the budget only up to its own cap: its drift within the resize tolerance is its
        own and never squeezes the pairs sized after it (a residual pair resized at every price move)."""
        self.budget.take(a, min(current, a.per_symbol_cap_qty))

    def size_held(self, a: SymbolAnalysis, pair: PairView) -> Target:
        current = pair.hedged_qty
        # Liquidity limits what one trade may take, not what may be held: a thinner book never forces a
        # held pair down, it only bounds how much it can grow in one step.
        liq = a.liquidity_cap_qty
        cap = a.per_symbol_cap_qty if liq is None else min(a.per_symbol_cap_qty, current + liq)
        desired = a.filters.round(min(cap, self.budget.cap_qty(a)))
        tol = self.p.resize_tolerance_fraction
        low, high = resize_band(current, tol)
        if current > 0 and low <= desired <= high:
            self.keep(a, current)
            return self.target(
                a,
                pair,
                current,
                Action.HOLD,
                "hold",
                f"forecast {_pct(a.forecast.apr)} APR keeps the pair; size {current} is within "
                f"{_pct(tol)} of the target {desired}",
            )
        if desired < current:
            violation = a.filters.violation(desired)
            if violation is not None:
                return self.exit(a, pair, "exit_capital_cap", f"caps allow only {desired}: {violation[1]}")
            order = a.filters.order_violation(current, desired)
            if order is not None:
                self.keep(a, current)
                return self.target(
                    a, pair, current, Action.HOLD, "hold", f"caps allow only {desired}; no reduction: {order[1]}"
                )
            if self.guard_blocks_exit(a):
                return self.guard_hold(a, pair, "resize_down_cap", f"caps allow only {desired}")
            self.budget.take(a, desired)
            return self.target(
                a,
                pair,
                desired,
                Action.RESIZE,
                "resize_down_cap",
                f"capital caps and limits allow {desired}, below the held {current}",
            )
        block = self.entry_block(a) or a.filters.violation(desired)
        if block is None and current > 0:
            block = a.filters.order_violation(current, desired)
        econ = a.economics(desired) if desired > 0 else None
        if block is None and econ is not None and not self.break_even_ok(econ):
            block = ("skip_break_even_too_long", f"break-even {econ.break_even_hours}h is too long")
        if block is None and econ is not None:
            self.budget.take(a, desired)
            if current == 0:
                return self.target(a, pair, desired, Action.ENTER, "enter", "opening pair sized to target", econ)
            return self.target(
                a,
                pair,
                desired,
                Action.RESIZE,
                "resize_up",
                f"target {desired} exceeds the held {current} by more than {_pct(tol)}",
                econ,
            )
        assert block is not None
        if current == 0:
            return self.target(a, pair, ZERO, Action.EXIT, block[0], f"opening pair no longer wanted: {block[1]}")
        self.keep(a, current)
        return self.target(
            a,
            pair,
            current,
            Action.HOLD,
            "hold",
            f"keep {current} (forecast {_pct(a.forecast.apr)} APR: holding is not expected to lose more than "
            f"a round trip); no increase: {block[1]}",
        )

    def hedge_check(self, a: SymbolAnalysis, pair: PairView, t: Target) -> Target:
        if t.action is not Action.HOLD or pair.state not in (PairState.OPEN, PairState.OPENING, PairState.REBALANCING):
            return t
        larger = max(pair.spot_qty, pair.perp_qty)
        if larger <= 0:
            return t
        drift = abs(pair.spot_qty - pair.perp_qty) / larger
        if drift <= self.p.hedge_tolerance_fraction:
            return t
        qty = a.filters.round(pair.hedged_qty)
        text = (
            f"legs drifted apart (spot {pair.spot_qty}, perp {pair.perp_qty}, {_pct(drift)} > "
            f"{_pct(self.p.hedge_tolerance_fraction)})"
        )
        violation = a.filters.violation(qty)
        if violation is not None:
            return self.target(
                a,
                pair,
                ZERO,
                Action.EXIT,
                "exit_hedge_drift_below_minimum",
                f"{text}; the common size {qty} is below the minimums ({violation[1]}): close both legs",
            )
        return self.target(
            a,
            pair,
            qty,
            Action.REBALANCE,
            "rebalance_hedge_drift",
            f"{text}; bring both legs to {qty} (then: {t.reason.rule})",
        )

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> list[Target]:
        live = self.s.live_pairs()
        analyses = {m.symbol: analyse(m, self.s, self.p) for m in self.s.markets}
        out: dict[str, Target] = {}

        keepers: list[tuple[SymbolAnalysis, PairView]] = []
        for sym in sorted(live):
            pair = live[sym]
            a = analyses.get(sym)
            if a is None:
                out[sym] = Target(
                    sym,
                    pair.hedged_qty,
                    Reason(
                        "hold_no_market_data",
                        "no market snapshot for a held pair: keep it as it is",
                        {
                            "pair_state": pair.state.value,
                            "spot_qty": str(pair.spot_qty),
                            "perp_qty": str(pair.perp_qty),
                        },
                    ),
                    Action.HOLD,
                )
            elif pair.state is PairState.QUARANTINED:
                self.budget.take(a, pair.hedged_qty)
                out[sym] = self.target(
                    a,
                    pair,
                    pair.hedged_qty,
                    Action.HOLD,
                    "hold_quarantined",
                    "pair is quarantined: only the operator changes it",
                )
            elif pair.state is PairState.CLOSING:
                out[sym] = self.target(
                    a, pair, ZERO, Action.EXIT, "exit_in_progress", "pair is closing: finish the exit"
                )
            elif (rule := self.exit_rule(a, pair)) is not None:
                out[sym] = self.exit(a, pair, *rule)
            else:
                keepers.append((a, pair))

        keepers.sort(key=lambda ap: (-ap[0].forecast.apr, ap[0].market.symbol))
        kept, dropped = keepers[: max(self.budget.slots, 0)], keepers[max(self.budget.slots, 0) :]
        # Every kept pair first reserves what it holds (within its own caps), so one pair grows only into
        # unreserved capital and is never paid for by shrinking another: no round trips between pairs. A
        # kept size then uses exactly its reservation (``keep``).
        reserved = {a.market.symbol: min(pair.hedged_qty, a.per_symbol_cap_qty) for a, pair in kept}
        for a, _ in kept:
            self.budget.take(a, reserved[a.market.symbol])
        for a, pair in kept:
            self.budget.give(a, reserved[a.market.symbol])
            out[a.market.symbol] = self.size_held(a, pair)
        for a, pair in dropped:
            out[a.market.symbol] = self.exit(
                a, pair, "exit_not_in_top_n", f"only {self.p.max_symbols} pairs may be held"
            )

        eligible: list[tuple[SymbolAnalysis, Economics]] = []
        for sym, a in sorted(analyses.items()):
            if sym in live:
                continue
            block = self.entry_block(a)
            qty = a.filters.round(a.cap_qty)
            if block is None:
                block = a.filters.violation(qty)
            if block is not None:
                out[sym] = self.target(a, None, ZERO, Action.SKIP, *block)
                continue
            econ = a.economics(qty)
            if not self.break_even_ok(econ):
                out[sym] = self.target(
                    a, None, ZERO, Action.SKIP, "skip_break_even_too_long", self.break_even_text(econ), econ
                )
                continue
            eligible.append((a, econ))

        eligible.sort(key=lambda ae: (-ae[1].net_apr, ae[0].market.symbol))
        if eligible and kept and self.budget.slots <= 0:
            self.switch(eligible[0], kept[-1], out)
        for a, cap_econ in eligible:
            if a.market.symbol not in out:
                out[a.market.symbol] = self.enter(a, cap_econ)

        for sym, pair in live.items():
            a = analyses.get(sym)
            if a is not None:
                out[sym] = self.hedge_check(a, pair, out[sym])
        return [out[sym] for sym in sorted(out)]

    def cost_apr(self, econ: Economics) -> Decimal:
        """A round trip's cost spread over the horizon, as APR of the pair's notional."""
        if econ.notional <= 0:
            return ZERO
        return cost_apr(econ.round_trip_cost, econ.notional, econ.horizon_hours)

    def switch(
        self,
        candidate: tuple[SymbolAnalysis, Economics],
        worst: tuple[SymbolAnalysis, PairView],
        out: dict[str, Target],
    ) -> None:
        """Every slot is held: replace the held pair with the lowest forecast by the best candidate when
        the forecast gain pays the switch's cost (the candidate's round trip and the held pair's exit and
        possible re-entry, a round trip of its own) back within ``max_break_even_fraction`` of the horizon,
        as an entry must. One switch per evaluation."""
        a, cap_econ = candidate
        h, pair = worst
        held_target = out[h.market.symbol]
        if pair.state is not PairState.OPEN or held_target.action is Action.EXIT or self.guard_blocks_exit(h):
            return
        held_econ = h.economics(pair.hedged_qty)
        gain = a.forecast.apr - h.forecast.apr
        cost = self.cost_apr(cap_econ) + self.cost_apr(held_econ)
        if not switch_pays(gain, cost, self.p):
            return
        given = held_target.target_qty
        self.budget.give(h, given)
        entry = self.enter(a, cap_econ)
        if entry.action is not Action.ENTER:
            self.budget.take(h, given)
            return
        horizon = self.p.hold_horizon_hours
        figures = (
            f"{a.market.symbol}'s forecast {_pct(a.forecast.apr)} APR beats {h.market.symbol}'s {_pct(h.forecast.apr)} "
            f"by {_pct(gain)}, which pays the switch's {_pct(cost)} APR over the {horizon}h horizon (the round "
            f"trips of {a.market.symbol} and of {h.market.symbol}'s exit and possible re-entry, "
            f"{held_econ.round_trip_cost} USDT) back in {(cost / gain * horizon).quantize(Decimal('0.01'))}h, "
            f"within {self.p.max_break_even_fraction} of it"
        )
        extra = {
            "switch_gain_apr": str(gain.quantize(Decimal("1e-8"))),
            "switch_cost_apr": str(cost.quantize(Decimal("1e-8"))),
        }
        out[h.market.symbol] = _with_inputs(self.target(h, pair, ZERO, Action.EXIT, "exit_switch", figures), extra)
        entry = Target(
            entry.symbol,
            entry.target_qty,
            Reason("enter_switch", f"{figures}; {entry.reason.message}", entry.reason.inputs, entry.reason.economics),
            entry.action,
        )
        out[a.market.symbol] = _with_inputs(entry, extra)

    def break_even_text(self, econ: Economics) -> str:
        limit = break_even_limit_hours(self.p)
        be = "never" if econ.break_even_hours is None else f"{econ.break_even_hours}h"
        return (
            f"costs {econ.round_trip_cost} USDT vs funding {econ.expected_funding_per_hour} USDT/h: break-even "
            f"{be}, limit {limit}h ({self.p.max_break_even_fraction} of the {self.p.hold_horizon_hours}h hold)"
        )

    def enter(self, a: SymbolAnalysis, cap_econ: Economics) -> Target:
        if self.budget.slots <= 0:
            return self.target(
                a,
                None,
                ZERO,
                Action.SKIP,
                "skip_not_in_top_n",
                f"{self.p.max_symbols} better pairs already use every slot",
                cap_econ,
            )
        qty = a.filters.round(min(a.cap_qty, self.budget.cap_qty(a)))
        violation = a.filters.violation(qty)
        if violation is not None:
            return self.target(
                a,
                None,
                ZERO,
                Action.SKIP,
                "skip_no_capital",
                f"the remaining budget allows only {qty}: {violation[1]}",
                cap_econ,
            )
        econ = a.economics(qty)
        if not self.break_even_ok(econ):
            return self.target(a, None, ZERO, Action.SKIP, "skip_break_even_too_long", self.break_even_text(econ), econ)
        self.budget.take(a, qty)
        return self.target(
            a,
            None,
            qty,
            Action.ENTER,
            "enter",
            f"forecast {_pct(a.forecast.apr)} APR, net {_pct(econ.net_apr)} after costs; break-even "
            f"{econ.break_even_hours}h within the {self.p.hold_horizon_hours}h hold",
            econ,
        )
