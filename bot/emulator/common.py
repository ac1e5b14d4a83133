"""Parameter helpers shared by the REST modules (Binance's validation codes for bad input)."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal, overload

from bot.emulator.auth import ParsedRequest
from bot.emulator.errors import ApiError, api_error, missing_param

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
KLINE_INTERVALS_H = {"1h": 1, "2h": 2, "4h": 4, "6h": 6, "8h": 8, "12h": 12, "1d": 24}


def decimal_param(req: ParsedRequest, name: str, required: bool = False) -> Decimal | None:
    value = req.get(name)
    if value is None:
        if required:
            raise missing_param(name)
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise api_error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        ) from None
    if not number.is_finite():
        raise missing_param(name)
    return number


@overload
def symbol_param(emu: Emulator, req: ParsedRequest, required: Literal[True] = True) -> str: ...
@overload
def symbol_param(emu: Emulator, req: ParsedRequest, required: bool) -> str | None: ...
def symbol_param(emu: Emulator, req: ParsedRequest, required: bool = True) -> str | None:
    symbol = req.get("symbol")
    if symbol is None:
        if required:
            raise missing_param("symbol")
        return None
    symbol = symbol.upper()
    if symbol not in emu.symbols:
        raise api_error(-1121)
    return symbol


def symbols_param(emu: Emulator, req: ParsedRequest) -> list[str]:
    """``symbol``, or the JSON ``symbols`` list, or every symbol."""
    one = symbol_param(emu, req, required=False)
    if one is not None:
        return [one]
    many = req.json_list("symbols")
    if many is None:
        return list(emu.symbols)
    unknown = [s for s in many if s.upper() not in emu.symbols]
    if unknown:
        raise api_error(-1121)
    return [s.upper() for s in many]


def client_order_id(req: ParsedRequest, name: str = "newClientOrderId") -> str | None:
    value = req.get(name)
    if value is None:
        return None
    if not CLIENT_ID_RE.match(value):
        raise api_error(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."
        )
    return value


def generated_client_id() -> str:
    return "emu" + secrets.token_hex(10)


def limit_param(req: ParsedRequest, default: int, maximum: int) -> int:
    value = req.int_or_none("limit")
    if value is None:
        return default
    if value <= 0:
        raise missing_param("limit")
    return min(value, maximum)


def interval_hours(req: ParsedRequest) -> int:
    interval = req.require("interval")
    hours = KLINE_INTERVALS_H.get(interval)
    if hours is None:
        # The dataset is hourly: finer intervals cannot be served truthfully.
        raise ApiError(-1120, "Invalid interval.")
    return hours
