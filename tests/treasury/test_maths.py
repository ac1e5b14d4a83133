from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from bot.treasury.maths import (
    Band,
    Direction,
    TransferNeed,
    collateral_ratio,
    entry_notional_capacity,
    reduction_fraction,
    transfer_need,
)

BAND = Band(target=D("0.5"), low=D("0.35"), high=D("0.7"), min_transfer=D("10"))


def test_ratio_definition() -> None:
    assert collateral_ratio(D(500), D(1000)) == D("0.5")
    assert collateral_ratio(D(500), D(0)) is None


def test_below_low_moves_to_futures_to_reach_target() -> None:
    assert transfer_need(D(300), D(1000), BAND) == TransferNeed(Direction.TO_FUTURES, D(200))


def test_above_high_moves_excess_to_spot() -> None:
    assert transfer_need(D(800), D(1000), BAND) == TransferNeed(Direction.TO_SPOT, D(300))


def test_inside_band_or_tiny_or_flat_does_nothing() -> None:
    assert transfer_need(D(500), D(1000), BAND) is None
    assert transfer_need(D(345), D(1000), Band(D("0.35"), D("0.346"), D("0.7"), D("10"))) is None
    assert transfer_need(D(1000), D(0), BAND) is None


def test_reduction_restores_target_when_proceeds_are_moved() -> None:
    m, n, f_cash, t = D(200), D(1000), D(50), D("0.5")
    f = reduction_fraction(m, n, f_cash, t)
    assert D(0) < f < D(1)
    # after the cut and moving all spot cash (old free + sale proceeds), the ratio is the target
    assert (m + f_cash + f * n) / (n * (1 - f)) == t.quantize(D("1e-20")) or abs(
        (m + f_cash + f * n) / (n * (1 - f)) - t
    ) < D("1e-20")
    assert reduction_fraction(D(600), D(1000), D(0), t) == 0


@given(
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.decimals(min_value=0, max_value=10**6, places=2),
)
def test_entry_capacity_is_affordable(wanted: D, margin: D, shorts: D, spot: D) -> None:
    t, b = D("0.5"), D("0.01")
    x = entry_notional_capacity(wanted, margin, shorts, spot, t, b)
    assert D(0) <= x <= wanted
    prefund = max(D(0), t * (shorts + x) - margin)
    assert prefund + x * (1 + b) <= spot + D("1e-18") or x == 0
