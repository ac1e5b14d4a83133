from __future__ import annotations

import pytest

from bot.domain import Leg
from bot.execution.ids import (
    BINANCE_CLIENT_ID,
    ClientIdError,
    cancel_id,
    order_id,
    parse_order_id,
    transfer_id,
)


def test_order_ids_are_deterministic_and_binance_valid() -> None:
    a = order_id(12, 3, Leg.SPOT)
    assert a == order_id(12, 3, Leg.SPOT) == "fb-12-3-s"
    assert order_id(12, 3, Leg.PERP) == "fb-12-3-p"
    assert order_id(12, 3, Leg.PERP, "t", 2) == "fb-12-3-p-t2"
    for cid in (a, order_id(999999999, 99999, Leg.PERP, "u", 19), cancel_id(a), transfer_id(1795399396585, 4)):
        assert BINANCE_CLIENT_ID.fullmatch(cid), cid


def test_ids_differ_per_leg_seq_and_attempt() -> None:
    ids = {order_id(1, s, leg, step, n) for s in (1, 2) for leg in Leg for step, n in (("", 0), ("t", 1), ("u", 1))}
    assert len(ids) == 2 * 2 * 3


def test_parse_round_trips() -> None:
    assert parse_order_id("fb-7-41-p-u3") == ("7", 41, Leg.PERP, "u", 3)
    assert parse_order_id("fb-7-41-s") == ("7", 41, Leg.SPOT, "", 0)
    assert parse_order_id("somebody-else") is None
    assert parse_order_id(cancel_id("fb-7-41-s")) is None


def test_unsafe_pair_ids_are_sanitised_and_too_long_ids_refused() -> None:
    assert order_id("BTC/USDT-x", 1, Leg.SPOT) == "fb-BTC_USDT_x-1-s"
    with pytest.raises(ClientIdError):
        order_id("x" * 40, 1, Leg.SPOT)
    with pytest.raises(ClientIdError):
        order_id(1, 1, Leg.SPOT, "tt", 1)
