"""Error classification over ccxt 4.5.90's real classes, backoff, read retries and secret redaction."""

from __future__ import annotations

import random

import ccxt
import pytest

from bot.venues.errors import (
    Backoff,
    ErrorClass,
    RefusedBeforeSending,
    binance_code,
    classify,
    exchange_error,
    redact,
    retry_call,
    safe_error_text,
)

INSUFFICIENT = "Account has insufficient balance for requested action."


@pytest.mark.parametrize(
    ("code", "msg", "status", "perp", "cls", "kind"),
    [
        (-2010, INSUFFICIENT, 400, False, ccxt.InsufficientFunds, ErrorClass.INSUFFICIENT_FUNDS),
        (-2019, "Margin is insufficient.", 400, True, ccxt.InsufficientFunds, ErrorClass.INSUFFICIENT_FUNDS),
        (-2018, "Balance is insufficient.", 400, True, ccxt.InsufficientFunds, ErrorClass.INSUFFICIENT_FUNDS),
        (
            -5013,
            "Asset transfer failed: insufficient balance",
            400,
            False,
            ccxt.InsufficientFunds,
            ErrorClass.INSUFFICIENT_FUNDS,
        ),
        (
            -4164,
            "Order's notional must be no smaller than 5 (unless you choose reduce only).",
            400,
            True,
            ccxt.InvalidOrder,
            ErrorClass.REJECTED,
        ),
        (-2022, "ReduceOnly Order is rejected.", 400, True, ccxt.InvalidOrder, ErrorClass.REJECTED),
        (-1013, "Filter failure: LOT_SIZE", 400, False, ccxt.InvalidOrder, ErrorClass.REJECTED),
        (-1013, "Filter failure: NOTIONAL", 400, False, ccxt.BadRequest, ErrorClass.REJECTED),
        (-2011, "Unknown order sent.", 400, False, ccxt.OrderNotFound, ErrorClass.NOT_FOUND),
        (-2013, "Order does not exist.", 400, True, ccxt.OrderNotFound, ErrorClass.NOT_FOUND),
        (-4046, "No need to change margin type.", 400, True, ccxt.MarginModeAlreadySet, ErrorClass.NO_CHANGE),
        (-1003, "Too many requests", 429, True, ccxt.DDoSProtection, ErrorClass.RATE_LIMITED),
        (-1003, "Way too many requests; IP banned", 418, False, ccxt.DDoSProtection, ErrorClass.RATE_LIMITED),
        (
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
            400,
            False,
            ccxt.InvalidNonce,
            ErrorClass.RESYNC,
        ),
        (-1022, "Signature for this request is not valid.", 400, False, ccxt.AuthenticationError, ErrorClass.FATAL),
        (
            -2015,
            "Invalid API-key, IP, or permissions for action.",
            401,
            True,
            ccxt.AuthenticationError,
            ErrorClass.FATAL,
        ),
        (
            -1008,
            "Server is currently overloaded with other requests.",
            503,
            True,
            ccxt.OperationFailed,
            ErrorClass.RETRYABLE,
        ),
        (-5022, "Post Only order will be rejected", 400, True, ccxt.OrderNotFillable, ErrorClass.REJECTED),
    ],
)
def test_production_mapping_and_class(code, msg, status, perp, cls, kind):
    exc = exchange_error(code, msg, status, perp=perp)
    assert type(exc) is cls
    assert classify(exc, mutating=True) is kind
    assert binance_code(exc) in (code, None)


def test_ddos_is_not_rate_limit_exceeded_but_both_rate_limited():
    assert not issubclass(ccxt.DDoSProtection, ccxt.RateLimitExceeded)
    assert classify(ccxt.RateLimitExceeded("binance {}")) is ErrorClass.RATE_LIMITED
    assert classify(ccxt.DDoSProtection("binance 429")) is ErrorClass.RATE_LIMITED


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.RequestTimeout("binance POST https://fapi.binance.com/fapi/v1/order timed out"),
        ccxt.ExchangeNotAvailable("binance 502 Bad Gateway"),
        ccxt.NetworkError("connection reset"),
        exchange_error(-1007, "Timeout waiting for response from backend server.", 408, perp=True),
        exchange_error(-1006, "Unexpected response from message bus. Execution status unknown.", 500, perp=True),
        TimeoutError(),
    ],
)
def test_writes_with_unknown_outcome_need_lookup_reads_retry(exc):
    assert classify(exc, mutating=True) is ErrorClass.UNKNOWN_STATE
    assert classify(exc, mutating=False) is ErrorClass.RETRYABLE


def test_programming_errors_are_fatal():
    assert classify(ValueError("bad")) is ErrorClass.FATAL
    assert classify(ccxt.NotSupported("x")) is ErrorClass.FATAL
    assert not ErrorClass.FATAL.retryable and ErrorClass.RESYNC.retryable


@pytest.mark.parametrize(
    "exc",
    [
        TypeError("string indices must be integers, not 'str'"),  # ccxt handed back a truncated body as text
        KeyError("origQty"),
        ValueError("Invalid literal"),
        ccxt.BadResponse("order answer did not parse"),
        ccxt.NullResponse("binance method() returned empty response"),
    ],
)
def test_a_write_whose_answer_did_not_parse_is_unknown_not_failed(exc):
    assert classify(exc, mutating=True) is ErrorClass.UNKNOWN_STATE


def test_a_request_refused_before_sending_is_a_definite_refusal():
    exc = RefusedBeforeSending("limit order x needs a price")
    assert classify(exc, mutating=True) is ErrorClass.REJECTED and classify(exc) is ErrorClass.REJECTED


def test_backoff_is_bounded_exponential_jittered_and_seeded():
    policy = Backoff(base_s=1.0, cap_s=10.0)
    delays = list(policy.delays(random.Random(7), 8))
    assert len(delays) == 8
    for i, d in enumerate(delays):
        nominal = min(1.0 * 2**i, 10.0)
        assert nominal / 2 <= d <= nominal
    assert delays == list(policy.delays(random.Random(7), 8))
    assert delays != list(policy.delays(random.Random(8), 8))


def test_backoff_delay_is_exact_capped_and_never_overflows():
    # the copies it replaced computed base * 2**n inline: uncapped in the treasury and the executor, and a
    # float overflow (a crash) after ~1000 strikes in the rate gate
    assert [Backoff(0.5).delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert Backoff(5.0, cap_s=120.0).delay(10) == 120.0
    assert Backoff(5.0, cap_s=120.0).delay(5000) == 120.0
    assert Backoff(0.0).delay(5000) == 0.0
    with pytest.raises(ValueError, match="retry number"):
        Backoff(1.0).delay(0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(1.0, factor=0.5)


async def test_retry_call_retries_transient_then_succeeds_with_longer_waits_for_429():
    slept: list[float] = []
    errors = [ccxt.DDoSProtection("binance 429"), ccxt.RequestTimeout("t")]

    async def fn():
        if errors:
            raise errors.pop(0)
        return "ok"

    async def sleep(d):
        slept.append(d)

    assert await retry_call(fn, rng=random.Random(1), sleep=sleep, base_s=0.1, rate_limit_base_s=10.0) == "ok"
    assert len(slept) == 2
    assert slept[0] >= 5.0 and slept[1] <= 0.1


async def test_retry_call_resyncs_on_clock_error_and_stops_on_fatal():
    calls = {"n": 0, "resync": 0}

    async def fn():
        calls["n"] += 1
        if calls["n"] == 1:
            raise ccxt.InvalidNonce("binance -1021")
        raise ccxt.AuthenticationError("binance -2015")

    async def resync():
        calls["resync"] += 1

    async def sleep(_):
        return None

    with pytest.raises(ccxt.AuthenticationError):
        await retry_call(fn, rng=random.Random(1), sleep=sleep, resync=resync)
    assert calls == {"n": 2, "resync": 1}


async def test_retry_call_gives_up_after_attempts():
    n = 0

    async def fn():
        nonlocal n
        n += 1
        raise ccxt.ExchangeNotAvailable("down")

    async def sleep(_):
        return None

    with pytest.raises(ccxt.ExchangeNotAvailable):
        await retry_call(fn, rng=random.Random(1), sleep=sleep, attempts=3)
    assert n == 3


def test_redaction_of_signatures_keys_and_listen_keys():
    key, secret = "A" * 64, "S" * 64
    text = (
        f"binance GET https://api.binance.com/api/v3/account?timestamp=1&recvWindow=10000&signature=deadbeef00 "
        f"headers {{'X-MBX-APIKEY': '{key}', 'Authorization': 'Basic ZGVtby1hcGk6'}} "
        f"wss://fstream.binance.com/private/ws?listenKey=LK123 body apiKey={key}&secret={secret} "
        f'params {{"apiKey":"{key}","signature":"abcd"}}'
    )
    out = redact(text, [key, secret])
    for leaked in (key, secret, "deadbeef00", "LK123", "ZGVtby1hcGk6", "abcd"):
        assert leaked not in out
    assert "signature=***" in out and "api/v3/account" in out


def test_safe_error_text_names_class_and_bounds_length():
    exc = ccxt.NetworkError("binance POST https://x/fapi/v1/order?symbol=BTCUSDT&signature=" + "f" * 64)
    text = safe_error_text(exc)
    assert text.startswith("NetworkError: ")
    assert "f" * 64 not in text
    assert len(safe_error_text(ccxt.NetworkError("x" * 5000))) == 500
