"""Executor against the real SimExchange (via SimVenue) and the real Ledger."""

from __future__ import annotations

import ccxt
import pytest

from bot.domain import Leg, PairState
from bot.execution import Executor, SimpleTarget
from bot.execution.ids import BINANCE_CLIENT_ID
from bot.ledger.models import EventKind, IntentStatus
from bot.ledger.repository import Ledger
from execution.world import FAST, SYMBOL, D, World, make_world

pytestmark = pytest.mark.memory_ledger  # the executor's ledger tests also run on the backtest's recorder


@pytest.fixture
async def world(ledger: Ledger) -> World:
    w = make_world(ledger, spot_usdt="20000", futures_usdt="5000")
    await w.venue.setup_symbol(SYMBOL, 3, "cross")
    return w


async def venue_legs(w: World) -> tuple[D, D]:
    balances = {(b.wallet, b.asset): b.total for b in await w.venue.fetch_balances()}
    pos = (await w.venue.fetch_positions([SYMBOL])).get(SYMBOL)
    return balances.get(("spot", "BTC"), D(0)), -(pos.qty if pos else D(0))


async def test_open_gives_equal_legs_and_records_everything(world: World) -> None:
    ex = world.executor()
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1234567")))
    assert res.status in {"done", "repaired"}, res
    spot, short = await venue_legs(world)
    assert short == D("0.123")
    assert abs(spot - short) < D("0.001")  # spot buys pay their fee in BTC: below one perp step
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair is not None and pair.state is PairState.OPEN
    assert (pair.spot_qty, pair.perp_qty) == (spot, short)
    assert pair.entry_basis is not None
    orders = await world.ledger.list_orders(pair_id=pair.id)
    assert {o.client_order_id for o in orders} >= {f"fb-{pair.id}-1-s", f"fb-{pair.id}-1-p"}
    assert all(BINANCE_CLIENT_ID.fullmatch(o.client_order_id) for o in orders)
    assert all(o.status == "closed" for o in orders)
    fills = await world.ledger.list_fills(pair_id=pair.id)
    assert {f.market for f in fills} == {Leg.SPOT, Leg.PERP}
    intents = await world.ledger.open_intents()
    assert intents == []
    kinds = {e.kind for e in await world.ledger.events(pair_id=pair.id)}
    assert {EventKind.DECISION, EventKind.ORDER, EventKind.FILL} <= kinds


async def test_close_sells_spot_and_buys_back_reduce_only(world: World) -> None:
    ex = world.executor()
    await ex.apply(SimpleTarget(SYMBOL, D("0.05")))
    res = await ex.apply(SimpleTarget(SYMBOL, D(0)))
    assert res.status == "done", res
    spot, short = await venue_legs(world)
    assert short == 0 and spot < D("0.00001")
    assert await world.ledger.active_pair("sim", SYMBOL) is None
    orders = await world.ledger.list_orders(symbol=SYMBOL)
    perp_close = [o for o in orders if o.leg is Leg.PERP and o.side == "buy"]
    assert perp_close and all(o.reduce_only for o in perp_close)


async def test_partial_fill_of_one_leg_is_topped_up(world: World) -> None:
    ex = world.executor()
    # the first order to take (whichever leg the loop runs first) fills only 40 %
    world.sim.force_partial_fill("0.4")
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status == "repaired", res
    assert any("-t1" in cid for cid in res.client_ids)
    spot, short = await venue_legs(world)
    # either leg may have been the partial one: the perp ends at 0.1, or matches the spot's 0.0999 (net of fee)
    assert short in {D("0.1"), D("0.099")} and abs(spot - short) < D("0.001")


async def test_retryable_failure_of_second_leg_is_completed_with_a_fresh_id(world: World) -> None:
    ex = world.executor()
    world.venue.fail(
        "create_order", ccxt.ExchangeNotAvailable("binance 503"), times=1, when=lambda args: args[0].leg is Leg.PERP
    )
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status == "repaired", res
    pair = await world.ledger.active_pair("sim", SYMBOL)
    first = await world.ledger.get_intent(f"fb-{pair.id}-1-p")
    assert first.status is IntentStatus.FAILED and "not placed" in (first.last_error or "")
    assert f"fb-{pair.id}-1-p-t1" in res.client_ids
    spot, short = await venue_legs(world)
    # the spot buy was grossed up for its BTC fee, so the top-up brings the short to the full 0.1
    assert short == D("0.1") and abs(spot - short) < D("0.001")


async def test_timeout_after_the_order_was_placed_is_looked_up_not_resent(world: World) -> None:
    ex = world.executor()
    world.venue.fail(
        "create_order",
        ccxt.RequestTimeout("timed out"),
        times=1,
        after_call=True,
        when=lambda args: args[0].leg is Leg.PERP,
    )
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status == "done", res
    assert len(world.sim_orders("perp")) == 1  # found by client id, never resubmitted
    _, short = await venue_legs(world)
    assert short == D("0.1")


async def test_refused_second_leg_unwinds_the_filled_leg(world: World) -> None:
    ex = world.executor()
    # the futures wallet is empty: the perp sell is refused for margin, so the spot buy must be sold back
    await world.venue.transfer("USDT", D("5000"), "futures", "spot")
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status == "unwound", res
    spot, short = await venue_legs(world)
    assert short == 0 and spot < D("0.001")
    assert await world.ledger.active_pair("sim", SYMBOL) is None  # nothing held: the pair is closed
    assert any("-u1" in cid for cid in res.client_ids)


async def test_circuit_breaker_opens_after_k_failed_actions(world: World) -> None:
    ex = world.executor()
    world.venue.fail(
        "create_order",
        ccxt.InsufficientFunds("binance -2019 Margin is insufficient."),
        times=99,
        when=lambda args: args[0].leg is Leg.PERP,
    )
    for _ in range(FAST.breaker_failures):
        res = await ex.apply(SimpleTarget(SYMBOL, D("0.01")))
        assert res.status == "unwound", res
    sent = world.venue.calls["create_order"]
    blocked = await ex.apply(SimpleTarget(SYMBOL, D("0.01")))
    assert blocked.status == "blocked"
    assert world.venue.calls["create_order"] == sent  # nothing sent while open
    alerts = await world.ledger.events(kinds=[EventKind.ALERT])
    assert any("circuit breaker opened" in e.message for e in alerts)
    world.clock.advance(int(FAST.breaker_cooldown_s * 1000) + 1)
    world.venue.faults.clear()
    assert (await ex.apply(SimpleTarget(SYMBOL, D("0.01")))).status in {"done", "repaired"}


async def test_unrepairable_hedge_quarantines_the_pair(world: World) -> None:
    ex = world.executor()
    world.venue.fail(
        "create_order",
        ccxt.InsufficientFunds("binance -2019 Margin is insufficient."),
        times=99,
        when=lambda args: args[0].leg is Leg.PERP,
    )
    world.venue.fail(
        "create_order",
        ccxt.ExchangeNotAvailable("binance 503"),
        times=99,
        when=lambda args: args[0].client_order_id.endswith(("-u1", "-u2", "-u3")),
    )
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.01")))
    assert res.status == "quarantined"
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair.state is PairState.QUARANTINED
    assert (await ex.apply(SimpleTarget(SYMBOL, D(0)))).status == "blocked"


async def test_seq_continues_across_executors(world: World) -> None:
    await world.executor().apply(SimpleTarget(SYMBOL, D("0.02")))
    fresh: Executor = world.executor()
    res = await fresh.apply(SimpleTarget(SYMBOL, D("0.04")))
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert f"fb-{pair.id}-2-s" in res.client_ids


@pytest.mark.slow
async def test_below_minimum_target_sends_nothing(world: World) -> None:
    res = await world.executor().apply(SimpleTarget(SYMBOL, D("0.00001")))
    assert res.status == "noop"
    assert world.venue.calls.get("create_order", 0) == 0


async def test_an_action_whose_legs_all_failed_does_not_reuse_its_ids(world: World) -> None:
    ex = world.executor()
    await ex.apply(SimpleTarget(SYMBOL, D("0.02")))
    world.venue.fail("create_order", ccxt.InvalidOrder("binance -1013 Filter failure"), times=2)
    failed = await ex.apply(SimpleTarget(SYMBOL, D("0.04")))
    assert failed.status == "failed"
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair.state is PairState.OPEN and pair.perp_qty == D("0.02")
    again = await world.executor().apply(SimpleTarget(SYMBOL, D("0.04")))
    assert again.status in {"done", "repaired"}
    assert f"fb-{pair.id}-2-s" in failed.client_ids and f"fb-{pair.id}-3-s" in again.client_ids


async def test_spot_buy_is_grossed_up_for_its_base_fee_so_legs_match_without_repair(world: World) -> None:
    ex = world.executor()
    res = await ex.apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status == "done", res  # no top-up, no unwind: nothing counts against the breaker
    assert not any("-t" in cid or "-u" in cid for cid in res.client_ids)
    spot, short = await venue_legs(world)
    assert short == D("0.1") and D("0.1") <= spot < D("0.1001")
    spot_order = next(o for o in await world.ledger.list_orders(symbol=SYMBOL) if o.leg is Leg.SPOT)
    assert spot_order.quantity > D("0.1")


XRP = "XRP/USDT"


@pytest.fixture
async def xrp_world(ledger: Ledger) -> World:
    w = make_world(ledger, spot_usdt="2000", futures_usdt="1000", market="XRPUSDT")
    await w.venue.setup_symbol(XRP, 3, "cross")
    return w


async def xrp_legs(w: World) -> tuple[D, D]:
    balances = {(b.wallet, b.asset): b.total for b in await w.venue.fetch_balances()}
    pos = (await w.venue.fetch_positions([XRP])).get(XRP)
    return balances.get(("spot", "XRP"), D(0)), -(pos.qty if pos else D(0))


async def test_partial_fill_residue_below_the_minimums_is_trimmed_not_left_naked(xrp_world: World) -> None:
    w = xrp_world
    # the perp's first order is not placed (503, looked up: absent); its retry then fills 99 of 100
    w.venue.fail("create_order", ccxt.ExchangeNotAvailable("binance 503"), when=lambda args: args[0].leg is Leg.PERP)
    armed: list[bool] = []

    def arm_partial() -> None:
        if not armed and w.venue.calls.get("fetch_order", 0) and w.sim_orders("spot"):
            armed.append(True)
            w.sim.force_partial_fill("0.99")

    w.venue.hooks["fetch_order"] = arm_partial
    w.venue.hooks["create_order"] = arm_partial
    res = await w.executor().apply(SimpleTarget(XRP, D("100")))
    assert armed, res
    spot, short = await xrp_legs(w)
    # the spot (100.899 net of its fee) led the 99 short by 1.899 XRP, below both markets' 5 USDT minimum:
    # a 9 XRP sale, then the short's reduce-only buy-back, end the legs within one perp lot
    assert abs(spot - short) < D("0.1"), (spot, short, res)
    pair = await w.ledger.active_pair("sim", XRP)
    assert pair is not None and pair.state is PairState.OPEN and (pair.spot_qty, pair.perp_qty) == (spot, short)
    sells = [o for o in await w.ledger.list_orders(symbol=XRP) if o.leg is Leg.SPOT and o.side == "sell"]
    assert [o.quantity for o in sells] == [D("9")]


async def test_closing_never_reshorts_to_hedge_a_spot_remainder_too_small_to_sell(xrp_world: World) -> None:
    w = xrp_world
    ex = w.executor()
    await ex.apply(SimpleTarget(XRP, D("100")))
    # the close's spot sale is not placed (503, looked up: absent); its retry then sells only 92 of 100
    w.venue.fail(
        "create_order",
        ccxt.ExchangeNotAvailable("binance 503"),
        when=lambda args: args[0].leg is Leg.SPOT and args[0].side.value == "sell",
    )
    armed: list[bool] = []

    def arm_partial() -> None:  # once the short is bought back: the next order to take is the spot retry
        if not armed and w.venue.calls.get("fetch_order", 0) and any(o.side == "BUY" for o in w.sim_orders("perp")):
            armed.append(True)
            w.sim.force_partial_fill("0.92")

    w.venue.hooks["fetch_order"] = arm_partial
    w.venue.hooks["create_order"] = arm_partial
    res = await ex.apply(SimpleTarget(XRP, D(0)))
    assert armed, res
    spot, short = await xrp_legs(w)
    price = (await w.venue.fetch_order_book(XRP, Leg.SPOT, 5)).mid
    # 8.899 XRP left: 8 lots are below the 5 USDT spot minimum, while a 8.8 short would pass the perp's
    assert spot == D("8.899") and 8 * price < 5 <= D("8.8") * price, (spot, price, res)
    assert short == 0, res  # no new short opened to hedge what is dust
    assert await w.ledger.active_pair("sim", XRP) is None  # closed: the remainder is dust, swept later


async def test_a_pair_left_holding_only_unsellable_spot_is_closed_as_dust(xrp_world: World) -> None:
    w = xrp_world
    # as the old repair left it: the short bought back, 1.899 XRP of spot (1.1 USDT) that no sale can take
    await w.ledger.upsert_pair(
        venue="sim", symbol=XRP, now_ms=w.now(), state=PairState.OPEN, spot_qty=D("1.899"), perp_qty=D(0)
    )
    res = await w.executor().apply(SimpleTarget(XRP, D(0)))
    assert res.status == "noop" and w.venue.calls.get("create_order", 0) == 0
    assert await w.ledger.active_pair("sim", XRP) is None
    decisions = await w.ledger.events(kinds=[EventKind.DECISION], symbol=XRP)
    assert any((e.details or {}).get("rule") == "close_dust" for e in decisions)
