"""Baselines: same interface and sizing as the carry strategy, naive decisions."""

from __future__ import annotations

from strategy_builders import D, by_symbol, market, pair, snap

from strategies.base import Action
from strategies.baselines import AlwaysOn, AlwaysOnBTC, TopNByLastRate
from strategies.funding_carry import CarryParams, FundingCarry


def test_always_on_btc_holds_btc_whatever_funding_does():
    s = snap(market(rate="-0.001"), market("ETH/USDT", price="3000", rate="0.002"))
    out = by_symbol(AlwaysOnBTC().evaluate(s))
    assert out["BTC/USDT"].action is Action.ENTER
    assert out["BTC/USDT"].target_qty == by_symbol(FundingCarry().evaluate(snap(market())))["BTC/USDT"].target_qty
    assert (out["ETH/USDT"].action, out["ETH/USDT"].reason.rule) == (Action.SKIP, "skip_baseline_other_symbol")
    held = by_symbol(AlwaysOnBTC().evaluate(snap(market(rate="-0.001"), pairs=(pair("BTC/USDT", "0.34"),))))
    assert (held["BTC/USDT"].action, held["BTC/USDT"].target_qty) == (Action.HOLD, D("0.34"))


def test_top_n_by_last_rate_ranks_raw_rates_ignoring_intervals_and_costs():
    ms = (
        market("EIGHT/USDT", rate="0.0016", interval=8),  # 0.0002 per hour
        market("ONE/USDT", rate="0.0003", interval=1),  # 0.0003 per hour: better, but smaller raw
        market("NEG/USDT", rate="-0.001"),
    )
    naive = by_symbol(TopNByLastRate(CarryParams(max_symbols=1)).evaluate(snap(*ms)))
    assert naive["EIGHT/USDT"].action is Action.ENTER
    assert naive["ONE/USDT"].reason.rule == "skip_baseline_not_top_n"
    both = by_symbol(TopNByLastRate().evaluate(snap(*ms, pairs=(pair("NEG/USDT", "1"),))))
    assert both["ONE/USDT"].action is Action.ENTER
    assert (both["NEG/USDT"].action, both["NEG/USDT"].target_qty) == (Action.EXIT, 0)


def test_top_n_enters_even_when_fees_eat_the_funding():
    s = snap(market(rate="0.0001", fee="0.005"))
    assert by_symbol(TopNByLastRate().evaluate(s))["BTC/USDT"].action is Action.ENTER
    assert by_symbol(FundingCarry().evaluate(s))["BTC/USDT"].action is Action.SKIP


def test_baselines_are_deterministic_and_serialisable():
    s = snap(market(), market("ETH/USDT", price="3000"), pairs=(pair("XRP/USDT", "10"),))
    for strategy in (AlwaysOnBTC(), TopNByLastRate()):
        first = strategy.evaluate(s)
        assert first == strategy.evaluate(s)
        assert [t.symbol for t in first] == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]
        assert by_symbol(first)["XRP/USDT"].reason.rule == "hold_no_market_data"
        assert all(isinstance(t.to_dict()["reason"]["rule"], str) for t in first)


def test_always_on_holds_every_symbol_with_equal_shares_of_the_total_cap_whatever_funding_does():
    p = CarryParams()
    syms = [f"S{i}/USDT" for i in range(8)]
    ms = [market(s, rate="-0.001" if i % 2 else "0.0001") for i, s in enumerate(syms)]
    out = by_symbol(AlwaysOn(p).evaluate(snap(*ms)))
    share = D(100000) * p.max_total_fraction / 8  # 0.1125 of capital each: under the 0.25 per-symbol cap
    for s in syms:
        t = out[s]
        assert t.action is Action.ENTER and t.reason.rule == "enter", s
        used = t.target_qty * D(t.reason.inputs["spot_ask"]) * p.capital_per_notional
        assert share - D(50) < used <= share  # floored to the common step (0.001 BTC = 50 USDT)
    # two symbols: each is held at the per-symbol cap (0.45 of capital each would exceed it), like the BTC case
    two = by_symbol(AlwaysOn(p).evaluate(snap(market(), market("ETH/USDT", price="3000"))))
    assert two["BTC/USDT"].target_qty == by_symbol(AlwaysOnBTC(p).evaluate(snap(market())))["BTC/USDT"].target_qty
    # a held pair drifted within tolerance is kept; the others' drift never squeezes it (own shares)
    q = out["S0/USDT"].target_qty
    drifted = tuple(pair(s, str(q * D("1.15"))) for s in syms)  # together above the total cap
    kept = by_symbol(AlwaysOn(p).evaluate(snap(*ms, pairs=drifted)))
    assert all(kept[s].action is Action.HOLD for s in syms), {s: kept[s].reason.rule for s in syms}


def test_always_on_over_a_symbol_list_holds_only_those():
    s = snap(
        market(), market("ETH/USDT", price="3000"), market("XRP/USDT", price="1"), pairs=(pair("XRP/USDT", "100"),)
    )
    out = by_symbol(AlwaysOn(symbols=("BTC/USDT", "ETH/USDT")).evaluate(s))
    assert out["BTC/USDT"].action is Action.ENTER and out["ETH/USDT"].action is Action.ENTER
    assert (out["XRP/USDT"].action, out["XRP/USDT"].reason.rule) == (Action.EXIT, "exit_baseline_other_symbol")
    assert AlwaysOn().name == "always_on" and AlwaysOnBTC().name == "always_on_btc"
