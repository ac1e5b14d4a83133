"""The live account's user-data stream through the real ccxt.pro against the emulator: fills recorded
as they happen (before any poll, never twice), the listenKey kept alive and reopened after an expiry,
and a liquidation reaching the bot as reconciliation would report it. Every wait is on a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from decimal import Decimal as D
from typing import Any, TypeVar

import pytest

from bot.domain import MINUTE_MS, Leg, PairState, Side
from bot.engine.user_stream import UserStreamHandler
from bot.execution.ids import order_id
from bot.execution.plan import LegOrder
from bot.ledger.models import EventKind
from bot.venues.base import OrderRequest
from tests.engine.world import World, open_world

T = TypeVar("T")
XRP = "XRP/USDT"
WAIT_S = 15.0


async def wait_until(check: Callable[[], Awaitable[T]], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def follow(w: World, stack: AsyncExitStack) -> UserStreamHandler:
    """The daemon's user-stream task, until the emulator has both user sockets subscribed."""
    handler = UserStreamHandler(w.engine)
    task = asyncio.create_task(handler.follow(w.venue.watch_user_events(retry_s=0.05)))
    stack.callback(task.cancel)
    hub = w.handle.emulator.hub

    async def subscribed() -> bool:
        live = [s for s in hub.fapi_users if s.listen_key and hub.listen_keys.is_active(s.listen_key)]
        return bool(live) and any(s.subscriptions for s in hub.spot_users)

    await wait_until(subscribed, "the user streams to open")
    return handler


async def bot_order(w: World, pair_id: int, seq: int, leg: Leg, side: Side, qty: str) -> Any:
    """An order of the bot's, write-ahead intent first, sent to the venue and recorded by nothing else."""
    cid = order_id(pair_id, seq, leg)
    await w.engine.executor.runner.write_intent(pair_id, XRP, cid, LegOrder(leg, side, D(qty)), "test", D("0.5"))
    return await w.venue.create_order(OrderRequest(cid, XRP, leg, side, "market", D(qty)))


@pytest.mark.slow
async def test_fills_arrive_on_the_stream_before_any_poll_and_are_never_recorded_twice(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, start=False)
        await w.venue.transfer("USDT", D(2000), "spot", "futures")
        await w.venue.setup_symbol(XRP, 3, "cross")
        handler = await follow(w, stack)
        pair = await w.ledger.upsert_pair(
            venue=w.venue.name, symbol=XRP, now_ms=w.now(), state=PairState.OPENING, target_qty=D(100)
        )
        states = [
            await bot_order(w, pair.id, 1, Leg.SPOT, Side.BUY, "100"),
            await bot_order(w, pair.id, 1, Leg.PERP, Side.SELL, "100"),
        ]
        for state in states:

            async def streamed(cid: str = state.client_order_id) -> list[Any]:
                return await w.ledger.list_fills(client_order_id=cid)

            fills = await wait_until(streamed, f"the stream's fill of {state.client_order_id}")
            assert {f.venue_trade_id for f in fills} == {f.venue_trade_id for f in state.fills}
            assert all(f.pair_id == pair.id for f in fills)
            assert sum((f.quantity for f in fills), D(0)) == state.filled
            assert await w.ledger.get_order(state.client_order_id) is None  # no poll has read it
        assert handler.fills_recorded == sum(len(s.fills) for s in states)
        # the order follow-up's poll then records the orders and finds every fill already there
        for state in states:
            await w.engine.executor.runner.record(pair.id, state)
        fills = await w.ledger.list_fills(pair_id=pair.id)
        assert len(fills) == handler.fills_recorded
        fill_events = await w.ledger.events(kinds=[EventKind.FILL], pair_id=pair.id)
        assert len(fill_events) == len(fills)
        assert {(e.details or {}).get("source") for e in fill_events} == {"user_stream"}


async def test_operator_fills_are_left_alone(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, start=False)
        handler = await follow(w, stack)
        mine = await w.venue.create_order(OrderRequest("by-hand-1", XRP, Leg.SPOT, Side.BUY, "market", D("10")))
        assert mine.fills
        pair = await w.ledger.upsert_pair(
            venue=w.venue.name, symbol=XRP, now_ms=w.now(), state=PairState.OPENING, target_qty=D(10)
        )
        ours = await bot_order(w, pair.id, 1, Leg.SPOT, Side.BUY, "10")  # streamed after the operator's

        async def streamed() -> list[Any]:
            return await w.ledger.list_fills(client_order_id=ours.client_order_id)

        await wait_until(streamed, "the bot's own fill")
        assert await w.ledger.list_fills(client_order_id="by-hand-1") == []
        assert handler.fills_recorded == len(ours.fills)


@pytest.mark.slow
async def test_keepalive_is_sent_and_an_expired_listen_key_reopens_the_stream(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, start=False, scenario={"listen_key_ttl_s": 1.0})
        await w.venue.transfer("USDT", D(2000), "spot", "futures")
        await w.venue.setup_symbol(XRP, 3, "cross")
        await follow(w, stack)
        keys = w.handle.emulator.hub.listen_keys
        first = w.venue.client.options["linear"]["listenKey"]
        stream = w.venue.user_stream

        async def expired() -> bool:  # no keepalive yet: Binance expires the key and says so on the socket
            return stream.expired_keys >= 1 and not keys.is_active(first)

        await wait_until(expired, "the listenKey to expire")
        w.venue.start_user_stream_keepalive(0.2)

        async def reopened() -> bool:
            key = (w.venue.client.options.get("linear") or {}).get("listenKey")
            socks = w.handle.emulator.hub.fapi_users
            return bool(key) and key != first and any(s.listen_key == key for s in socks) and keys.keepalives >= 2

        await wait_until(reopened, "a new key, its socket, and the emulator seeing PUT listenKey")
        assert w.venue.keepalives_sent >= 2
        pair = await w.ledger.upsert_pair(
            venue=w.venue.name, symbol=XRP, now_ms=w.now(), state=PairState.OPENING, target_qty=D(10)
        )
        state = await bot_order(w, pair.id, 1, Leg.PERP, Side.SELL, "10")

        async def streamed() -> list[Any]:
            return await w.ledger.list_fills(client_order_id=state.client_order_id)

        await wait_until(streamed, "a fill on the reopened stream")


async def test_a_liquidation_reaches_the_bot_as_it_happens(sqlite_url: str) -> None:
    shock = {"price_shocks": [{"symbol": "XRPUSDT", "pct": 60, "at": "+10m", "duration": "10m"}]}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, start=False, scenario=shock)
        await w.venue.transfer("USDT", D(40), "spot", "futures")  # thin margin: a short the shock liquidates
        await w.venue.setup_symbol(XRP, 20, "cross")
        await follow(w, stack)
        pair = await w.ledger.upsert_pair(
            venue=w.venue.name, symbol=XRP, now_ms=w.now(), state=PairState.OPENING, target_qty=D(100)
        )
        for leg, side in ((Leg.SPOT, Side.BUY), (Leg.PERP, Side.SELL)):
            state = await bot_order(w, pair.id, 1, leg, side, "100")
            await w.engine.executor.runner.record(pair.id, state)
        await w.ledger.upsert_pair(
            venue=w.venue.name, symbol=XRP, now_ms=w.now(), state=PairState.OPEN, spot_qty=D(100), perp_qty=D(100)
        )
        for _ in range(4):
            await w.advance(10 * MINUTE_MS)
        assert not await w.venue.fetch_positions([XRP])  # the venue closed the short

        async def quarantined() -> Any:
            p = await w.ledger.get_pair(pair.id)
            return p if p is not None and p.state is PairState.QUARANTINED else None

        await wait_until(quarantined, "the pair quarantined from the stream's liquidation")
        alerts = [e.message for e in await w.ledger.events(kinds=[EventKind.ALERT], symbol=XRP)]
        assert any(m.startswith("liquidation: XRP/USDT short of 100 closed by the venue at") for m in alerts), alerts
        assert any("quarantined" in m for m in alerts), alerts

        async def closing_fill() -> list[Any]:
            fills = await w.ledger.list_fills(pair_id=pair.id)
            return [f for f in fills if (f.client_order_id or "").startswith("autoclose-")]

        (fill,) = await wait_until(closing_fill, "the liquidation's trade recorded against the pair")
        assert fill.market is Leg.PERP and fill.side == "buy" and fill.quantity == D(100)
