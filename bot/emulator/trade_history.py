"""Account trade lists as Binance serves them: ``GET /api/v3/myTrades`` and ``GET /fapi/v1/userTrades``.

The parameter rules are Binance's own, so a client that pages wrongly fails here as it would there:
- ``fromId`` (trades with id >= it, oldest first) cannot be sent with ``startTime``/``endTime`` (-1128);
- spot: ``orderId`` cannot be sent with a time; ``startTime``..``endTime`` at most 24 hours (-1127);
- USD-M: ``startTime``..``endTime`` at most 7 days (-1127); one bound alone means a 7-day window from it
  (or up to it); neither bound (and no ``fromId``/``orderId``) means the last 7 days.
A time filter returns the oldest ``limit`` trades from ``startTime`` when it is given, else the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.emulator.auth import ParsedRequest
from bot.emulator.common import limit_param, symbol_param
from bot.emulator.errors import ApiError
from bot.sim.records import SimTrade

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

HOUR_MS = 3_600_000
SPOT_SPAN_MS = 24 * HOUR_MS
FUTURES_SPAN_MS = 7 * 24 * HOUR_MS


def _bad_combination() -> ApiError:
    return ApiError(-1128, "Combination of optional parameters invalid.")


def _too_long(span_ms: int) -> ApiError:
    return ApiError(-1127, f"More than {span_ms // HOUR_MS} hours between startTime and endTime.")


def select_trades(
    trades: Sequence[SimTrade],
    *,
    start: int | None,
    end: int | None,
    from_id: int | None,
    order_id: int | None,
    limit: int,
) -> list[SimTrade]:
    """The trades a query selects once its parameters were checked (``trades`` oldest first)."""
    rows = [t for t in trades if order_id is None or t.order_id == order_id]
    if from_id is not None:
        return [t for t in rows if t.trade_id >= from_id][:limit]
    rows = [t for t in rows if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)]
    return rows[:limit] if start is not None else rows[-limit:]


def spot_trades(emu: Emulator, req: ParsedRequest, market: str) -> list[SimTrade]:
    """``GET /api/v3/myTrades``."""
    start, end = req.int_or_none("startTime"), req.int_or_none("endTime")
    from_id, order_id = req.int_or_none("fromId"), req.int_or_none("orderId")
    timed = start is not None or end is not None
    if timed and (from_id is not None or order_id is not None):
        raise _bad_combination()
    if start is not None and end is not None and end - start > SPOT_SPAN_MS:
        raise _too_long(SPOT_SPAN_MS)
    symbol = symbol_param(emu, req)
    rows = emu.sim.my_trades(market, symbol, limit=None)
    limit = limit_param(req, 500, 1000)
    return select_trades(rows, start=start, end=end, from_id=from_id, order_id=order_id, limit=limit)


def futures_trades(emu: Emulator, req: ParsedRequest, market: str) -> list[SimTrade]:
    """``GET /fapi/v1/userTrades``."""
    start, end = req.int_or_none("startTime"), req.int_or_none("endTime")
    from_id, order_id = req.int_or_none("fromId"), req.int_or_none("orderId")
    if from_id is not None and (start is not None or end is not None):
        raise _bad_combination()
    if start is not None and end is not None and end - start > FUTURES_SPAN_MS:
        raise _too_long(FUTURES_SPAN_MS)
    if from_id is None and order_id is None:
        if start is None and end is None:
            end = emu.now_ms()
        if start is None:
            assert end is not None  # set just above when both were missing
            start = end - FUTURES_SPAN_MS
        elif end is None:
            end = start + FUTURES_SPAN_MS
    symbol = symbol_param(emu, req)
    rows = emu.sim.my_trades(market, symbol, limit=None)
    limit = limit_param(req, 500, 1000)
    return select_trades(rows, start=start, end=end, from_id=from_id, order_id=order_id, limit=limit)
