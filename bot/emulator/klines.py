"""Kline requests over the simulation's hourly candles (coarser intervals are aggregated)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.domain import HOUR_MS
from bot.emulator import formats
from bot.emulator.auth import ParsedRequest
from bot.emulator.common import interval_hours, limit_param, symbol_param

if TYPE_CHECKING:
    from bot.emulator.app import Emulator


def klines(emu: Emulator, req: ParsedRequest, kind: str, default_limit: int, max_limit: int) -> list[list[Any]]:
    """``kind`` is the sim's candle series: "spot", "perp" or "mark"."""
    symbol = symbol_param(emu, req)
    hours = interval_hours(req)
    limit = limit_param(req, default_limit, max_limit)
    width = hours * HOUR_MS
    now = emu.now_ms()
    end = min(req.int_or_none("endTime") or now, now)
    start = req.int_or_none("startTime")
    from_start = start is not None
    if start is None:
        start = (end // width - limit + 1) * width
    start = (start // width) * width
    rows = emu.sim.klines(kind, symbol, start, end, None)
    buckets: dict[int, list[Any]] = {}
    for row in rows:
        buckets.setdefault(row.open_ms // width * width, []).append(row)
    out = []
    for open_ms in sorted(buckets):
        group = buckets[open_ms]
        volume = sum((r.volume for r in group), Decimal(0))
        out.append(
            formats.kline_row(
                _Row(
                    open_ms,
                    group[0].open,
                    max(r.high for r in group),
                    min(r.low for r in group),
                    group[-1].close,
                    volume,
                    open_ms + width - 1,
                )
            )
        )
    return out[:limit] if from_start else out[-limit:]


class _Row:
    __slots__ = ("close", "close_ms", "high", "low", "open", "open_ms", "volume")

    def __init__(self, open_ms: int, o: Decimal, h: Decimal, lo: Decimal, c: Decimal, v: Decimal, close_ms: int):
        self.open_ms, self.open, self.high, self.low, self.close, self.volume, self.close_ms = (
            open_ms,
            o,
            h,
            lo,
            c,
            v,
            close_ms,
        )
