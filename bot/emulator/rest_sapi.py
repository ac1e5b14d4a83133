"""``/sapi`` endpoints: the universal transfer between the spot and USD-M wallets."""

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


def transfer_history(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    kind = req.require("type").upper()
    start, end = req.int_or_none("startTime"), req.int_or_none("endTime")
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
    rows.sort(key=lambda r: r["timestamp"], reverse=True)
    size = req.int_or_none("size") or 10
    page = max(req.int_or_none("current") or 1, 1)
    return {"total": len(rows), "rows": rows[(page - 1) * size : page * size]}


ROUTES = [
    Route("POST", "/sapi/v1/asset/transfer", transfer, Security.SIGNED),
    Route("GET", "/sapi/v1/asset/transfer", transfer_history, Security.SIGNED),
]
