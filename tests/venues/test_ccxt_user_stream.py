"""Order updates as Binance's user-data streams document them -> the bot's events (pure parsing; the
stream itself runs through the real ccxt.pro against the emulator in tests/engine/test_user_stream.py)."""

from __future__ import annotations

from decimal import Decimal as D

import ccxt
import pytest

from bot.domain import Leg, Side
from bot.venues.base import ForcedClose, VenueFill
from bot.venues.ccxt_user_stream import event_from_update

PERP = "BTC/USDT:USDT"


def usdm(**fields: object) -> dict[str, object]:
    """The ``o`` object of an ORDER_TRADE_UPDATE (fields as Binance's USD-M docs list them)."""
    base: dict[str, object] = {
        "s": "BTCUSDT", "c": "fb-7-1-p", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.010", "p": "0",
        "ap": "60000", "sp": "0", "x": "TRADE", "X": "FILLED", "i": 8886774, "l": "0.010", "z": "0.010",
        "L": "60000", "N": "USDT", "n": "0.24", "T": 1568879465650, "t": 1051, "b": "0", "a": "0", "m": False,
        "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": "BOTH", "cp": False, "rp": "0",
    }  # fmt: skip
    return {**base, **fields}


def test_a_trade_update_is_the_fill_a_poll_would_read() -> None:
    fill = event_from_update(usdm(), PERP)
    assert fill == VenueFill("1051", "8886774", "fb-7-1-p", "BTC/USDT", Leg.PERP, Side.SELL, D("0.010"), D("60000"),
                        D("0.24"), "USDT", False, 1568879465650)  # fmt: skip
    spot = {"e": "executionReport", "s": "BTCUSDT", "c": "fb-7-1-s", "S": "BUY", "x": "TRADE", "X": "FILLED",
            "i": 4293153, "l": "0.01", "L": "60010", "n": "0.00001", "N": "BTC", "T": 1499405658657, "t": 1025,
            "m": False}  # fmt: skip
    got = event_from_update(spot, "BTC/USDT")
    assert (
        isinstance(got, VenueFill) and got.leg is Leg.SPOT and got.fee_asset == "BTC" and got.venue_trade_id == "1025"
    )


def test_updates_that_are_not_trades_are_nothing() -> None:
    assert event_from_update(usdm(x="NEW", X="NEW", l="0", z="0", t=0), PERP) is None
    assert event_from_update(usdm(x="CANCELED", X="CANCELED"), PERP) is None


@pytest.mark.parametrize(("client_id", "kind"), [("autoclose-1568879465651", "liquidation"), ("adl_autoclose", "adl")])
def test_liquidation_and_adl_are_forced_closes_with_their_trade(client_id: str, kind: str) -> None:
    # "c shows as autoclose-XXX / adl_autoclose, X shows as NEW" first: nothing to act on yet
    assert event_from_update(usdm(c=client_id, S="BUY", o="LIQUIDATION", x="NEW", X="NEW", l="0", z="0"), PERP) is None
    got = event_from_update(usdm(c=client_id, S="BUY", o="LIQUIDATION", ot="LIQUIDATION"), PERP)
    assert isinstance(got, ForcedClose) and got.kind == kind and got.symbol == "BTC/USDT"
    assert got.side is Side.BUY and got.qty == D("0.010") and got.price == D("60000")
    assert got.fill is not None and got.fill.client_order_id == client_id


def test_a_liquidation_without_a_trade_still_reaches_the_bot() -> None:
    # CALCULATED: "Liquidation Execution" (the insurance fund takes the position): no trade, still closed
    got = event_from_update(usdm(c="autoclose-1", S="BUY", x="CALCULATED", X="FILLED", t=0), PERP)
    assert isinstance(got, ForcedClose) and got.fill is None and got.price == D("60000")


def test_a_trade_update_without_its_numbers_is_an_error_not_a_zero_fill() -> None:
    with pytest.raises(ccxt.BadResponse, match="'l'"):
        event_from_update(usdm(l=None), PERP)
