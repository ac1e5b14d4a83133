"""Decision table of FundingCarry: entry, exit, hysteresis, settlement guards, intervals, sizing, drift."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pytest
from strategy_builders import NOW, D, by_symbol, history, market, minutes, pair, snap

from bot.domain import HOUR_MS, PairState
from strategies.base import Action, FundingPoint, Limits, Reason
from strategies.funding_carry import CarryParams, FundingCarry, ParamsError, load_params

CARRY = FundingCarry()
NO_BASELINE = FundingCarry(CarryParams(baseline_weight=D(0)))  # the forecast from the symbol's own rates only


def decide(*markets, **kw):
    return by_symbol(CARRY.evaluate(snap(*markets, **kw)))


# ---- entry ----------------------------------------------------------------------------------------


def test_enters_attractive_pair_with_full_reason():
    carry = FundingCarry(CarryParams(hold_horizon_hours=D(72), baseline_weight=D(0)))
    t = by_symbol(carry.evaluate(snap(market())))["BTC/USDT"]
    assert (t.action, t.reason.rule) == (Action.ENTER, "enter")
    e = t.reason.economics
    assert e is not None and t.target_qty == e.qty > 0
    assert e.round_trip_cost == e.fees + e.slippage + e.basis_cost
    assert e.score == e.expected_funding - e.round_trip_cost
    assert e.break_even_hours <= D(36)
    assert t.reason.inputs["predicted_rate"] == "0.0005"
    assert t.reason.inputs["settlements_in_horizon"] == "9"


def test_tiny_rate_is_below_entry_threshold():
    t = decide(market(rate="0.00001"))["BTC/USDT"]
    assert (t.action, t.reason.rule, t.target_qty) == (Action.SKIP, "skip_forecast_below_entry", 0)


def test_fee_dominated_pair_is_not_entered():
    # 32.9% APR clears the entry threshold, but 0.5% taker fees per fill never pay back within 36h.
    t = decide(market(rate="0.0003", fee="0.005"))["BTC/USDT"]
    assert t.reason.rule == "skip_break_even_too_long"
    assert t.action is Action.SKIP and t.target_qty == 0
    assert t.reason.economics.break_even_hours > D(36)
    # the same rate with cheap fees enters
    cheap = decide(market(rate="0.0003", fee="0.0001", spread_bps="0.5"))["BTC/USDT"]
    assert cheap.action is Action.ENTER


def test_equal_apr_scores_equally_per_hour_across_intervals():
    # 0.0008 per 8h == 0.0004 per 4h == 0.0001 per 1h: the same funding per hour. (The baseline blend is
    # left out: it pulls later settlements to the baseline, while each symbol's next one, which is a full
    # interval of its predicted rate, stays as predicted.)
    ms = [
        market("AAA/USDT", rate="0.0008", interval=8),
        market("BBB/USDT", rate="0.0004", interval=4),
        market("CCC/USDT", rate="0.0001", interval=1),
    ]
    out = by_symbol(FundingCarry(CarryParams(baseline_weight=D(0))).evaluate(snap(*ms)))
    econ = [out[s].reason.economics for s in ("AAA/USDT", "BBB/USDT", "CCC/USDT")]
    assert len({e.forecast_apr for e in econ}) == 1
    assert len({e.expected_funding_per_hour for e in econ}) == 1
    assert len({e.score for e in econ}) == 1
    assert all(out[s].action is Action.ENTER for s in out)


def test_raw_rate_of_an_8h_symbol_does_not_beat_a_better_1h_symbol():
    # The 8h symbol shows the bigger raw rate but pays less per hour; with one slot the 1h symbol wins.
    params = CarryParams(max_symbols=1)
    out = by_symbol(
        FundingCarry(params).evaluate(
            snap(market("EIGHT/USDT", rate="0.0016", interval=8), market("ONE/USDT", rate="0.0003", interval=1))
        )
    )
    assert out["ONE/USDT"].action is Action.ENTER
    assert out["EIGHT/USDT"].reason.rule == "skip_not_in_top_n"


def test_history_across_interval_changes_is_normalised_per_hour():
    # 8h, then 4h, then 1h settlements, all worth 0.0001 per hour: the forecast is exactly that.
    h = HOUR_MS
    eights = [FundingPoint(NOW - 48 * h, D("0.0008"), 8), FundingPoint(NOW - 40 * h, D("0.0008"), 8)]
    fours = [FundingPoint(NOW - (36 - 4 * k) * h, D("0.0004"), 4) for k in range(5)]
    ones = [FundingPoint(NOW - k * h, D("0.0001"), 1) for k in range(16)]
    hist = (*eights, *fours, *ones)
    m = market(rate="0.0001", interval=1, hist=hist)
    t = by_symbol(NO_BASELINE.evaluate(snap(m)))["BTC/USDT"]
    assert D(t.reason.inputs["history_per_hour"]) == D("0.0001")
    assert t.reason.economics.forecast_apr == D("0.876")


def test_limits_and_top_n():
    ms = [market(f"C{i}/USDT", rate=f"0.00{i + 3}") for i in range(5)]
    out = by_symbol(FundingCarry(CarryParams(max_symbols=2)).evaluate(snap(*ms)))
    entered = sorted(s for s, t in out.items() if t.action is Action.ENTER)
    assert entered == ["C3/USDT", "C4/USDT"]  # the two best
    assert {out[s].reason.rule for s in out if s not in entered} == {"skip_not_in_top_n"}


def test_entries_disabled_by_operator():
    t = decide(market(), limits=Limits(allow_entries=False))["BTC/USDT"]
    assert t.reason.rule == "skip_entries_disabled" and t.target_qty == 0


# ---- minimums -------------------------------------------------------------------------------------


def test_skip_below_min_notional_records_reason():
    # 200 USDT allows 0.0006 BTC per pair: 30 USDT, below a 100 USDT minimum
    t = decide(market(min_notional="100", step="0.0001", min_qty="0.0001"), capital="200")["BTC/USDT"]
    assert (t.action, t.reason.rule, t.target_qty) == (Action.SKIP, "skip_below_min_notional", 0)
    assert "min notional" in t.reason.message and "BTC/USDT" in t.reason.message


def test_skip_below_min_qty_records_reason():
    t = decide(market(price="10", min_qty="5000"))["BTC/USDT"]
    assert (t.reason.rule, t.target_qty) == ("skip_below_min_qty", 0)
    assert "min qty 5000" in t.reason.message


# ---- exits, hysteresis and guards -----------------------------------------------------------------


def held(rate: str, predicted: str | None = None, next_in_min: int = 240, carry: FundingCarry = CARRY, **kw):
    m = market(rate=rate, predicted=predicted, next_ms=NOW + minutes(next_in_min), **kw)
    return by_symbol(carry.evaluate(snap(m, pairs=(pair("BTC/USDT", "0.3"),))))["BTC/USDT"]


def test_hysteresis_keeps_a_held_pair_between_thresholds_but_does_not_enter_it():
    # 0.00006 per 8h is 6.57% APR: below the 10% entry, but a held pair's entry is sunk.
    rate = "0.00006"
    assert held(rate).action is Action.HOLD
    assert decide(market(rate=rate))["BTC/USDT"].reason.rule == "skip_forecast_below_entry"


def test_no_flapping_while_the_rate_oscillates_between_thresholds():
    actions = [held(r).action for r in ("0.00005", "0.00009", "0.00004", "0.00008", "0.000035")]
    assert actions == [Action.HOLD] * 5


def test_the_entry_is_sunk_a_held_pair_leaves_only_when_holding_loses_more_than_a_round_trip():
    # (the symbol's own rates only: the baseline blend would lift these forecasts)
    assert held("0.00001", carry=NO_BASELINE).action is Action.HOLD  # 1.1% APR: leaving costs a round trip
    mild = held("-0.00001", carry=NO_BASELINE)  # it pays a little, less than leaving and coming back costs
    e = mild.reason.economics
    assert mild.action is Action.HOLD and -e.round_trip_cost < e.expected_funding < 0
    t = held("-0.0002", carry=NO_BASELINE)
    e = t.reason.economics
    assert (t.action, t.reason.rule, t.target_qty) == (Action.EXIT, "exit_negative_funding", 0)
    assert -e.expected_funding > e.round_trip_cost and e.horizon_hours == D(720)
    assert f"pay {-e.expected_funding} USDT over 720h" in t.reason.message
    assert f"{e.round_trip_cost} USDT of leaving and coming back" in t.reason.message


def test_settlement_guard_blocks_exit_before_a_paying_settlement():
    # a paying next settlement (predicted > 0) against a deeply negative history: the horizon forecast says
    # leave, but not 10 minutes before a payment
    kw = {"predicted": "0.00001", "hist": history(D("-0.001"), 8)}
    t = held("-0.001", next_in_min=10, **kw)
    assert (t.action, t.reason.rule) == (Action.HOLD, "hold_settlement_imminent")
    assert t.target_qty == D("0.3")
    assert held("-0.001", next_in_min=16, **kw).action is Action.EXIT  # outside the 15 min guard


def test_negative_funding_exits_even_inside_the_guard():
    t = held("-0.0002", next_in_min=5)
    assert (t.action, t.reason.rule) == (Action.EXIT, "exit_negative_funding")


def test_one_negative_print_with_strong_history_is_held():
    # a round trip costs more than one small negative settlement when history stays strong
    t = held("0.0008", predicted="-0.00005")
    assert t.action is Action.HOLD and t.reason.economics.expected_funding > 0


def test_one_print_moves_the_forecast_only_by_its_weight_when_the_baseline_anchors_it():
    from strategies.forecast import forecast_funding

    params = CarryParams(predicted_weight=D("0.25"), baseline_weight=D("0.5"))
    m = market(rate="0.0001", predicted="-0.0002")
    f = forecast_funding(m, NOW, params)
    expected_later = D("0.25") * D("-0.0002") / 8 + D("0.25") * D("0.0001") / 8 + D("0.5") * D("0.0001") / 8
    assert f.later_per_hour == expected_later
    assert f.horizon_rate == D("-0.0002") + (f.settlements - 1) * expected_later * 8
    assert f.apr > 0  # one negative print does not turn a month's forecast negative


SWITCH_HELD = {"A/USDT": "0.0001", "B/USDT": "0.00012", "C/USDT": "0.00013", "D/USDT": "0.00014"}


def switch_case(candidate_rate: str):
    ms = [market(sym, rate=r) for sym, r in SWITCH_HELD.items()] + [market("E/USDT", rate=candidate_rate)]
    return decide(*ms, pairs=tuple(pair(sym, "0.28") for sym in SWITCH_HELD))


def test_a_much_better_candidate_replaces_the_weakest_held_pair():
    out = switch_case("0.001")
    assert (out["A/USDT"].action, out["A/USDT"].reason.rule) == (Action.EXIT, "exit_switch")
    assert (out["E/USDT"].action, out["E/USDT"].reason.rule) == (Action.ENTER, "enter_switch")
    assert out["E/USDT"].target_qty > 0
    assert all(out[s].action is Action.HOLD for s in ("B/USDT", "C/USDT", "D/USDT"))
    inputs = out["A/USDT"].reason.inputs
    assert D(inputs["switch_gain_apr"]) > D(inputs["switch_cost_apr"]) > 0
    assert "exit and possible re-entry" in out["A/USDT"].reason.message


def test_a_slightly_better_candidate_does_not_pay_for_a_switch():
    out = switch_case("0.00011")  # 12.0% APR against A's 10.95%: less than two round trips over the horizon
    assert out["A/USDT"].action is Action.HOLD
    assert (out["E/USDT"].action, out["E/USDT"].reason.rule) == (Action.SKIP, "skip_not_in_top_n")


def test_post_settlement_entry_rule():
    just_after = NOW + minutes(5)  # the NOW settlement was 5 minutes ago
    strong_hist = history(D("0.0008"), 8)
    weak_next = market(rate="0.0008", predicted="0.00005", hist=strong_hist, next_ms=NOW + 8 * HOUR_MS)
    t = by_symbol(CARRY.evaluate(snap(weak_next, now_ms=just_after)))["BTC/USDT"]
    assert (t.action, t.reason.rule) == (Action.SKIP, "skip_post_settlement_unattractive")
    # outside the guard the same market enters
    later = by_symbol(CARRY.evaluate(snap(weak_next, now_ms=NOW + minutes(20))))["BTC/USDT"]
    assert later.action is Action.ENTER
    # inside the guard with an attractive next settlement it enters
    good_next = market(rate="0.0008", hist=strong_hist, next_ms=NOW + 8 * HOUR_MS)
    assert by_symbol(CARRY.evaluate(snap(good_next, now_ms=just_after)))["BTC/USDT"].action is Action.ENTER


def test_no_entry_just_before_a_negative_settlement():
    m = market(rate="0.0008", predicted="-0.0001")  # next settlement at NOW + 8h
    out = by_symbol(CARRY.evaluate(snap(m, now_ms=NOW + 8 * HOUR_MS - minutes(10))))
    assert out["BTC/USDT"].reason.rule == "skip_negative_settlement_imminent"


def test_pair_states():
    m = market()
    out = decide(
        m,
        market("ETH/USDT", price="3000"),
        pairs=(
            pair("BTC/USDT", "0.3", state=PairState.CLOSING),
            pair("ETH/USDT", "1", "0.5", state=PairState.QUARANTINED),
            pair("XRP/USDT", "100"),
        ),
    )
    assert (out["BTC/USDT"].action, out["BTC/USDT"].reason.rule) == (Action.EXIT, "exit_in_progress")
    assert (out["ETH/USDT"].action, out["ETH/USDT"].reason.rule) == (Action.HOLD, "hold_quarantined")
    assert (out["XRP/USDT"].reason.rule, out["XRP/USDT"].target_qty) == ("hold_no_market_data", D(100))


# ---- held sizes and hedge maintenance --------------------------------------------------------------


def test_held_size_is_kept_within_tolerance_and_resized_beyond():
    want = decide(market())["BTC/USDT"].target_qty  # 0.348 with 100k capital
    near = decide(market(), pairs=(pair("BTC/USDT", "0.33"),))["BTC/USDT"]
    assert (near.action, near.target_qty) == (Action.HOLD, D("0.33"))
    small = decide(market(), pairs=(pair("BTC/USDT", "0.1"),))["BTC/USDT"]
    assert (small.action, small.reason.rule, small.target_qty) == (Action.RESIZE, "resize_up", want)
    big = decide(market(), pairs=(pair("BTC/USDT", "1"),))["BTC/USDT"]
    assert (big.action, big.reason.rule, big.target_qty) == (Action.RESIZE, "resize_down_cap", want)


def test_other_pairs_drifting_above_their_caps_never_squeeze_the_last_ranked_one():
    # four slots sharing the whole total cap; the three best have drifted 10% above their own caps (within
    # tolerance, so they hold): the fourth keeps its full share instead of being cut to what is left
    params = CarryParams(max_per_symbol_fraction=D("0.225"))
    carry = FundingCarry(params)
    rates = {"A/USDT": "0.0004", "B/USDT": "0.0003", "C/USDT": "0.0002", "D/USDT": "0.00015"}
    ms = [market(s, rate=r) for s, r in rates.items()]
    cap = by_symbol(carry.evaluate(snap(ms[3])))["D/USDT"].target_qty
    pairs = (*(pair(s, str(cap * D("1.1"))) for s in ("A/USDT", "B/USDT", "C/USDT")), pair("D/USDT", str(cap)))
    out = by_symbol(carry.evaluate(snap(*ms, pairs=pairs)))
    assert {s: (out[s].action, out[s].target_qty) for s in rates} == {
        **{s: (Action.HOLD, cap * D("1.1")) for s in ("A/USDT", "B/USDT", "C/USDT")},
        "D/USDT": (Action.HOLD, cap),
    }


def test_hedge_drift_is_rebalanced_to_the_smaller_leg():
    t = decide(market(), pairs=(pair("BTC/USDT", "0.3", "0.32"),))["BTC/USDT"]
    assert (t.action, t.reason.rule, t.target_qty) == (Action.REBALANCE, "rebalance_hedge_drift", D("0.3"))
    # fees in base asset: a tiny mismatch within tolerance is left alone
    ok = decide(market(), pairs=(pair("BTC/USDT", "0.3297", "0.33"),))["BTC/USDT"]
    assert ok.action is Action.HOLD


def test_hedge_drift_rounds_to_the_common_step():
    t = decide(market(step="0.01"), pairs=(pair("BTC/USDT", "0.3099", "0.33"),))["BTC/USDT"]
    assert t.reason.rule == "rebalance_hedge_drift" and t.target_qty == D("0.30")


def test_exits_free_capital_for_others_and_total_cap_holds():
    params = CarryParams()
    out = decide(*[market(f"C{i}/USDT", rate="0.001") for i in range(6)], capital="10000")
    used = sum(t.target_qty * D(t.reason.inputs["spot_ask"]) * params.capital_per_notional for t in out.values())
    assert used <= D(10000) * params.max_total_fraction
    assert sum(t.action is Action.ENTER for t in out.values()) == 4


# ---- determinism and records ----------------------------------------------------------------------


def test_same_snapshot_same_output_under_any_decimal_context():
    s = snap(market(), market("ETH/USDT", price="3000", rate="0.0003"), pairs=(pair("BTC/USDT", "0.3", "0.25"),))
    first = CARRY.evaluate(s)
    with localcontext() as ctx:
        ctx.prec = 6
        second = CARRY.evaluate(s)
    assert first == second
    assert [t.to_dict() for t in first] == [t.to_dict() for t in FundingCarry().evaluate(s)]


def test_reason_json_round_trip():
    for t in CARRY.evaluate(snap(market(), market("ETH/USDT", rate="0.00001"))):
        text = json.dumps(t.to_dict())
        back = Reason.from_dict(json.loads(text)["reason"])
        assert back == t.reason


# ---- parameters -----------------------------------------------------------------------------------


def test_params_validation_messages():
    with pytest.raises(ParamsError, match=r"predicted_weight \(0.7\) \+ baseline_weight \(0.4\) must be at most 1"):
        load_params({"predicted_weight": "0.7", "baseline_weight": "0.4"})
    with pytest.raises(ParamsError, match="exit_threshold_apr: unknown parameter"):
        load_params({"exit_threshold_apr": "0.03"})
    with pytest.raises(ParamsError, match=r"max_symbols: .*greater than or equal to 1 \(unit: count\)"):
        load_params({"max_symbols": 0})
    with pytest.raises(ParamsError, match="hold_horizn_hours: unknown parameter"):
        load_params({"hold_horizn_hours": 10})
    assert load_params({"hold_horizon_hours": "48"}).hold_horizon_hours == Decimal(48)


def test_every_param_documents_description_and_unit():
    for name, field in CarryParams.model_fields.items():
        assert field.description, name
        assert isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("unit"), name


def test_readme_parameter_table_matches_the_code():
    from pathlib import Path

    from strategies.params import params_table_markdown

    readme = (Path(__file__).resolve().parents[2] / "strategies" / "README.md").read_text()
    assert params_table_markdown() in readme


def test_held_pairs_beyond_max_symbols_exit_worst_first():
    ms = [market(f"C{i}/USDT", rate=f"0.000{i + 5}") for i in range(3)]
    held_pairs = tuple(pair(m.symbol, "0.3") for m in ms)
    out = by_symbol(FundingCarry(CarryParams(max_symbols=2)).evaluate(snap(*ms, pairs=held_pairs)))
    assert (out["C0/USDT"].action, out["C0/USDT"].reason.rule) == (Action.EXIT, "exit_not_in_top_n")
    assert out["C1/USDT"].action is out["C2/USDT"].action is Action.HOLD


def test_shrinking_waits_for_a_paying_settlement_and_tiny_caps_exit():
    m = market(next_ms=NOW + minutes(5))
    t = decide(m, pairs=(pair("BTC/USDT", "1"),))["BTC/USDT"]
    assert (t.action, t.reason.rule, t.target_qty) == (Action.HOLD, "hold_settlement_imminent", D(1))
    tiny = decide(market(min_notional="100"), pairs=(pair("BTC/USDT", "1"),), capital="100")["BTC/USDT"]
    assert (tiny.action, tiny.reason.rule) == (Action.EXIT, "exit_capital_cap")


def test_thin_book_bounds_growth_but_never_forces_a_held_pair_down():
    # depth 2 BTC per side: the liquidity cap (10% of the thinnest side) is 0.2 per trade
    thin = market(depth="2")
    entry = decide(thin)["BTC/USDT"]
    assert entry.action is Action.ENTER and entry.target_qty <= D("0.2")
    held = decide(thin, pairs=(pair("BTC/USDT", "0.3"),))["BTC/USDT"]
    assert held.action is Action.HOLD and held.target_qty == D("0.3")
    grow = decide(thin, pairs=(pair("BTC/USDT", "0.1"),))["BTC/USDT"]
    assert grow.action is Action.RESIZE and D("0.1") < grow.target_qty <= D("0.3")


def test_a_growing_pair_never_shrinks_another_held_pair():
    """Held pairs reserve their size first: the better pair grows only into unreserved capital, so capital
    never round-trips between pairs (each shrink-and-regrow pays fees on both legs twice)."""
    carry = FundingCarry(CarryParams(max_symbols=2, max_per_symbol_fraction=D("0.6"), max_total_fraction=D("0.9")))
    btc = market("BTC/USDT", rate="0.001", depth="100")  # the better pair, held small
    eth = market("ETH/USDT", rate="0.0005", depth="100")  # held large, still attractive
    out = by_symbol(carry.evaluate(snap(btc, eth, pairs=(pair("BTC/USDT", "0.1"), pair("ETH/USDT", "0.8")))))
    assert (out["ETH/USDT"].action, out["ETH/USDT"].target_qty) == (Action.HOLD, D("0.8"))
    grow = out["BTC/USDT"]
    assert grow.action is Action.RESIZE and D("0.1") < grow.target_qty
    alone = by_symbol(carry.evaluate(snap(btc, eth, pairs=(pair("BTC/USDT", "0.1"),))))["BTC/USDT"]
    assert grow.target_qty < alone.target_qty  # without ETH held, BTC could have taken more
