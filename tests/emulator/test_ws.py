"""ccxt.pro streams against the emulator: market data, order books, and both user streams."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import ccxt
import pytest

from bot.domain import HOUR_MS, MINUTE_MS
from bot.emulator.server import EmulatorHandle, run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client
from tests.waiting import wait_until

PERP = "BTC/USDT:USDT"
WAIT = 10


@pytest.mark.parametrize("symbol", ["BTC/USDT", PERP])
async def test_watch_ticker(ex, symbol: str) -> None:
    t = await asyncio.wait_for(ex.watch_ticker(symbol), WAIT)
    assert t["symbol"] == symbol and t["last"] > 0
    full = await asyncio.wait_for(ex.watch_ticker(symbol, {"name": "ticker"}), WAIT)
    assert full["symbol"] == symbol
    if symbol == "BTC/USDT":
        assert full["bid"] < full["ask"]


async def test_watch_bids_asks_and_mark_price(ex) -> None:
    spot = await asyncio.wait_for(ex.watch_bids_asks(["BTC/USDT"]), WAIT)
    assert spot["BTC/USDT"]["bid"] < spot["BTC/USDT"]["ask"]
    perp = await asyncio.wait_for(ex.watch_bids_asks([PERP]), WAIT)
    assert PERP in perp
    mark = await asyncio.wait_for(ex.watch_mark_price(PERP), WAIT)
    assert mark["markPrice"] > 0 and "r" in mark["info"] and mark["info"]["T"] > 0


@pytest.mark.parametrize("symbol", ["BTC/USDT", PERP])
async def test_watch_order_book_applies_deltas(ex, advance, symbol: str) -> None:
    book = await asyncio.wait_for(ex.watch_order_book(symbol), WAIT)
    nonces = [book["nonce"]]
    mids = [(book["bids"][0][0] + book["asks"][0][0]) / 2]
    for _ in range(4):
        await advance(HOUR_MS)
        book = await asyncio.wait_for(ex.watch_order_book(symbol), WAIT)
        nonces.append(book["nonce"])
        mids.append((book["bids"][0][0] + book["asks"][0][0]) / 2)
        assert book["bids"][0][0] < book["asks"][0][0]
    assert nonces == sorted(nonces) and len(set(nonces)) == 5  # several deltas, no ChecksumError
    assert len(set(mids)) > 1
    rest = await ex.fetch_order_book(symbol, 5)
    assert rest["bids"][0] == book["bids"][0] and rest["asks"][0] == book["asks"][0]


async def subscribed_users(emu: EmulatorHandle, market: str, n: int) -> None:
    """Until ``n`` user sockets of ``market`` (spot: WS-API subscriptions; futures: live listen keys) are
    subscribed, so an event sent now reaches every watcher (a fixed sleep raced a loaded machine)."""
    hub = emu.emulator.hub

    def count() -> int:
        if market == "spot":
            return sum(len(s.subscriptions) for s in hub.spot_users)
        return sum(1 for s in hub.fapi_users if s.listen_key and hub.listen_keys.is_active(s.listen_key))

    await wait_until(lambda: count() >= n, f"{n} {market} user-stream subscriptions", timeout_s=WAIT)


async def test_spot_user_stream_orders_and_balance(ex, emu: EmulatorHandle) -> None:
    orders = asyncio.create_task(ex.watch_orders("BTC/USDT"))
    balance = asyncio.create_task(ex.watch_balance())
    await subscribed_users(emu, "spot", 1)
    placed = await ex.create_order("BTC/USDT", "market", "buy", 0.001)
    got = await asyncio.wait_for(orders, WAIT)
    assert any(o["id"] == placed["id"] and o["symbol"] == "BTC/USDT" for o in got)
    bal = await asyncio.wait_for(balance, WAIT)
    assert bal["BTC"]["free"] == pytest.approx(0.001 - 0.000001)


async def test_futures_user_stream_orders_and_balance(ex, emu: EmulatorHandle) -> None:
    await ex.transfer("USDT", 3000, "spot", "swap")
    orders = asyncio.create_task(ex.watch_orders(PERP))
    balance = asyncio.create_task(ex.watch_balance({"type": "future"}))
    await subscribed_users(emu, "futures", 1)
    placed = await ex.create_order(PERP, "market", "sell", 0.01)
    got = await asyncio.wait_for(orders, WAIT)
    assert any(o["id"] == placed["id"] and o["symbol"] == PERP for o in got)
    bal = await asyncio.wait_for(balance, WAIT)
    assert 0 < bal["USDT"]["total"] < 3000  # commission paid
    await ex.keep_alive_listen_key({"type": "future"})  # the bot's workaround (docs/ccxt-binance.md §5.4) is accepted


async def test_listen_key_expires_with_event(start_ms) -> None:
    async with run_emulator(
        symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario={"listen_key_ttl_s": 0.3}, tick_ms=50
    ) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            key = (await ex.fapiPrivatePostListenKey())["listenKey"]
            url = h.connection["http"]["ws"]["linear"].replace("/fstream/ws", "/fstream/private/ws")
            async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}?listenKey={key}") as ws:
                msg = await asyncio.wait_for(ws.receive(), WAIT)
                assert json.loads(msg.data) == {"e": "listenKeyExpired", "E": str(start_ms), "listenKey": key}
                assert not ws.closed  # Binance keeps the socket: it just carries no more user events
            with pytest.raises(ccxt.ExchangeError) as info:
                await ex.fapiPrivatePutListenKey()
            assert "-1125" in str(info.value)
        finally:
            await ex.close()


async def test_scheduled_ws_disconnect_then_reconnect(start_ms) -> None:
    clock = ManualClock(start_ms)
    scenario = {"ws_disconnects": {"at": ["+1m"]}}
    async with run_emulator(symbols=("BTCUSDT",), clock=clock, scenario=scenario, tick_ms=50) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), WAIT)
            url = h.connection["http"]["ws"]["spot"]
            async with aiohttp.ClientSession() as session, session.ws_connect(url + "/7") as ws:
                await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@miniTicker"], "id": 3})
                assert (await ws.receive_json(timeout=WAIT)) == {"result": None, "id": 3}
                clock.advance(2 * MINUTE_MS)
                kinds: list[aiohttp.WSMsgType] = []

                async def closed() -> bool:  # market pushes may come first; the close must follow them
                    kinds.append((await asyncio.wait_for(ws.receive(), WAIT)).type)
                    return kinds[-1] != aiohttp.WSMsgType.TEXT

                await wait_until(closed, "the scheduled disconnect", timeout_s=WAIT, interval_s=0)
                assert kinds[-1] in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert h.stepper.disconnects == 1
            again = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), WAIT)
            assert again["symbol"] == "BTC/USDT"
        finally:
            await ex.close()
