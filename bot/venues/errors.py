"""What to do about a venue error: classify ccxt's exceptions, back off, retry reads, redact secrets.

ccxt 4.5.90's hierarchy has traps (docs/ccxt-binance.md §4, §7): HTTP 429/418 raise ``DDoSProtection``, which is a
sibling of ``RateLimitExceeded`` (both ``NetworkError``); ``OrderNotFound`` is an ``InvalidOrder``;
``MarginModeAlreadySet`` is a ``NoChange``; ``-1000/-1001/-1006/-1008`` all arrive as a bare
``OperationFailed``. A timeout or a 5xx on an order does not mean the order failed: its fate is unknown
and must be looked up by client id, never blindly resent. Hence ``classify(exc, mutating=...)``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import ccxt

T = TypeVar("T")


class ErrorClass(enum.StrEnum):
    """The caller's next move for an error."""

    RETRYABLE = "retryable"  # transient, the request was not executed (or is a read): retry after backoff
    RATE_LIMITED = "rate_limited"  # 429/418/-1003/-1015: retry after a longer backoff
    RESYNC = "resync"  # -1021 timestamp outside recvWindow: re-sync the clock, then retry
    UNKNOWN_STATE = "unknown_state"  # a write may or may not have happened: look it up by client id
    INSUFFICIENT_FUNDS = "insufficient_funds"  # not retryable as-is; a transfer may shrink and retry
    NOT_FOUND = "not_found"  # the order does not exist (-2011/-2013)
    NO_CHANGE = "no_change"  # already in the requested state (margin mode): treat as success
    REJECTED = "rejected"  # the venue refused the request (filters, bad params): fix it, do not retry
    FATAL = "fatal"  # credentials, permissions, programming errors: stop and alert

    @property
    def retryable(self) -> bool:
        """True when the same request may simply be sent again after a delay."""
        return self in (ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED, ErrorClass.RESYNC)


# Binance codes that reject a request before execution even though ccxt raises a bare OperationFailed.
_REJECTED_BEFORE_EXECUTION = frozenset({-1001, -1008})
_CODE_RE = re.compile(r'"code"\s*:\s*(-?\d+)')


def binance_code(exc: BaseException) -> int | None:
    """Binance's numeric error code from a ccxt exception text (``binance {"code":-1008,...}``), if any."""
    match = _CODE_RE.search(str(exc))
    return int(match.group(1)) if match else None


def classify(exc: BaseException, mutating: bool = False) -> ErrorClass:
    """The error class of ``exc``; ``mutating`` says the call was a write (order, cancel, transfer).

    For a write, anything that can happen after the venue received the request (timeouts, 5xx, garbled
    responses, dropped connections, any non-ccxt exception from reading its answer) is UNKNOWN_STATE; for a
    read the same errors are RETRYABLE. Only the venue's explicit refusal (or ``RefusedBeforeSending``)
    says a write did not happen.
    """
    # Order matters: subclasses before their parents.
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return ErrorClass.RATE_LIMITED
    if isinstance(exc, ccxt.InvalidNonce):  # includes ChecksumError (order-book gap: resubscribe)
        return ErrorClass.RESYNC
    if isinstance(exc, ccxt.OrderNotFound):
        return ErrorClass.NOT_FOUND
    if isinstance(exc, ccxt.InsufficientFunds):
        return ErrorClass.INSUFFICIENT_FUNDS
    if isinstance(exc, ccxt.NoChange):
        return ErrorClass.NO_CHANGE
    if isinstance(exc, ccxt.AuthenticationError):  # PermissionDenied, AccountSuspended, -1022, -2015
        return ErrorClass.FATAL
    if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable, OnMaintenance, plain
        return ErrorClass.UNKNOWN_STATE if mutating else ErrorClass.RETRYABLE
    if isinstance(exc, ccxt.OperationFailed):  # -1000/-1001/-1006/-1008, BadResponse, NullResponse
        if binance_code(exc) in _REJECTED_BEFORE_EXECUTION:
            return ErrorClass.RETRYABLE
        return ErrorClass.UNKNOWN_STATE if mutating else ErrorClass.RETRYABLE
    if isinstance(exc, ccxt.NotSupported | ccxt.ArgumentsRequired | ccxt.ExchangeClosedByUser):
        return ErrorClass.FATAL
    if isinstance(exc, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected | ccxt.InvalidAddress):
        return ErrorClass.REJECTED
    if isinstance(exc, ccxt.ExchangeError):
        # An unmapped venue code: the venue answered, so for a read it is a refusal; for a write the
        # answer might be an internal failure after acceptance, so look it up.
        return ErrorClass.UNKNOWN_STATE if mutating else ErrorClass.REJECTED
    if isinstance(exc, TimeoutError | ConnectionError):
        return ErrorClass.UNKNOWN_STATE if mutating else ErrorClass.RETRYABLE
    if isinstance(exc, RefusedBeforeSending):
        return ErrorClass.REJECTED
    if mutating and not isinstance(exc, ccxt.BaseError):
        # Raised while the answer of a write was read (a truncated body gives TypeError/KeyError/ValueError
        # in the parsing): the venue may have executed it, so only a lookup can tell.
        return ErrorClass.UNKNOWN_STATE
    return ErrorClass.FATAL


class RefusedBeforeSending(ValueError):
    """The request was refused locally, before anything reached the venue (a definite refusal)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """The one exponential backoff policy: the n-th wait (n >= 1) is ``base_s * factor**(n-1)``, capped.

    Every caller that waits before trying again uses one: read retries (``retry_call``), the engine's start,
    the rate gate, the mark poll, hedge repairs and transfers. It never overflows, however many strikes."""

    base_s: float
    cap_s: float = math.inf
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError(f"backoff needs base_s >= 0, cap_s >= 0 and factor >= 1, got {self}")

    def delay(self, n: int) -> float:
        """The wait before the n-th retry (no jitter: the ledger and the tests see the same figure)."""
        if n < 1:
            raise ValueError(f"retry number must be >= 1, got {n}")
        if self.base_s == 0:
            return 0.0
        try:
            nominal = self.base_s * self.factor ** (n - 1)
        except OverflowError:
            nominal = math.inf
        return min(nominal, self.cap_s)

    def jittered(self, n: int, rng: random.Random) -> float:
        """``delay(n)`` jittered into [d/2, d], so many clients do not retry in step."""
        d = self.delay(n)
        return d / 2 + rng.random() * d / 2

    def delays(self, rng: random.Random, attempts: int) -> Iterator[float]:
        """The jittered waits before retries 1..``attempts``. The RNG is injected (seeded in tests and
        backtests) so runs are reproducible."""
        if attempts < 0:
            raise ValueError(f"attempts must be >= 0, got {attempts}")
        for n in range(1, attempts + 1):
            yield self.jittered(n, rng)


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    rng: random.Random,
    attempts: int = 5,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    rate_limit_base_s: float = 10.0,
    rate_limit_cap_s: float = 120.0,
    resync: Callable[[], Awaitable[object]] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: Callable[[int, BaseException, float], object] | None = None,
) -> T:
    """Call an idempotent read ``fn`` and retry it on retryable errors; other errors propagate at once.

    Rate limits (429/418) back off from ``rate_limit_base_s`` instead of ``base_s``; a clock error calls
    ``resync`` before retrying. Never use this for writes: their unknown outcome needs a lookup instead.
    After ``attempts`` tries the last error is raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    normal = Backoff(base_s, cap_s).delays(rng, attempts - 1)
    limited = Backoff(rate_limit_base_s, rate_limit_cap_s).delays(rng, attempts - 1)
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            kind = classify(exc, mutating=False)
            if not kind.retryable or attempt == attempts:
                raise
            delay = next(limited) if kind is ErrorClass.RATE_LIMITED else next(normal)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            if kind is ErrorClass.RESYNC and resync is not None:
                await resync()
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # signed query strings and form bodies
    (re.compile(r"(signature=)[^&\s\"'<>]*", re.IGNORECASE), r"\1***"),
    (re.compile(r"(listenKey=)[^&\s\"'<>]*", re.IGNORECASE), r"\1***"),
    (re.compile(r"(api_?key=)[^&\s\"'<>]*", re.IGNORECASE), r"\1***"),
    # header dumps: 'X-MBX-APIKEY': 'abc' / X-MBX-APIKEY: abc / "Authorization": "Basic ..."
    (re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(Authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}]+", re.IGNORECASE), r"\1***"),
    # JSON params of the WebSocket API: "apiKey": "abc", "signature": "..."
    (re.compile(r"(['\"](?:apiKey|signature|secret|listenKey)['\"]\s*:\s*['\"])[^'\"]*", re.IGNORECASE), r"\1***"),
    # user-info in URLs (https://user:pass@host)
    (re.compile(r"(\w+://)[^/\s@]+:[^/\s@]+@"), r"\1***@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with signatures, API keys, listenKeys and any of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


def safe_error_text(exc: BaseException, secrets: Iterable[str] = (), limit: int = 500) -> str:
    """``ClassName: message`` fit for logs and the ledger: secrets redacted, length bounded."""
    text = redact(f"{type(exc).__name__}: {exc}", secrets)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Production URLs: ccxt picks its spot or linear error table by URL prefix (docs/ccxt-binance.md §4), so mapping a
# simulated rejection through them yields exactly the class a live Binance answer would.
_SPOT_URL = "https://api.binance.com/api/v3/order"
_PERP_URL = "https://fapi.binance.com/fapi/v1/order"
_mapper: ccxt.binance | None = None


def _error_mapper() -> ccxt.binance:
    global _mapper
    if _mapper is None:
        _mapper = ccxt.binance({"options": {"fetchCurrencies": False}})
    return _mapper


@functools.lru_cache(maxsize=512)
def _mapped(code: int, msg: str, http_status: int, perp: bool) -> tuple[type[ccxt.BaseError], str]:
    body = json.dumps({"code": code, "msg": msg}, separators=(",", ":"))
    url = _PERP_URL if perp else _SPOT_URL
    try:
        _error_mapper().handle_errors(http_status, "", url, "POST", {}, body, {"code": code, "msg": msg}, {}, "")
    except ccxt.BaseError as exc:
        return type(exc), str(exc)
    return ccxt.ExchangeError, f"binance {body}"


def exchange_error(code: int, msg: str, http_status: int = 400, *, perp: bool) -> ccxt.BaseError:
    """The ccxt exception production raises for Binance's ``{"code", "msg"}`` answer on spot/sapi or fapi."""
    cls, text = _mapped(code, msg, http_status, perp)
    return cls(text)


BANNED_UNTIL = re.compile(r"banned until (\d{12,14})")


def banned_until_ms(exc: BaseException) -> int | None:
    """The end of an IP ban from a 418's message, if it names one."""
    match = BANNED_UNTIL.search(str(exc))
    return int(match.group(1)) if match else None


def retry_after_s(exc: BaseException) -> float | None:
    """The venue's ``Retry-After`` (seconds) of a 429/418, when the client kept it
    (``bot.venues.ccxt_factory.keep_retry_after``)."""
    value = getattr(exc, "retry_after_s", None)
    return float(value) if value is not None else None
