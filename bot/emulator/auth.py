"""Request parsing and Binance's key / signature / timestamp checks, in Binance's order.

ccxt signs ``timestamp=..&<params>&recvWindow=..`` with HMAC-SHA256 and appends ``&signature=<hex>``:
in the query string for GET/DELETE and in the form body for POST/PUT. The check order is API key (401
-2014 malformed, -2015 unknown), signature (400 -1022), then timestamp against the *wall* clock (400
-1021): ccxt stamps requests with its own wall time, whatever the simulated time is.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web

from bot.emulator.errors import api_error, missing_param

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000
_SIGNATURE_MARK = "signature="


class Security(enum.Enum):
    """Binance endpoint security types that matter to the emulator."""

    NONE = "NONE"
    USER_STREAM = "USER_STREAM"  # API key header only (listenKey calls)
    SIGNED = "SIGNED"  # API key + HMAC signature + timestamp


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"Credentials(api_key={self.api_key[:4]}…, secret=***)"


@dataclass(slots=True)
class ParsedRequest:
    """Parameters of one REST call plus what the signature check needs."""

    params: dict[str, str] = field(default_factory=dict)
    signed_payload: str = ""
    signature: str | None = None
    api_key: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return default if value in (None, "") else value

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value in (None, ""):
            raise missing_param(name)
        return value

    def int_or_none(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise missing_param(name) from None

    def json_list(self, name: str) -> list[str] | None:
        """Binance list params arrive as url-encoded JSON arrays: ``symbols=["BTCUSDT","ETHUSDT"]``."""
        value = self.get(name)
        if value is None:
            return None
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            raise api_error(-1100) from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise api_error(-1100)
        return items


def _split_signature(raw: str) -> tuple[str, str | None]:
    """(payload before ``&signature=``, signature) of one query string or form body."""
    if raw.startswith(_SIGNATURE_MARK):
        rest = raw[len(_SIGNATURE_MARK) :]
        return "", rest.split("&", 1)[0]
    idx = raw.rfind("&" + _SIGNATURE_MARK)
    if idx < 0:
        return raw, None
    tail = raw[idx + 1 + len(_SIGNATURE_MARK) :]
    return raw[:idx], tail.split("&", 1)[0]


async def parse_request(request: web.Request) -> ParsedRequest:
    """Query params (all methods) merged with the form body (POST/PUT); the signature is split off."""
    query = request.query_string
    body = ""
    if request.method in ("POST", "PUT") and request.can_read_body:
        body = (await request.read()).decode("utf-8", errors="replace")
    q_payload, q_sig = _split_signature(query)
    b_payload, b_sig = _split_signature(body)
    signature = q_sig if q_sig is not None else b_sig
    # Binance signs "query string concatenated with the request body".
    signed_payload = q_payload + b_payload if q_sig is None else q_payload
    params: dict[str, str] = {}
    for part in (q_payload, b_payload):
        params.update(parse_qsl(part, keep_blank_values=True))
    return ParsedRequest(params, signed_payload, signature, request.headers.get("X-MBX-APIKEY"))


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def wall_ms() -> int:
    return int(time.time() * 1000)


_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{64}")


@dataclass(slots=True)
class Authenticator:
    """Checks one request against the emulator's single account."""

    credentials: Credentials
    now_ms: Callable[[], int] = wall_ms

    def check_key(self, api_key: str | None) -> None:
        """Binance: a key that is not 64 letters and digits is "API-key format invalid." (-2014); a
        well-formed key it does not know is "Invalid API-key, IP, or permissions for action." (-2015)."""
        if api_key and hmac.compare_digest(api_key.encode(), self.credentials.api_key.encode()):
            return
        if not api_key or not _KEY_FORMAT.fullmatch(api_key):
            raise api_error(-2014)
        raise api_error(-2015)

    def check(self, req: ParsedRequest, security: Security) -> None:
        if security is Security.NONE:
            return
        self.check_key(req.api_key)
        if security is Security.USER_STREAM:
            return
        if not req.signature:
            raise missing_param("signature")
        expected = sign(self.credentials.secret, req.signed_payload)
        if not hmac.compare_digest(expected, req.signature.lower()):
            raise api_error(-1022)
        self.check_timestamp(req.int_or_none("timestamp"), req.int_or_none("recvWindow"))

    def check_timestamp(self, timestamp: int | None, recv_window: int | None) -> None:
        if timestamp is None:
            raise missing_param("timestamp")
        window = DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
        if window <= 0 or window > MAX_RECV_WINDOW_MS:
            raise api_error(-1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if timestamp >= now + FUTURE_TOLERANCE_MS:
            raise api_error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > window:
            raise api_error(-1021)

    def check_ws_signature(self, params: dict[str, object]) -> None:
        """Spot WS-API ``userDataStream.subscribe.signature``: sorted ``k=v`` pairs, values not encoded."""
        api_key = params.get("apiKey")
        self.check_key(api_key if isinstance(api_key, str) else None)
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise missing_param("signature")
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        if not hmac.compare_digest(sign(self.credentials.secret, payload), signature.lower()):
            raise api_error(-1022)
        ts, rw = params.get("timestamp"), params.get("recvWindow")
        self.check_timestamp(int(str(ts)) if ts is not None else None, int(str(rw)) if rw is not None else None)
