"""Binance error bodies: ``{"code": <negative int>, "msg": "..."}`` with Binance's HTTP status."""

from __future__ import annotations

from typing import Any

from bot.sim.errors import SimError


class ApiError(SimError):
    """A gateway-level error (auth, limits, faults) answered exactly as Binance would.

    A ``SimError`` subclass so the app answers both the same way: Binance's code, message and status.
    ``retry_after_s``: the ``Retry-After`` header Binance sends with a 429 or 418 (seconds to wait).
    """

    def __init__(self, code: int, msg: str, http_status: int = 400, retry_after_s: int | None = None) -> None:
        super().__init__(code, msg, http_status)
        self.retry_after_s = retry_after_s


# Binance's published messages for the codes the emulator emits itself (the sim raises the order ones).
MESSAGES: dict[int, str] = {
    -1000: "An unknown error occurred while processing the request.",
    -1003: "Too many requests; current limit is {limit} request weight per 1 MINUTE. "
    "Please use the websocket for live updates to avoid polling the API.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
    -1013: "Filter failure: NOTIONAL",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in a parameter.",
    -1102: "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -2010: "Account has insufficient balance for requested action.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2018: "Balance is insufficient.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -4164: "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    -5013: "Asset transfer failed: insufficient balance",
}

# Binance answers these codes with a status other than 400.
STATUS_BY_CODE: dict[int, int] = {-2014: 401, -2015: 401, -1003: 429, -1007: 408, -1008: 503, -1000: 500}


def api_error(code: int, msg: str | None = None, http_status: int | None = None, **fmt: Any) -> ApiError:
    """An ``ApiError`` with Binance's default message and status for ``code`` unless given."""
    text = msg if msg is not None else MESSAGES.get(code, "An unknown error occurred while processing the request.")
    if fmt:
        text = text.format(**fmt)
    return ApiError(code, text, http_status if http_status is not None else STATUS_BY_CODE.get(code, 400))


def missing_param(name: str) -> ApiError:
    return api_error(-1102, name=name)
