"""Signature, key and timestamp checks in Binance's order, on the exact strings ccxt signs."""

from __future__ import annotations

import pytest

from bot.emulator.auth import Authenticator, Credentials, ParsedRequest, Security, _split_signature, sign
from bot.sim.errors import SimError

CREDS = Credentials("key-1", "secret-1")
NOW = 1_700_000_000_000


def _auth() -> Authenticator:
    return Authenticator(CREDS, now_ms=lambda: NOW)


def _signed(payload: str, key: str = "key-1", secret: str = "secret-1") -> ParsedRequest:
    raw = f"{payload}&signature={sign(secret, payload)}"
    body, sig = _split_signature(raw)
    params = dict(p.split("=", 1) for p in body.split("&"))
    return ParsedRequest(params, body, sig, key)


def _code(fn) -> int:
    with pytest.raises(SimError) as info:
        fn()
    return info.value.code


def test_valid_request_passes() -> None:
    _auth().check(_signed(f"timestamp={NOW}&symbol=BTCUSDT&recvWindow=10000"), Security.SIGNED)


def test_order_of_checks_key_then_signature_then_timestamp() -> None:
    stale = f"timestamp={NOW - 20_000}&recvWindow=10000"
    assert _code(lambda: _auth().check(_signed(stale, key="other"), Security.SIGNED)) == -2014  # malformed
    assert _code(lambda: _auth().check(_signed(stale, key="A" * 64), Security.SIGNED)) == -2015  # unknown
    assert _code(lambda: _auth().check(_signed(stale, secret="wrong"), Security.SIGNED)) == -1022
    assert _code(lambda: _auth().check(_signed(stale), Security.SIGNED)) == -1021


def test_timestamp_ahead_of_server_is_rejected() -> None:
    assert _code(lambda: _auth().check(_signed(f"timestamp={NOW + 1500}"), Security.SIGNED)) == -1021


def test_status_codes() -> None:
    with pytest.raises(SimError) as info:
        _auth().check(_signed(f"timestamp={NOW}", key="other"), Security.SIGNED)
    assert info.value.http_status == 401
    with pytest.raises(SimError) as info:
        _auth().check(ParsedRequest({}, "", None, None), Security.USER_STREAM)
    assert info.value.code == -2014 and info.value.http_status == 401


def test_user_stream_needs_only_the_key() -> None:
    _auth().check(ParsedRequest({}, "", None, "key-1"), Security.USER_STREAM)


def test_ws_api_signature_sorted_and_unencoded() -> None:
    params = {"apiKey": "key-1", "timestamp": NOW, "recvWindow": 10000}
    payload = f"apiKey=key-1&recvWindow=10000&timestamp={NOW}"
    _auth().check_ws_signature({**params, "signature": sign("secret-1", payload)})
    assert _code(lambda: _auth().check_ws_signature({**params, "signature": "00"})) == -1022


def test_split_signature_keeps_exact_prefix() -> None:
    assert _split_signature("a=1&b=%5B%22X%22%5D&signature=ab") == ("a=1&b=%5B%22X%22%5D", "ab")
    assert _split_signature("a=1") == ("a=1", None)
