"""Maker style (bot/execution/maker.py) against the real SimExchange and Ledger: time passes while the legs
rest (each pause of the worker moves the clock and the simulator), the price is moved by shocks so the
resting orders are traded through (or not) deterministically."""

from __future__ import annotations

import pytest

from bot.config import ExecutionConfig
from bot.domain import Leg, PairState
from bot.execution import Executor, SimpleTarget
from bot.execution.ids import parse_order_id
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.reconcile import Reconciler
from execution.world import FAST, SYMBOL, Crash, D, World, make_world

MAKER = FAST.model_copy(
    update={
        "style": "maker",
        "maker_poll_s": 10.0,
        "maker_timeout_s": 600.0,
        "maker_max_reprices": 20,
        "maker_hedge_tolerance": D("0.25"),
        "maker_reprice_bps": D(0),
    }
)
SIM = "BTCUSDT"


@pytest.fixture
async def world(ledger: Ledger) -> World:
    w = make_world(ledger, spot_usdt="20000", futures_usdt="5000")
    await w.venue.setup_symbol(SYMBOL, 3, "cross")
    return w


class Market:
    """The worker's ``sleep``: the clock moves by the pause, the price by the next scripted shock, and the
    venue's legs are sampled after each pause (the hedge must hold at every one of them)."""

    def __init__(self, w: World, shocks: list[float]) -> None:
        self.w = w
        self.shocks = list(shocks)
        self.samples: list[tuple[D, D]] = []

    async def sleep(self, seconds: float) -> None:
        ms = int(seconds * 1000)
        if self.shocks:
            self.w.sim.apply_price_shock(SIM, self.shocks.pop(0), ms)
        self.w.clock.advance(ms)
        self.w.sim.step()
        self.samples.append(self.legs())

    def legs(self) -> tuple[D, D]:
        spot = self.w.sim.spot_account().balances.get("BTC", (D(0), D(0)))
        pos = [p for p in self.w.sim.position_risk(SIM) if p.position_amt]
        return spot[0] + spot[1], -(pos[0].position_amt if pos else D(0))


def executor(w: World, market: Market, config: ExecutionConfig = MAKER) -> Executor:
    return Executor(w.venue, w.ledger, w.now, config, sleep=market.sleep)


def client_ids(w: World, market: str) -> list[str]:
    return [o.client_order_id for o in w.sim_orders(market)]


def steps(ids: list[str]) -> list[str]:
    out = []
    for cid in ids:
        parsed = parse_order_id(cid)
        assert parsed is not None, cid
        out.append(f"{parsed[3]}{parsed[4]}" if parsed[3] else "-")
    return out


async def assert_settled(w: World) -> None:
    assert await w.ledger.open_intents() == []
    assert w.sim.open_orders("spot") == [] and w.sim.open_orders("perp") == []
    for market in ("spot", "perp"):
        ids = client_ids(w, market)
        assert len(ids) == len(set(ids)), ids  # no id sent twice


async def test_partial_fills_on_both_legs_keep_the_hedge_and_complete_as_maker(world: World) -> None:
    """Down moves fill the spot buy, up moves the perp sell, each only in part: every fill of one leg lets
    the other rest its quantity, never more than the tolerance ahead."""
    world.sim.force_partial_rest("0.5", fills=6)
    market = Market(world, [-0.002, 0.002] * 30)
    res = await executor(world, market).apply(SimpleTarget(SYMBOL, D("0.2")))
    assert res.status == "done", res
    spot, short = market.legs()
    assert short == D("0.2") and abs(spot - short) < D("0.001")
    tolerance = D("0.2") * MAKER.maker_hedge_tolerance
    gaps = [abs(s - p) for s, p in market.samples]
    assert max(gaps) <= tolerance + D("0.001")  # spot holds the coin net of its fee: within one lot more
    assert any(D(0) < s < D("0.2") and D(0) < p < D("0.2") for s, p in market.samples)  # both legs partly filled
    orders = world.sim.order_history("spot") + world.sim.order_history("perp")
    assert {parse_order_id(o.client_order_id)[3] for o in orders} <= {"m", "f"}  # maker, or following at market
    maker = sum(o.executed_qty for o in orders if o.type != "MARKET")
    assert maker > sum(o.executed_qty for o in orders if o.type == "MARKET")  # most of it as maker
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair is not None and pair.state is PairState.OPEN and (pair.spot_qty, pair.perp_qty) == (spot, short)
    fills = await world.ledger.list_fills(pair_id=pair.id)
    assert {f.market for f in fills if f.is_maker} == {Leg.SPOT, Leg.PERP}
    (phase,) = [e for e in await world.ledger.events(kinds=[EventKind.ORDER]) if "maker phase" in e.message]
    assert D(str(phase.details["max_leg_gap"])) <= tolerance + D("0.001")
    await assert_settled(world)


async def test_legs_are_repriced_as_the_book_moves(world: World) -> None:
    """The price creeps up (0.4 bp a pause): the spot buy is left behind and re-priced up each time (cancel,
    read back, a new id), the perp sell waits for the price to come to it; then the market swings."""
    market = Market(world, [0.00004] * 3 + [-0.003, 0.003] * 10)
    res = await executor(world, market).apply(SimpleTarget(SYMBOL, D("0.05")))
    assert res.status == "done", res
    spot_steps = steps(client_ids(world, "spot"))
    assert len(spot_steps) >= 3 and spot_steps[:3] == ["m1", "m2", "m3"]
    spot_orders = world.sim.order_history("spot")
    prices = [o.price for o in spot_orders]
    assert prices[1] > prices[0] and prices[2] > prices[1]  # each re-price follows the rising bid
    assert [o.status for o in spot_orders[:2]] == ["CANCELED"] * 2
    assert steps(client_ids(world, "perp"))[0] == "m1"  # the perp order was never re-priced meanwhile
    cancels = [i for i in await world.ledger.list_intents() if i.client_id.endswith(".x")]
    canceled = [o for o in spot_orders + world.sim.order_history("perp") if o.status == "CANCELED"]
    assert {i.client_id for i in cancels} == {f"{o.client_order_id}.x" for o in canceled}
    spot, short = market.legs()
    assert short == D("0.05") and abs(spot - short) < D("0.001")
    await assert_settled(world)


async def test_timeout_sends_the_rest_at_market_and_repairs_the_hedge(world: World) -> None:
    """Nothing trades through within the time allowed: the resting orders are canceled and both legs go
    at market (ids ``-k1``)."""
    config = MAKER.model_copy(update={"maker_timeout_s": 30.0})
    market = Market(world, [0.0] * 10)
    res = await executor(world, market, config).apply(SimpleTarget(SYMBOL, D("0.05")))
    assert res.status == "done", res
    assert steps(client_ids(world, "spot"))[-1] == "k1" and steps(client_ids(world, "perp"))[-1] == "k1"
    assert world.clock.now_ms() - (world.sim_orders("spot")[0].time_ms) >= 30_000
    spot, short = market.legs()
    assert short == D("0.05") and abs(spot - short) < D("0.001")
    await assert_settled(world)


async def test_reprice_budget_spent_sends_the_rest_at_market(world: World) -> None:
    config = MAKER.model_copy(update={"maker_max_reprices": 1})
    market = Market(world, [0.00004] * 10)  # the price creeps away from the spot bid
    res = await executor(world, market, config).apply(SimpleTarget(SYMBOL, D("0.05")))
    assert res.status in {"done", "repaired"}, res
    assert steps(client_ids(world, "spot")) == ["m1", "m2", "k1"]
    spot, short = market.legs()
    assert short == D("0.05") and abs(spot - short) < D("0.001")
    await assert_settled(world)


async def test_kill_between_a_reprice_and_its_cancel_then_restart(world: World) -> None:
    """The process dies after writing a re-price's cancel intent, with the cancel on the wire: at restart
    reconciliation cancels what rests, records its fills and settles every intent; the next action then
    uses fresh ids. No id is sent twice, no order is left resting."""
    market = Market(world, [0.00004] * 10)  # the spot bid moves away: its order is re-priced
    world.venue.fail("cancel_order", Crash(), times=1)
    with pytest.raises(Crash):
        await executor(world, market).apply(SimpleTarget(SYMBOL, D("0.05")))
    open_intents = {i.client_id for i in await world.ledger.open_intents()}
    resting = {o.client_order_id for o in world.sim.open_orders("spot") + world.sim.open_orders("perp")}
    assert resting and resting <= open_intents  # the orders the dead process left resting are in its ledger
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair is not None
    assert f"fb-{pair.id}-1-s-m1.x" in open_intents  # the re-price's cancel it was sending
    assert f"fb-{pair.id}-1-s-m2" not in {i.client_id for i in await world.ledger.list_intents()}
    report = await Reconciler(world.venue, world.ledger, world.now, config=MAKER).run()
    assert set(report.resolved_intents) >= open_intents
    await assert_settled(world)
    settled = await world.ledger.get_pair(pair.id)
    spot, short = market.legs()
    assert settled is not None and (settled.spot_qty, settled.perp_qty) == (spot, short)  # the ledger agrees
    assert settled.state is (PairState.OPEN if short else PairState.CLOSED)  # nothing left mid-action
    assert abs(spot - short) <= D("0.05") * MAKER.maker_hedge_tolerance + D("0.001")
    before = set(client_ids(world, "spot") + client_ids(world, "perp"))
    market.shocks = [-0.003, 0.003] * 10
    res = await executor(world, market).apply(SimpleTarget(SYMBOL, D("0.05")))
    assert res.status in {"done", "repaired"}, res
    after = client_ids(world, "spot") + client_ids(world, "perp")
    assert before <= set(after) and len(after) == len(set(after))
    spot, short = market.legs()
    assert short == D("0.05") and abs(spot - short) < D("0.001")
    await assert_settled(world)


async def test_small_moves_away_spend_no_reprice(world: World) -> None:
    """The touch creeps away by less than ``maker_reprice_bps``: the resting orders stay where they are."""
    config = MAKER.model_copy(update={"maker_reprice_bps": D(2), "maker_timeout_s": 30.0})
    market = Market(world, [0.00004] * 3)  # 1.2 bp in all
    res = await executor(world, market, config).apply(SimpleTarget(SYMBOL, D("0.05")))
    assert res.status in {"done", "repaired"}, res
    (phase,) = [e for e in await world.ledger.events(kinds=[EventKind.ORDER]) if "maker phase" in e.message]
    assert phase.details["reprices"] == 0
    await assert_settled(world)


def test_a_leg_never_rests_a_slice_that_leaves_a_remainder_below_the_smallest_order() -> None:
    """The shared history's case (LTC/USDT, 2021-01-03): a reduction's perp buy led in slices of the
    tolerance (0.968) and its last slice, 0.018, left the spot a sale below the spot market's minimum
    notional: the hedge could not be repaired and the pair was quarantined. A slice that would leave less
    than the smallest order of either market (``floor``) is cut so the remainder is a whole order; a
    remainder that cannot be cut so goes at market with the other leg at once."""
    from bot.domain import MarketFilters, Side
    from bot.execution.maker import MakerWorker, WorkedLeg
    from bot.execution.plan import LegOrder

    filters = MarketFilters("LTC/USDT:USDT", D("0.01"), D("0.001"), D("0.001"), D("20"))

    def leg(qty: str) -> WorkedLeg:
        return WorkedLeg(LegOrder(Leg.PERP, Side.BUY, D(qty), True), filters, D(1))

    floor = D("0.134")
    w = leg("0.986")
    assert MakerWorker._piece(w, D("0.968"), floor) == D("0.852") and not w.exhausted  # leaves 0.134
    w = leg("0.134")
    assert MakerWorker._piece(w, D("0.968"), floor) == D("0.134")  # the whole remainder: a whole order
    w = leg("5")
    assert MakerWorker._piece(w, D("0.968"), floor) == D("0.968")  # far from the end: the tolerance's slice
    w = leg("0.2")
    assert MakerWorker._piece(w, D("0.15"), floor) == 0 and w.exhausted  # 0.2 cannot be two orders of 0.134
