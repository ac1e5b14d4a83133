"""The shared vocabulary's single owners: the funding interval from spacing and Binance id <-> symbol."""

from __future__ import annotations

import pytest

from bot.domain import (
    HOUR_MS,
    QUOTES,
    exchange_id,
    funding_interval_hours,
    parse_pair_symbol,
    perp_symbol,
    split_exchange_id,
    unified_symbol,
)


def test_interval_rounds_binance_late_stamps_to_the_hour() -> None:
    # real fundingTime values arrive a few ms after the hour; a floor or an exact-hour test gets 7 or nothing
    assert funding_interval_hours(0, 8 * HOUR_MS - 2) == 8
    assert funding_interval_hours(1_700_000_000_003, 1_700_000_000_003 + 4 * HOUR_MS + 5) == 4
    assert funding_interval_hours(0, HOUR_MS) == 1


def test_interval_refuses_gaps_that_are_no_interval() -> None:
    assert funding_interval_hours(0, 8 * HOUR_MS + 10 * 60_000) is None  # off the hour grid
    assert funding_interval_hours(0, 0) is None
    assert funding_interval_hours(8 * HOUR_MS, 0) is None  # out of order
    assert funding_interval_hours(0, 48 * HOUR_MS) is None  # a gap in the data, not an interval


@pytest.mark.parametrize("quote", QUOTES)
def test_every_quote_asset_converts_both_ways(quote: str) -> None:
    # one copy dropped BUSD, another knew USDT only
    sid = f"ETH{quote}"
    assert split_exchange_id(sid) == ("ETH", quote)
    assert unified_symbol(sid) == f"ETH/{quote}"
    assert exchange_id(unified_symbol(sid)) == sid
    assert exchange_id(perp_symbol(unified_symbol(sid))) == sid
    assert parse_pair_symbol(sid.lower()) == f"ETH/{quote}"


def test_exchange_id_accepts_every_spelling() -> None:
    assert exchange_id("BTC/USDT") == exchange_id("BTC/USDT:USDT") == exchange_id("btcusdt") == "BTCUSDT"


@pytest.mark.parametrize("bad", ["USDT", "BTCEUR", ""])
def test_an_id_without_a_known_quote_names_itself(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        unified_symbol(bad)
