"""The Venue protocol's behaviour, run against CcxtVenue (real ccxt + emulator) and SimVenue alike."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import get_args

import ccxt
import pytest

from bot.domain import HOUR_MS, Leg, Side
from bot.venues.base import BINANCE_ORDER_STATUS, OrderRequest, OrderStatus, Venue, order_status
from bot.venues.errors import ErrorClass, classify
from tests.waiting import wait_until

from .conftest import PAIRS, VenueEnv, open_env

D = Decimal


def market(cid: str, symbol: str, leg: Leg, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(cid, symbol, leg, side, "market", D(qty))


async def test_is_a_venue(venue_env: VenueEnv):
    assert isinstance(venue_env.venue, Venue)
    assert await venue_env.venue.now_ms() == venue_env.clock.now_ms()


async def test_markets_filters_are_decimal_and_unknown_symbols_omitted(venue_env: VenueEnv):
    pairs = await venue_env.venue.load_markets([*PAIRS, "XRP/USDT"])
    assert set(pairs) == set(PAIRS)
    btc = pairs["BTC/USDT"]
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.spot.symbol == "BTC/USDT" and btc.perp.symbol == "BTC/USDT:USDT"
    assert btc.spot.tick_size == D("0.01") and btc.spot.step_size == D("0.00001")
    assert btc.perp.tick_size == D("0.1") and btc.perp.step_size == D("0.001")
    assert btc.perp.min_notional == D(100) and btc.perp.max_market_qty == D(120)  # Binance BTCUSDT
    for f in (btc.spot, btc.perp):
        assert all(isinstance(x, Decimal) for x in (f.tick_size, f.step_size, f.min_qty, f.min_notional))
    # RandomWalk settles BTC every 8h and ETH every 4h: the interval is derived, never assumed
    assert btc.funding_interval_hours == 8
    assert pairs["ETH/USDT"].funding_interval_hours == 4


async def test_funding_info_and_interval_after_settlements(venue_env: VenueEnv):
    v = venue_env.venue
    info = (await v.fetch_funding(PAIRS))["ETH/USDT"]
    now = venue_env.clock.now_ms()
    assert isinstance(info.predicted_rate, Decimal) and isinstance(info.mark_price, Decimal)
    assert now < info.next_funding_ms <= now + 4 * HOUR_MS
    assert info.interval_hours == 4
    await venue_env.advance(9 * HOUR_MS)
    history = await v.fetch_funding_history("ETH/USDT")
    assert len(history) >= 2
    assert [h.interval_hours for h in history[1:]] == [4] * (len(history) - 1)
    assert history[0].funding_time_ms == info.next_funding_ms
    again = (await v.fetch_funding(["ETH/USDT"]))["ETH/USDT"]
    assert again.next_funding_ms > info.next_funding_ms and again.interval_hours == 4


async def test_order_book_levels_are_decimal_and_sorted(venue_env: VenueEnv):
    for leg in (Leg.SPOT, Leg.PERP):
        book = await venue_env.venue.fetch_order_book("BTC/USDT", leg, 10)
        assert book.leg is leg and 0 < len(book.bids) <= 10 and 0 < len(book.asks) <= 10
        assert book.bids[0][0] < book.asks[0][0]
        assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
        assert isinstance(book.mid, Decimal)


async def test_balances_and_transfers_both_ways(venue_env: VenueEnv):
    v = venue_env.venue
    before = {(b.wallet, b.asset): b for b in await v.fetch_balances()}
    assert before[("spot", "USDT")].free == D(10_000)
    assert ("futures", "USDT") not in before
    assert await v.max_transferable("USDT", "spot") == D(10_000)

    out = await v.transfer("USDT", D("4000.5"), "spot", "futures")
    assert out.tran_id and out.amount == D("4000.5") and (out.from_wallet, out.to_wallet) == ("spot", "futures")
    back = await v.transfer("USDT", D("500.25"), "futures", "spot")
    assert back.tran_id != out.tran_id

    after = {(b.wallet, b.asset): b for b in await v.fetch_balances()}
    assert after[("spot", "USDT")].free == D("6499.75")
    assert after[("futures", "USDT")].total == D("3500.25")
    assert after[("futures", "USDT")].free == D("3500.25")
    assert await v.max_transferable("USDT", "futures") == D("3500.25")
    account = await v.fetch_futures_account()
    assert account.wallet_balance == D("3500.25") and account.max_withdrawable == D("3500.25")
    # the real wallet move is MAIN_UMFUTURE / UMFUTURE_MAIN (never an isolated-margin 'future' transfer)
    assert [t.kind for t in venue_env.sim.transfer_history()] == ["MAIN_UMFUTURE", "UMFUTURE_MAIN"]


async def test_transfer_beyond_balance_is_insufficient_funds(venue_env: VenueEnv):
    with pytest.raises(ccxt.InsufficientFunds) as err:
        await venue_env.venue.transfer("USDT", D(20_000), "spot", "futures")
    assert classify(err.value, mutating=True) is ErrorClass.INSUFFICIENT_FUNDS
    with pytest.raises(ccxt.InsufficientFunds):
        await venue_env.venue.transfer("USDT", D(1), "futures", "spot")


async def test_market_orders_both_legs_with_fills_fees_and_position(venue_env: VenueEnv):
    v = venue_env.venue
    await v.transfer("USDT", D(3000), "spot", "futures")
    spot = await v.create_order(market("open-spot-1", "BTC/USDT", Leg.SPOT, Side.BUY, "0.02"))
    perp = await v.create_order(market("open-perp-1", "BTC/USDT", Leg.PERP, Side.SELL, "0.02"))
    for order, leg in ((spot, Leg.SPOT), (perp, Leg.PERP)):
        assert order.status == "closed" and order.filled == order.qty == D("0.02")
        assert order.leg is leg and order.symbol == "BTC/USDT" and order.type == "market" and order.price is None
        assert order.fills and sum(f.qty for f in order.fills) == D("0.02")
        assert all(f.venue_order_id == order.venue_order_id for f in order.fills)
        assert all(f.client_order_id == order.client_order_id for f in order.fills)
        avg = sum(f.qty * f.price for f in order.fills) / order.filled
        assert order.average == avg
    assert spot.client_order_id == "open-spot-1" and perp.client_order_id == "open-perp-1"
    assert spot.fills[0].fee_asset == "BTC" and spot.fills[0].fee > 0  # spot buy fee is taken in base
    assert perp.fills[0].fee_asset == "USDT"
    assert perp.fills[0].fee == (D("0.0005") * D("0.02") * perp.fills[0].price).quantize(D("0.00000001"))

    balances = {(b.wallet, b.asset): b for b in await v.fetch_balances()}
    assert balances[("spot", "BTC")].free == D("0.02") - spot.fills[0].fee
    positions = await v.fetch_positions(PAIRS)
    assert set(positions) == {"BTC/USDT"}
    pos = positions["BTC/USDT"]
    assert pos.qty == D("-0.02") and pos.entry_price == perp.average and pos.margin_mode == "cross"
    assert pos.mark_price > 0 and pos.maint_margin > 0

    fills = await v.fetch_fills("BTC/USDT", Leg.PERP)
    assert [f.venue_trade_id for f in fills] == [f.venue_trade_id for f in perp.fills]
    assert fills[0].side is Side.SELL and fills[0].qty == D("0.02") and not fills[0].is_maker
    spot_fills = await v.fetch_fills("BTC/USDT", Leg.SPOT)
    assert spot_fills[0].side is Side.BUY and spot_fills[0].fee == spot.fills[0].fee


async def test_fetch_order_by_client_id_and_none_for_unknown(venue_env: VenueEnv):
    v = venue_env.venue
    placed = await v.create_order(market("fo-1", "ETH/USDT", Leg.SPOT, Side.BUY, "0.01"))
    got = await v.fetch_order("ETH/USDT", Leg.SPOT, "fo-1")
    assert got is not None
    assert (got.venue_order_id, got.status, got.filled, got.client_order_id) == (
        placed.venue_order_id,
        "closed",
        D("0.01"),
        "fo-1",
    )
    assert await v.fetch_order("ETH/USDT", Leg.SPOT, "never-placed") is None
    assert await v.fetch_order("ETH/USDT", Leg.PERP, "never-placed") is None


async def test_limit_order_rests_is_listed_and_cancelled(venue_env: VenueEnv):
    v = venue_env.venue
    await v.transfer("USDT", D(2000), "spot", "futures")
    book = await v.fetch_order_book("ETH/USDT", Leg.PERP, 5)
    price = (book.bids[0][0] * D("0.96")).quantize(D("0.01"))
    req = OrderRequest("lim-1", "ETH/USDT", Leg.PERP, Side.BUY, "limit", D("0.01"), price)
    placed = await v.create_order(req)
    assert placed.status == "open" and placed.filled == 0 and placed.price == price and not placed.fills
    listed = await v.fetch_open_orders("ETH/USDT", Leg.PERP)
    assert [o.client_order_id for o in listed] == ["lim-1"]
    cancelled = await v.cancel_order("ETH/USDT", Leg.PERP, "lim-1")
    assert cancelled.status == "canceled" and cancelled.remaining == D("0.01")
    assert await v.fetch_open_orders("ETH/USDT", Leg.PERP) == []
    with pytest.raises(ccxt.OrderNotFound):
        await v.cancel_order("ETH/USDT", Leg.PERP, "lim-1")
    spot_px = ((await v.fetch_order_book("ETH/USDT", Leg.SPOT, 5)).bids[0][0] * D("0.9")).quantize(D("0.01"))
    await v.create_order(OrderRequest("lim-2", "ETH/USDT", Leg.SPOT, Side.BUY, "limit", D("0.01"), spot_px))
    locked = {(b.wallet, b.asset): b for b in await v.fetch_balances()}[("spot", "USDT")]
    assert locked.used == D("0.01") * spot_px
    assert (await v.cancel_order("ETH/USDT", Leg.SPOT, "lim-2")).status == "canceled"


async def test_funding_income_after_a_settlement(venue_env: VenueEnv):
    v = venue_env.venue
    await v.transfer("USDT", D(3000), "spot", "futures")
    await v.create_order(market("fi-perp", "BTC/USDT", Leg.PERP, Side.SELL, "0.01"))
    info = (await v.fetch_funding(["BTC/USDT"]))["BTC/USDT"]
    assert await v.fetch_funding_income("BTC/USDT") == []
    await venue_env.advance(info.next_funding_ms - venue_env.clock.now_ms() + 1000)
    income = await v.fetch_funding_income("BTC/USDT")
    assert len(income) == 1
    row = income[0]
    assert row.symbol == "BTC/USDT" and row.asset == "USDT" and row.funding_time_ms == info.next_funding_ms
    settled = (await v.fetch_funding_history("BTC/USDT"))[-1]
    assert settled.funding_time_ms == info.next_funding_ms
    assert row.amount != 0 and (row.amount > 0) == (settled.rate > 0)  # the short is paid when the rate is positive
    assert await v.fetch_funding_income(None, info.next_funding_ms + 1) == []
    assert [i.tran_id for i in await v.fetch_funding_income()] == [row.tran_id]


async def test_setup_symbol_is_idempotent(venue_env: VenueEnv):
    v = venue_env.venue
    await v.setup_symbol("BTC/USDT", 3, "cross")
    await v.setup_symbol("BTC/USDT", 3, "cross")
    await v.setup_symbol("ETH/USDT", 2, "isolated")
    await v.setup_symbol("ETH/USDT", 2, "isolated")
    await v.transfer("USDT", D(2000), "spot", "futures")
    await v.create_order(market("iso-1", "ETH/USDT", Leg.PERP, Side.SELL, "0.05"))
    pos = (await v.fetch_positions(["ETH/USDT"]))["ETH/USDT"]
    assert pos.margin_mode == "isolated"


async def test_order_rejections_are_production_ccxt_classes(venue_env: VenueEnv):
    v = venue_env.venue
    with pytest.raises(ccxt.InvalidOrder) as perp_small:  # -4164 notional
        await v.create_order(market("rej-1", "ETH/USDT", Leg.PERP, Side.SELL, "0.001"))
    assert classify(perp_small.value, mutating=True) is ErrorClass.REJECTED
    with pytest.raises(ccxt.BadRequest):  # -1013 Filter failure: NOTIONAL
        await v.create_order(market("rej-2", "ETH/USDT", Leg.SPOT, Side.BUY, "0.0001"))
    with pytest.raises(ccxt.InsufficientFunds):  # -2019 margin: nothing in the futures wallet
        await v.create_order(market("rej-3", "BTC/USDT", Leg.PERP, Side.SELL, "0.01"))
    with pytest.raises(ccxt.InsufficientFunds):  # -2010 spot balance
        await v.create_order(market("rej-4", "BTC/USDT", Leg.SPOT, Side.BUY, "1"))
    with pytest.raises(ccxt.InvalidOrder):  # -2022 reduce-only without a position
        await v.create_order(
            OrderRequest("rej-5", "BTC/USDT", Leg.PERP, Side.BUY, "market", D("0.01"), reduce_only=True)
        )


@pytest.mark.slow
async def test_watch_marks_yields_updates(venue_env: VenueEnv):
    updates = []

    async def consume():
        async for u in venue_env.venue.watch_marks(["BTC/USDT"]):
            updates.append(u)
            if len(updates) >= 2:
                return

    task = asyncio.create_task(consume())

    async def advanced_until_two_updates() -> bool:
        await venue_env.advance(1000)
        return task.done()

    try:
        await wait_until(advanced_until_two_updates, "two mark updates", timeout_s=10, interval_s=0.05)
    finally:
        task.cancel()
    await task
    assert all(u.symbol == "BTC/USDT" and u.mark_price > 0 for u in updates)
    assert updates[-1].next_funding_ms and updates[-1].predicted_rate is not None


async def test_both_implementations_give_identical_results_for_one_script():
    """Same seed, same script: the same fills, fees, balances and positions (ids aside)."""

    async def script(kind: str) -> list[object]:
        async with AsyncExitStack() as stack:
            env = await open_env(kind, stack)
            v = env.venue
            await v.transfer("USDT", D(4000), "spot", "futures")
            spot = await v.create_order(market("s1", "BTC/USDT", Leg.SPOT, Side.BUY, "0.03"))
            perp = await v.create_order(market("p1", "BTC/USDT", Leg.PERP, Side.SELL, "0.03"))
            await env.advance(10 * HOUR_MS)
            balances = sorted((b.wallet, b.asset, b.free, b.total) for b in await v.fetch_balances())
            pos = (await v.fetch_positions(PAIRS))["BTC/USDT"]
            income = [(i.amount, i.funding_time_ms) for i in await v.fetch_funding_income()]
            return [
                [(f.price, f.qty, f.fee, f.fee_asset) for f in spot.fills],
                [(f.price, f.qty, f.fee, f.fee_asset) for f in perp.fills],
                balances,
                (pos.qty, pos.entry_price, pos.mark_price, pos.unrealized_pnl),
                income,
                await v.fetch_futures_account(),
            ]

    assert await script("ccxt") == await script("sim")


async def test_isolated_margin_is_added_reduced_and_recorded(venue_env: VenueEnv):
    v = venue_env.venue
    await v.setup_symbol("ETH/USDT", 2, "isolated")
    await v.transfer("USDT", D(3000), "spot", "futures")
    with pytest.raises(ccxt.BaseError) as no_position:
        await v.modify_isolated_margin("ETH/USDT", D(10), add=True)
    assert "-4054" in str(no_position.value) or "position is 0" in str(no_position.value)
    await v.create_order(market("iso-1", "ETH/USDT", Leg.PERP, Side.SELL, "0.5"))
    p = (await v.fetch_positions(["ETH/USDT"]))["ETH/USDT"]
    assert p.margin_mode == "isolated" and p.isolated_wallet > 0
    wallet0 = p.isolated_wallet
    await v.modify_isolated_margin("ETH/USDT", D("100.5"), add=True)
    p = (await v.fetch_positions(["ETH/USDT"]))["ETH/USDT"]
    assert p.isolated_wallet == wallet0 + D("100.5")
    await v.modify_isolated_margin("ETH/USDT", D(40), add=False)
    p = (await v.fetch_positions(["ETH/USDT"]))["ETH/USDT"]
    assert p.isolated_wallet == wallet0 + D("60.5")
    with pytest.raises(ccxt.InsufficientFunds):  # -4051: more than the position can give back
        await v.modify_isolated_margin("ETH/USDT", D(100_000), add=False)
    changes = await v.fetch_margin_changes("ETH/USDT")
    assert [(c.add, c.amount) for c in changes] == [(True, D("100.5")), (False, D(40))]
    await v.setup_symbol("BTC/USDT", 3, "cross")
    await v.create_order(market("iso-2", "BTC/USDT", Leg.PERP, Side.SELL, "0.01"))
    with pytest.raises(ccxt.BaseError):  # cross positions have no isolated margin
        await v.modify_isolated_margin("BTC/USDT", D(10), add=True)


@pytest.mark.parametrize(
    ("binance", "ours"),
    [
        ("NEW", "open"),
        ("PARTIALLY_FILLED", "open"),
        ("PENDING_NEW", "open"),
        ("FILLED", "closed"),
        ("CANCELED", "canceled"),
        ("PENDING_CANCEL", "canceled"),
        ("EXPIRED", "expired"),
        ("EXPIRED_IN_MATCH", "expired"),  # self-trade prevention: the sim's copy of the map left it "open"
        ("REJECTED", "rejected"),
        ("SOMETHING_NEW", "open"),  # read again later, never assumed done
        (None, "open"),
    ],
)
def test_one_order_status_map_for_every_venue(binance: str | None, ours: str) -> None:
    assert order_status(binance) == ours
    assert set(BINANCE_ORDER_STATUS.values()) == set(get_args(OrderStatus))  # every status of ours is reachable
