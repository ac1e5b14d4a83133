"""--since parsing and the small text helpers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.format import fmt_age, fmt_dec, fmt_pct, fmt_qty, iso_utc, parse_kinds, parse_since, to_jsonable

NOW = 1_714_521_600_000  # 2024-05-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - 30 * 60_000),
        ("1h", NOW - 3_600_000),
        ("2d", NOW - 2 * 86_400_000),
        ("1.5h", NOW - 5_400_000),
        ("2024-04-30", NOW - 86_400_000),
        ("2024-04-30T12:00:00Z", NOW - 43_200_000),
        ("2024-04-30T14:00:00+02:00", NOW - 43_200_000),
    ],
)
def test_parse_since(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


def test_parse_since_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="30m, 1h, 2d"):
        parse_since("yesterday", NOW)


def test_helpers() -> None:
    assert iso_utc(NOW + 1234) == "2024-05-01T00:00:01Z"
    assert iso_utc(None) == "-"
    assert parse_kinds(" fill, Alert ,") == ["fill", "alert"] and parse_kinds("") is None
    assert fmt_dec(Decimal("-8.40460"), 4, signed=True) == "-8.4046"
    assert fmt_dec(Decimal("1234.5"), signed=True) == "+1,234.50"
    assert fmt_qty(Decimal("0.100000000000000000")) == "0.1" and fmt_qty(Decimal("100")) == "100"
    assert fmt_pct(Decimal("0.00012")) == "0.0120%"
    assert fmt_age(95_000) == "1m35s" and fmt_age(3 * 86_400_000 + 7_200_000) == "3d02h"
    assert to_jsonable({"a": [Decimal("1E+2"), Decimal("0.50")]}) == {"a": ["100", "0.5"]}
