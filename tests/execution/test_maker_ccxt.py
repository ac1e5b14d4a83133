"""Maker style through the real ccxt against the in-process emulator (TLS loopback, ManualClock): which leg
follows the other at market (``maker_follow``) and where the legs rest (``maker_price``). Each pause of the
worker moves simulated time and the price by the next scripted shock, so resting orders are traded through
(or not) deterministically; the venue's legs are sampled after every pause."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from bot.config import ExecutionConfig
from bot.domain import HOUR_MS, Leg
from bot.execution import Executor, SimpleTarget
from bot.execution.ids import parse_order_id
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock

D = Decimal
SYMBOL, SIM = "BTC/USDT", "BTCUSDT"
START_MS = 1_767_225_600_000 + HOUR_MS + 60_000  # into the seeded random walk, off the hour
QTY = D("0.05")

MAKER = ExecutionConfig(
    order_timeout_s=0.2,
    poll_interval_s=0.02,
    retry_backoff_s=0,
    style="maker",
    maker_poll_s=10.0,
    maker_timeout_s=900.0,
    maker_max_reprices=50,
    maker_hedge_tolerance=D("0.25"),
    maker_reprice_bps=D(0),
)


@dataclass
class Env:
    handle: Any
    clock: ManualClock
    venue: Any
    ledger: Ledger
    shocks: list[float]
    samples: list[tuple[Decimal, Decimal]]

    async def sleep(self, seconds: float) -> None:
        """The worker's pause: the price moves by the next shock while the clock moves, then one step."""
        ms = int(seconds * 1000)
        if self.shocks:
            self.handle.sim.apply_price_shock(SIM, self.shocks.pop(0), ms)
        self.clock.advance(ms)
        await self.handle.tick()
        self.samples.append(await self.legs())

    async def legs(self) -> tuple[Decimal, Decimal]:
        """(spot coin held, perp short) as the venue reports them over ccxt."""
        balances = await self.venue.fetch_balances()
        spot = sum((b.total for b in balances if b.wallet == "spot" and b.asset == "BTC"), D(0))
        positions = await self.venue.fetch_positions([SYMBOL])
        return spot, (-positions[SYMBOL].qty if SYMBOL in positions else D(0))

    def executor(self, config: ExecutionConfig) -> Executor:
        return Executor(self.venue, self.ledger, self.clock.now_ms, config, sleep=self.sleep)

    def orders(self, market: str) -> list[Any]:
        return self.handle.sim.order_history(market)


@pytest.fixture
async def env(ledger: Ledger) -> AsyncIterator[Env]:
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    async with AsyncExitStack() as stack:
        clock = ManualClock(START_MS)
        handle = await stack.enter_async_context(
            run_emulator(symbols=(SIM,), clock=clock, random_walk=True, seed=3, balance=D(20_000), tick_ms=50)
        )
        venue = CcxtVenue(build_client(handle.connection, pro=True, tls=True, rateLimit=1), time_resync_s=0)
        stack.push_async_callback(venue.close)
        await venue.transfer("USDT", D(5000), "spot", "futures")
        await venue.setup_symbol(SYMBOL, 3, "cross")
        yield Env(handle, clock, venue, ledger, [], [])


def steps(orders: list[Any]) -> list[str]:
    out = []
    for o in orders:
        parsed = parse_order_id(o.client_order_id)
        assert parsed is not None, o.client_order_id
        out.append(parsed[3])
    return out


# The price falls for a while (the spot buy fills, the perp sell is left above the market), then rises
# (the perp sell fills); small steps, so each pause trades a resting order a tick or more through.
DOWN_THEN_UP = [-0.0015] * 6 + [0.0015] * 30


@pytest.mark.slow
async def test_follow_spot_keeps_the_perp_resting_while_the_spot_leads(env: Env) -> None:
    """``maker_follow = spot``: the spot buy fills first and leads by the tolerance; the perp is not taken at
    market but keeps resting (re-priced down as the price falls) until the rise fills it as maker; the spot
    follows the perp's fills at market. The hedge holds at every pause."""
    env.shocks = list(DOWN_THEN_UP)
    config = MAKER.model_copy(update={"maker_follow": "spot"})
    res = await env.executor(config).apply(SimpleTarget(SYMBOL, QTY))
    assert res.status == "done", res
    perp, spot = env.orders("perp"), env.orders("spot")
    assert "f" not in steps(perp) and "k" not in steps(perp)  # the perp never went at market
    assert all(o.type == "LIMIT" and o.time_in_force == "GTX" for o in perp)
    assert sum(o.executed_qty for o in perp) == QTY
    assert any(o.type == "LIMIT_MAKER" and o.executed_qty > 0 for o in spot)  # the spot led as maker
    fills = await env.ledger.list_fills()
    assert all(f.is_maker for f in fills if f.market is Leg.PERP)
    tolerance = QTY * config.maker_hedge_tolerance
    assert max(abs(s - p) for s, p in env.samples) <= tolerance + D("0.001")  # the spot nets its fee: a lot
    s, p = await env.legs()
    assert p == QTY and abs(s - p) < D("0.001")
    assert env.handle.sim.open_orders("spot") == [] and env.handle.sim.open_orders("perp") == []
    assert await env.ledger.open_intents() == []


@pytest.mark.slow
async def test_follow_both_takes_the_perp_at_market_behind_the_spot(env: Env) -> None:
    """The same path with ``maker_follow = both``: the perp, a whole tolerance behind the spot's maker fill,
    takes the difference at market (``-p-f<n>``) at the perp's taker fee."""
    env.shocks = list(DOWN_THEN_UP)
    res = await env.executor(MAKER).apply(SimpleTarget(SYMBOL, QTY))
    assert res.status == "done", res
    followed = [o for o in env.orders("perp") if steps([o]) == ["f"]]
    assert followed and all(o.type == "MARKET" and o.executed_qty > 0 for o in followed)
    fills = await env.ledger.list_fills()
    assert any(f.market is Leg.PERP and not f.is_maker for f in fills)
    s, p = await env.legs()
    assert p == QTY and abs(s - p) < D("0.001")


@pytest.mark.parametrize("where", ["mid", "touch", "inside"])
async def test_maker_price_places_each_leg_where_asked_never_crossing(env: Env, where: str) -> None:
    """The first order of each leg, against the book read over ccxt just before: ``touch`` at the best price
    of its side, ``inside`` a tick inside it, ``mid`` the tick nearest the mid on its side."""
    book = {leg: await env.venue.fetch_order_book(SYMBOL, leg, 5) for leg in (Leg.SPOT, Leg.PERP)}
    config = MAKER.model_copy(update={"maker_price": where, "maker_timeout_s": 10.0})
    await env.executor(config).apply(SimpleTarget(SYMBOL, QTY))
    for leg, market in ((Leg.SPOT, "spot"), (Leg.PERP, "perp")):
        first = env.orders(market)[0]
        bid, ask = book[leg].bids[0][0], book[leg].asks[0][0]
        tick = env.handle.sim.spec(market, SIM).tick_size
        assert ask - bid > 2 * tick  # the simulated spread leaves room inside
        mid = (bid + ask) / 2
        expected = {
            ("spot", "touch"): bid,
            ("spot", "inside"): bid + tick,
            ("spot", "mid"): (mid / tick).to_integral_value(rounding="ROUND_FLOOR") * tick,
            ("perp", "touch"): ask,
            ("perp", "inside"): ask - tick,
            ("perp", "mid"): (mid / tick).to_integral_value(rounding="ROUND_CEILING") * tick,
        }[(market, where)]
        assert first.price == expected, (market, where, first.price, bid, ask)
        assert bid <= first.price < ask if market == "spot" else bid < first.price <= ask
