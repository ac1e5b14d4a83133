"""The synthetic book: the hoisted ``full_side`` equals the plain formula, and the exchange's per-price
cache serves the same levels as building them afresh."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sim.book import BookConfig, _reference_side, build_side, full_side, trim

TICKS = [Decimal("0.01"), Decimal("0.0001"), Decimal("0.00001"), Decimal("0.1")]
STEPS = [Decimal("0.001"), Decimal("0.1"), Decimal("1"), Decimal("0.00001")]


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
    assert build_side(Decimal(100), "asks", Decimal("0.01"), Decimal("0.001"), BookConfig(), first) == list(levels[1:])
