"""Money conversion rules (no database needed)."""

from decimal import Decimal

import pytest

from bot.ledger.types import json_dumps, to_money


def test_money_keeps_18_places_and_rounds_half_away_from_zero_like_postgres():
    assert to_money(Decimal("0.000000012345678901")) == Decimal("0.000000012345678901")
    assert to_money(Decimal("0.0000000000000000005")) == Decimal("0.000000000000000001")
    assert to_money(Decimal("-0.0000000000000000005")) == Decimal("-0.000000000000000001")
    assert to_money(Decimal("0.0000000000000000004")) == 0
    assert to_money(7) == Decimal(7)
    assert to_money("1.5") == Decimal("1.5")


def test_money_refuses_floats_non_finite_and_overflow():
    with pytest.raises(TypeError, match="float"):
        to_money(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_money(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        to_money(Decimal("NaN"))
    assert to_money(Decimal("9" * 20)) == Decimal("9" * 20)
    with pytest.raises(ValueError, match="does not fit"):
        to_money(Decimal("1" + "0" * 20))
    with pytest.raises(ValueError, match="does not fit"):
        to_money(Decimal("1E+40"))


def test_json_keeps_decimals_as_exact_strings():
    assert json_dumps({"qty": Decimal("0.000000012345678901")}) == '{"qty":"0.000000012345678901"}'
    with pytest.raises(TypeError):
        json_dumps({"x": object()})
