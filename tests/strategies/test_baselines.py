"""Baselines: same interface and sizing as the carry strategy, naive decisions."""

from __future__ import annotations

from strategy_builders import D, by_symbol, market, pair, snap

from strategies.base import Action
from strategies.baselines import AlwaysOnBTC, TopNByLastRate
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
