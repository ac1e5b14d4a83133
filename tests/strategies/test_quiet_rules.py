"""The rule functions a strategy decides with in Decimal and its quiet-hours bound calls in float
(strategies/economics.py, sizing.py, forecast.py) give the same answers; and a strategy's bound is found
through its class (strategies/base.py), not through a table of names."""

from decimal import Decimal

import numpy as np
import pytest

from strategies.base import PublishesQuietHours, Snapshot, Target, quiet_bound
from strategies.baselines import AlwaysOn, AlwaysOnBTC, TopNByLastRate
from strategies.baselines_quiet import AlwaysOnQuiet, TopNQuiet
from strategies.carry_quiet import CarryQuiet
from strategies.economics import cost_apr, holding_loses, round_trip_fees, switch_pays
from strategies.forecast import settlements_in_horizon
from strategies.funding_carry import FundingCarry
from strategies.params import CarryParams
from strategies.quiet import BookShape, MarketHours, QuietView
from strategies.sizing import resize_band

HOUR = 3_600_000


def _view(hours: int = 200) -> QuietView:
    grid = np.arange(hours, dtype=np.int64) * HOUR + 1
    ts = np.arange(0, hours + 9, 8, dtype=np.int64) * HOUR
    market = MarketHours(
        symbol="BTC/USDT",
        spot=np.full(hours, 100.0),
        perp=np.full(hours, 100.02),
        settle_ts=ts,
        settle_rate=np.full(len(ts), 0.0001),
        settle_interval=np.full(len(ts), 8.0),
        predicted=np.full(hours, 0.0001),
        blocked=np.zeros(hours, dtype=bool),
        shape=BookShape(0.01, 0.01, 0.0001),
    )
    return QuietView(grid, {"BTCUSDT": market}, (0.001, 0.0005), 30, 20)


class Bare:
    name = "bare"

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        return []


def test_each_strategy_publishes_its_own_bound_and_a_bare_one_none() -> None:
    view = _view()
    assert isinstance(quiet_bound(FundingCarry(), view), CarryQuiet)
    assert isinstance(quiet_bound(AlwaysOn(), view), AlwaysOnQuiet)
    assert isinstance(quiet_bound(AlwaysOnBTC(), view), AlwaysOnQuiet)
    assert isinstance(quiet_bound(TopNByLastRate(), view), TopNQuiet)
    assert not isinstance(Bare(), PublishesQuietHours)
    assert quiet_bound(Bare(), view) is None


def test_the_carry_bound_calls_a_flat_book_at_the_base_rate_quiet() -> None:
    # 0.01% per 8 h is about 11% APR before costs; the default threshold (10%) and the break-even floor
    # keep such a symbol out only with the costs, which the bound must count: no entry anywhere.
    bound = FundingCarry(CarryParams(entry_threshold_apr=Decimal("0.2"))).quiet_hours(_view())
    quiet = bound.quiet([], 0, 200, np.full(200, 100000.0))
    assert quiet[40:190].all()  # after the history fills; the first hours' history is irregular
    assert not bound.entry_possible()[40:190].any()
    loose = FundingCarry(CarryParams(entry_threshold_apr=Decimal("0.01"), max_break_even_fraction=Decimal(1)))
    assert not loose.quiet_hours(_view()).quiet([], 0, 200, np.full(200, 100000.0))[40:190].any()


@pytest.mark.parametrize("expected,cost", [("-0.02", "0.01"), ("-0.01", "0.01"), ("0.003", "0.01"), ("-0.5", "0.49")])
def test_exit_and_switch_rules_agree_in_decimal_and_float(expected: str, cost: str) -> None:
    e, c = Decimal(expected), Decimal(cost)
    assert holding_loses(e, c) == bool(holding_loses(np.array([float(e)]), np.array([float(c)]))[0])
    p = CarryParams()
    assert switch_pays(-e, c, p) == bool(switch_pays(np.array([-float(e)]), np.array([float(c)]), p)[0])


def test_cost_fees_band_and_settlement_count_agree_in_decimal_and_float() -> None:
    d = round_trip_fees(Decimal(2), Decimal(100), Decimal("100.5"), Decimal("0.001"), Decimal("0.0005"))
    f = round_trip_fees(2.0, 100.0, 100.5, 0.001, 0.0005)
    assert float(d) == pytest.approx(f, rel=1e-15)
    assert float(cost_apr(d, Decimal(201), Decimal(720))) == pytest.approx(cost_apr(f, 201.0, 720.0), rel=1e-15)
    assert resize_band(Decimal(10), Decimal("0.3")) == (Decimal(7), Decimal(13))
    nxt = np.array([5, 10, 11, 30], dtype=np.int64) * HOUR
    end = np.full(4, 10 * HOUR, dtype=np.int64)
    got = settlements_in_horizon(nxt, end, np.full(4, 4 * HOUR, dtype=np.int64))
    assert got.tolist() == [settlements_in_horizon(int(a), 10 * HOUR, 4 * HOUR) for a in nxt] == [2, 1, 0, 0]
