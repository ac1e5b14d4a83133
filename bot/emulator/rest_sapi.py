"""``/sapi`` endpoints: the universal transfer between the spot and USD-M wallets, and the account's BNB
burn switch (spot fees paid in BNB)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.emulator import formats
from bot.emulator.auth import ParsedRequest, Security
from bot.emulator.common import decimal_param
from bot.emulator.errors import ApiError
from bot.emulator.routing import Route

if TYPE_CHECKING:
    from bot.emulator.app import Emulator


def transfer(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """POST /sapi/v1/asset/transfer: MAIN_UMFUTURE, UMFUTURE_MAIN, MAIN_CMFUTURE and CMFUTURE_MAIN.

    ccxt 4.5.90 turns ``transfer(.., 'spot', 'future')`` into ``MAIN_ISOLATED_MARGIN`` with
    ``toSymbol=FUTURE``; there is no such isolated-margin pair, so Binance's answer is "Invalid symbol."
    """
    kind = req.require("type").upper()
    asset = req.require("asset").upper()
    amount = decimal_param(req, "amount", required=True)
    if "ISOLATED_MARGIN" in kind:
        raise ApiError(-1121, "Invalid symbol.")
    tran_id = emu.sim.transfer(asset, amount, kind)
    return {"tranId": tran_id}


HISTORY_DEFAULT_MS = 7 * 24 * 3_600_000  # neither startTime nor endTime: Binance answers the last 7 days
HISTORY_PAGE_MAX = 100  # `size`: default 10, at most 100


def transfer_history(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /sapi/v1/asset/transfer: one type's transfers, newest first, paged by ``current`` and ``size``."""
    kind = req.require("type").upper()
    start, end = req.int_or_none("startTime"), req.int_or_none("endTime")
    if start is None and end is None:
        start = emu.now_ms() - HISTORY_DEFAULT_MS
    rows = [
        {
            "asset": r.asset,
            "amount": formats.fmt(r.amount),
            "type": r.kind,
            "status": r.status,
            "tranId": r.tran_id,
            "timestamp": r.time_ms,
        }
        for r in emu.sim.transfer_history()
        if r.kind == kind and (start is None or r.time_ms >= start) and (end is None or r.time_ms <= end)
    ]
    rows.sort(key=lambda r: (r["timestamp"], r["tranId"]), reverse=True)
    size = min(req.int_or_none("size") or 10, HISTORY_PAGE_MAX)
    page = max(req.int_or_none("current") or 1, 1)
    return {"total": len(rows), "rows": rows[(page - 1) * size : page * size]}


def _burn_state(emu: Emulator) -> dict[str, Any]:
    return {"spotBNBBurn": emu.sim.bnb_burn, "interestBNBBurn": False}


def bnb_burn(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /sapi/v1/bnbBurn: whether spot fees are paid in BNB (``spotBNBBurn``); no margin here."""
    return _burn_state(emu)


def _flag(req: ParsedRequest, name: str) -> bool | None:
    raw = req.get(name)
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ApiError(-1102, f"Illegal value for parameter '{name}': 'true' or 'false'.")
    return text == "true"


def toggle_bnb_burn(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """POST /sapi/v1/bnbBurn: ``spotBNBBurn`` and/or ``interestBNBBurn``, "true" or "false" (at least one)."""
    spot, interest = _flag(req, "spotBNBBurn"), _flag(req, "interestBNBBurn")
    if spot is None and interest is None:
        raise ApiError(-1102, "Mandatory parameter 'spotBNBBurn' or 'interestBNBBurn' was not sent.")
    if spot is not None:
        emu.sim.bnb_burn = spot
    return _burn_state(emu)


ROUTES = [
    Route("POST", "/sapi/v1/asset/transfer", transfer, Security.SIGNED),
    Route("GET", "/sapi/v1/asset/transfer", transfer_history, Security.SIGNED),
    Route("GET", "/sapi/v1/bnbBurn", bnb_burn, Security.SIGNED),
    Route("POST", "/sapi/v1/bnbBurn", toggle_bnb_burn, Security.SIGNED),
]
