"""LiveFeed: step prices from pushed points; pending settlement at the live next funding time."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import HOUR_MS
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimExchange
from bot.venues.live_feed import LiveFeed

T0 = 1_767_225_600_000


def test_prices_are_the_last_pushed_value_at_or_before_t():
    feed = LiveFeed(["BTCUSDT"], T0)
    assert feed.price("spot", "BTCUSDT", T0) is None
    feed.push_price("spot", "BTCUSDT", T0 + 10, Decimal(100))
    feed.push_price("spot", "BTCUSDT", T0 + 20, Decimal(110))
    feed.push_price("spot", "BTCUSDT", T0 + 15, Decimal(90))  # late data never rewrites the past
    assert feed.price("spot", "BTCUSDT", T0) == 100.0  # before the first point: the first point
    assert feed.price("spot", "BTCUSDT", T0 + 12) == 100.0
    assert feed.price("spot", "BTCUSDT", T0 + 25) == 90.0
    assert feed.price_range("spot", "BTCUSDT", T0 + 10, T0 + 30) == (90.0, 100.0)  # 90 replaced 110
    assert feed.latest_ms == T0 + 20


def test_pending_settlement_is_paid_once_and_kept_after_the_instant():
    feed = LiveFeed(["BTCUSDT"], T0)
    for kind in ("spot", "perp", "mark", "index"):
        feed.push_price(kind, "BTCUSDT", T0, Decimal(60_000))
    nxt = T0 + 8 * HOUR_MS
    feed.push_funding("BTCUSDT", T0, Decimal("0.0001"), nxt, 8)
    assert feed.next_settlement("BTCUSDT", T0).ts_ms == nxt
    assert feed.predicted_rate("BTCUSDT", T0) == Decimal("0.0001")
    clock = ManualClock(T0)
    sim = SimExchange(feed, clock, balances={"USDT": Decimal(1000)})
    sim.transfer("USDT", Decimal(500), "MAIN_UMFUTURE")
    sim.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=Decimal("0.002"))
    clock.set(nxt + 1)
    feed.push_funding("BTCUSDT", nxt + 1, Decimal("0.0002"), nxt + 8 * HOUR_MS, 8)  # the live index moved on
    paid = sim.income(income_type="FUNDING_FEE")
    assert [(r.time_ms, r.income > 0) for r in paid] == [(nxt, True)]
    assert feed.last_settlement("BTCUSDT", nxt + 1).ts_ms == nxt
    feed.push_settlement("BTCUSDT", nxt, Decimal("0.00011"), 8)  # history corrects the kept row
    assert [s.rate for s in feed.settlements("BTCUSDT")] == [Decimal("0.00011"), Decimal("0.0002")]
    clock.set(nxt + 2)
    sim.step()
    assert len(sim.income(income_type="FUNDING_FEE")) == 1
