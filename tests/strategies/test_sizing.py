"""Sizing and rounding invariants, property-based over random filters, prices, depth and capital."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategy_builders import NOW, D, history

from bot.domain import HOUR_MS, MarketFilters, PairState, perp_symbol
from strategies.base import Action, Fees, LegMarket, MarketSnapshot, PairView, SlippageModel, Snapshot
from strategies.funding_carry import CarryParams, FundingCarry
from strategies.sizing import SizingFilters, common_step, liquidity_cap_qty

steps = st.builds(lambda k, e: Decimal(k).scaleb(-e), st.integers(1, 50), st.integers(0, 6))
prices = st.builds(lambda k, e: Decimal(k).scaleb(-e), st.integers(1, 10**6), st.integers(0, 4))
fractions = st.builds(lambda k: Decimal(k) / 100, st.integers(1, 100))


@given(steps, steps)
@pytest.mark.slow
def test_common_step_is_the_least_common_multiple(a, b):
    c = common_step(a, b)
    assert c % a == 0 and c % b == 0
    assert c >= max(a, b)
    if b % a == 0:
        assert c == b  # the coarser step when one divides the other
    # no smaller common multiple: c / a and c / b share no factor
    from math import gcd

    assert gcd(int(c / a), int(c / b)) == 1


@st.composite
def leg_markets(draw, symbol: str, price: Decimal):
    step = draw(steps)
    min_qty = step * draw(st.integers(0, 20)) + draw(st.sampled_from([D(0), step / 3]))
    min_notional = Decimal(draw(st.integers(0, 200)))
    filt = MarketFilters(symbol, D("0.0001"), step, min_qty, min_notional)
    spread = price * Decimal(draw(st.integers(0, 20))) / 10_000
    bid, ask = price, price + spread
    fees = Fees(D("0.0002"), Decimal(draw(st.integers(0, 10))) / 10_000)
    if draw(st.booleans()):
        qtys = draw(
            st.lists(
                st.builds(lambda k, e: Decimal(k).scaleb(-e), st.integers(1, 10**5), st.integers(0, 3)),
                min_size=1,
                max_size=5,
            )
        )
        tick = max(price / 1000, D("0.0001"))
        bids = tuple((max(bid - i * tick, tick), q) for i, q in enumerate(qtys))
        asks = tuple((ask + i * tick, q) for i, q in enumerate(qtys))
        return LegMarket(filt, bid, ask, fees, bids, asks)
    model = SlippageModel(Decimal(draw(st.integers(0, 50))), Decimal(draw(st.integers(1_000, 10**6))))
    return LegMarket(filt, bid, ask, fees, slippage=model)


@st.composite
def market_snapshots(draw, symbol: str):
    price = draw(prices)
    interval = draw(st.sampled_from([1, 2, 4, 8]))
    rate = Decimal(draw(st.integers(-20, 200))) / 100_000 * interval
    return MarketSnapshot(
        symbol=symbol,
        spot=draw(leg_markets(symbol, price)),
        perp=draw(leg_markets(perp_symbol(symbol), price * (1 + Decimal(draw(st.integers(-10, 10))) / 10_000))),
        funding_rate=rate,
        predicted_rate=rate,
        interval_hours=interval,
        next_funding_ms=NOW + interval * HOUR_MS,
        history=history(rate, interval, hours=24),
    )


params_st = st.builds(
    lambda n, per, extra, lev, liq: CarryParams(
        max_symbols=n,
        max_per_symbol_fraction=per,
        max_total_fraction=min(Decimal(1), per + extra),
        perp_leverage=lev,
        liquidity_fraction=liq,
        max_break_even_fraction=Decimal(1),
        entry_threshold_apr=D("0.01"),
    ),
    st.integers(1, 4),
    fractions,
    fractions,
    st.sampled_from([D(1), D(2), D(3), D(5), D(20)]),
    fractions,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["AAA", "BBB", "CCC", "DDD", "EEE"]), min_size=1, max_size=5, unique=True).flatmap(
        lambda names: st.tuples(*[market_snapshots(f"{n}/USDT") for n in names])
    ),
    st.builds(lambda k, e: Decimal(k).scaleb(e), st.integers(0, 10**4), st.integers(-2, 4)),
    params_st,
)
@pytest.mark.slow
def test_targets_respect_filters_caps_and_equal_legs(markets, capital, params):
    snapshot = Snapshot(NOW, tuple(markets), (), capital)
    targets = FundingCarry(params).evaluate(snapshot)
    assert sorted(t.symbol for t in targets) == sorted(m.symbol for m in markets)
    total_capital = Decimal(0)
    entered = 0
    for t in targets:
        m = snapshot.market(t.symbol)
        q = t.target_qty
        assert q.is_finite() and q >= 0
        if q == 0:
            assert t.action is Action.SKIP
            continue
        entered += 1
        assert t.action is Action.ENTER
        # one quantity for both legs: on both steps, and both markets accept it at the (lower) bid
        assert q % m.spot.filters.step_size == 0 and q % m.perp.filters.step_size == 0
        assert m.spot.filters.accepts(q, m.spot.bid) and m.perp.filters.accepts(q, m.perp.bid)
        used = q * m.spot.ask * params.capital_per_notional
        assert used <= capital * params.max_per_symbol_fraction
        liquidity = liquidity_cap_qty(m.spot, m.perp, params.liquidity_fraction, params.max_slippage_bps)
        assert liquidity is None or q <= liquidity
        e = t.reason.economics
        assert e.break_even_hours is not None and e.break_even_hours <= params.hold_horizon_hours
        total_capital += used
    event(f"entered={entered}")
    assert entered <= params.max_symbols
    assert total_capital <= capital * params.max_total_fraction


@settings(max_examples=300, deadline=None)
@given(
    market_snapshots("AAA/USDT"),
    st.builds(lambda k, e: Decimal(k).scaleb(-e), st.integers(0, 10**9), st.integers(0, 8)),
)
@pytest.mark.slow
def test_pair_rounding_is_on_both_steps_and_never_rounds_up(m, raw):
    pf = SizingFilters.of(m.spot, m.perp)
    q = pf.round(raw)
    assert 0 <= q <= raw
    assert q % m.spot.filters.step_size == 0 and q % m.perp.filters.step_size == 0
    assert raw - q < pf.step
    smallest = pf.min_qty()
    assert pf.violation(smallest) is None
    if smallest > pf.step:
        assert pf.violation(smallest - pf.step) is not None


@settings(max_examples=100, deadline=None)
@given(market_snapshots("AAA/USDT"))
def test_rejected_sizes_say_why(m):
    # the per-symbol cap is just below the smallest pair both markets accept: skipped, with the reason
    params = CarryParams()
    smallest = SizingFilters.of(m.spot, m.perp).min_qty()
    capital = smallest * m.spot.ask * params.capital_per_notional / params.max_per_symbol_fraction * D("0.99")
    (t,) = FundingCarry(params).evaluate(Snapshot(NOW, (m,), (), capital))
    assert t.target_qty == 0 and t.action is Action.SKIP
    assert t.reason.rule.startswith("skip_") and t.reason.message
    # the forecast and settlement-timing rules decide before any size is tried (FundingCarry.entry_block)
    timing = ("skip_forecast_below_entry", "skip_post_settlement_unattractive", "skip_negative_settlement_imminent")
    if t.reason.rule not in timing:
        assert t.reason.rule in ("skip_below_min_qty", "skip_below_min_notional")


@settings(max_examples=200, deadline=None)
@given(
    market_snapshots("AAA/USDT"),
    st.builds(lambda k, e: Decimal(k).scaleb(-e), st.integers(0, 10**6), st.integers(0, 4)),
    st.integers(-300, 300),
    st.sampled_from(list(PairState)),
    st.integers(0, 8 * 60),
    params_st,
)
@pytest.mark.slow
def test_held_pairs_get_valid_targets(m, spot_qty, drift_permille, state, minute, params):
    perp_qty = max(spot_qty * (1000 + drift_permille) / 1000, Decimal(0))
    held = PairView("AAA/USDT", state, spot_qty, perp_qty)
    snapshot = Snapshot(NOW + minute * 60_000, (m,), (held,), D(100_000))
    (t,) = FundingCarry(params).evaluate(snapshot)
    event(t.reason.rule)
    q = t.target_qty
    assert q.is_finite() and q >= 0
    if t.action in (Action.ENTER, Action.RESIZE, Action.REBALANCE):
        assert m.spot.filters.accepts(q, m.spot.bid) and m.perp.filters.accepts(q, m.perp.bid)
    if t.action is Action.REBALANCE:
        assert q <= min(spot_qty, perp_qty)
    if t.action is Action.EXIT:
        assert q == 0
    if t.action is Action.HOLD:
        assert q == held.hedged_qty
    if state is PairState.CLOSED:
        assert t.action in (Action.SKIP, Action.ENTER)


def test_resize_orders_are_held_to_each_markets_minimums():
    """A growth sends a perp sell of the difference: below BTCUSDT's 100 USDT it fails on Binance, so the
    strategy keeps the held size instead of resizing (a reduction's perp leg is reduce-only: exempt)."""
    from strategy_builders import leg

    from strategies.sizing import SizingFilters

    spot = leg("BTC/USDT", D(10_000), min_notional="5")
    perp = leg("BTC/USDT:USDT", D(10_000), min_notional="100")
    f = SizingFilters.of(spot, perp)
    rule, text = f.order_violation(D("0.010"), D("0.013"))
    assert rule == "skip_order_below_min_notional" and "BTC/USDT:USDT min notional 100" in text
    assert f.order_violation(D("0.010"), D("0.025")) is None  # 150 USDT orders pass
    assert f.order_violation(D("0.013"), D("0.010")) is None  # spot sells 30 USDT >= 5; perp buy is reduce-only


def test_held_pair_is_not_grown_by_an_order_the_venue_would_refuse():
    from strategy_builders import market, pair, snap

    from strategies.base import Action
    from strategies.funding_carry import CarryParams, FundingCarry

    held = pair("BTC/USDT", "0.010")
    params = CarryParams(max_per_symbol_fraction=D("0.25"), resize_tolerance_fraction=D("0.2"))
    outcomes = {}
    for min_notional in ("5", "100"):
        m = market("BTC/USDT", price="10000", rate="0.001", min_notional=min_notional)
        t = FundingCarry(params).evaluate(snap(m, pairs=(held,), capital="800"))[0]
        outcomes[min_notional] = t
    assert outcomes["5"].action is Action.RESIZE and outcomes["5"].target_qty > D("0.010")
    assert outcomes["100"].action is Action.HOLD and outcomes["100"].target_qty == D("0.010")
    assert "min notional 100" in outcomes["100"].reason.message


def test_a_pair_never_holds_more_than_one_market_order_can_close():
    """ADAUSDT's perp takes at most 300,000 in one market order: grown past that in resizes, the pair
    could not be exited (-4005), so the held size is capped there too."""
    from dataclasses import replace

    from strategy_builders import market, pair, snap

    from bot.domain import MarketFilters
    from strategies.base import Action
    from strategies.funding_carry import FundingCarry

    def capped(m):
        perp = m.perp.filters
        f = MarketFilters(perp.symbol, perp.tick_size, perp.step_size, perp.min_qty, perp.min_notional, D(300_000))
        return replace(m, perp=replace(m.perp, filters=f))

    m = capped(market("ADA/USDT", price="0.03", rate="0.001", step="1", min_qty="1", depth="100000000"))
    entry = FundingCarry().evaluate(snap(m, capital="1000000"))[0]
    assert entry.action is Action.ENTER and entry.target_qty == D(300_000)
    held = FundingCarry().evaluate(snap(m, pairs=(pair("ADA/USDT", "588249"),), capital="1000000"))[0]
    assert held.target_qty <= D(300_000) and held.action in (Action.RESIZE, Action.EXIT)
