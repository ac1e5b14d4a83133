"""The synthetic book: the hoisted ``full_side`` equals the plain formula, and the exchange's per-price
cache serves the same levels as building them afresh."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import floor_to_step
from bot.sim.book import BookConfig, Level, full_side, trim

TICKS = [Decimal("0.01"), Decimal("0.0001"), Decimal("0.00001"), Decimal("0.1")]
_BPS = Decimal("0.0001")
STEPS = [Decimal("0.001"), Decimal("0.1"), Decimal("1"), Decimal("0.00001")]


def _round(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding=rounding) * tick


def _reference_side(mid: Decimal, side: str, tick: Decimal, step: Decimal, cfg: BookConfig) -> tuple[Level, ...]:
    """The unhoisted formula that ``full_side`` must equal."""
    half = mid * cfg.spread_bps * _BPS / 2
    out: list[Level] = []
    last: Decimal | None = None
    for i in range(cfg.levels):
        offset = half + mid * cfg.level_gap_bps * _BPS * i
        if side == "bids":
            px = _round(mid - offset, tick, ROUND_FLOOR)
            if last is not None and px >= last:
                px = last - tick
        else:
            px = _round(mid + offset, tick, ROUND_CEILING)
            if last is not None and px <= last:
                px = last + tick
        if px <= 0:
            break
        last = px
        qty = floor_to_step(cfg.level_notional / px, step)
        if qty <= 0:
            qty = step
        out.append(Level(px, qty))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value="0.0001", max_value="200000", places=8, allow_nan=False, allow_infinity=False),
    st.sampled_from(["bids", "asks"]),
    st.sampled_from(TICKS),
    st.sampled_from(STEPS),
    st.sampled_from([BookConfig(), BookConfig(Decimal(3), Decimal("1.5"), 7, Decimal(1234))]),
)
@pytest.mark.slow
def test_full_side_equals_the_plain_formula(
    mid: Decimal, side: str, tick: Decimal, step: Decimal, cfg: BookConfig
) -> None:
    assert full_side(mid, side, tick, step, cfg) == _reference_side(mid, side, tick, step, cfg)


def test_consumption_is_taken_off_the_top() -> None:
    levels = full_side(Decimal(100), "asks", Decimal("0.01"), Decimal("0.001"), BookConfig())
    first = levels[0].qty
    trimmed = trim(levels, first + Decimal("0.5"))
    assert trimmed[0].price == levels[1].price and trimmed[0].qty == levels[1].qty - Decimal("0.5")
