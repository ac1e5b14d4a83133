"""Order-book sequencing: REST snapshots and WebSocket deltas that agree on update ids (docs/ccxt-binance.md §5.3).

Per (market, symbol) the tracker keeps the last published book and its update id. The stepper calls
``refresh``; when the book changed it bumps the id and returns a ``depthUpdate`` carrying only the
changed levels (quantity "0" removes one), with ``U == u == id`` and, on USD-M, ``pu`` = the previous
id. REST ``snapshot`` returns the last *published* state, so a snapshot at id N is followed by a delta
with ``U == N + 1`` (spot) / ``pu == N`` (USD-M), exactly what ccxt checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.emulator.formats import book_levels, fmt

TRACKED_LEVELS = 1000
FIRST_UPDATE_ID = 1_000


@dataclass(slots=True)
class _Book:
    update_id: int
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> list[list[str]]:
    changes = [[fmt(p), fmt(q)] for p, q in new.items() if old.get(p) != q]
    changes += [[fmt(p), "0"] for p in old if p not in new]
    return changes


class DepthTracker:
    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self._books: dict[tuple[str, str], _Book] = {}

    def _read(self, market: str, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        bids, asks = book_levels(self._sim.order_book(market, symbol, TRACKED_LEVELS))
        return dict(bids), dict(asks)

    def _book(self, market: str, symbol: str) -> _Book:
        key = (market, symbol)
        book = self._books.get(key)
        if book is None:
            bids, asks = self._read(market, symbol)
            book = self._books[key] = _Book(FIRST_UPDATE_ID, bids, asks)
        return book

    def snapshot(self, market: str, symbol: str, limit: int) -> dict[str, Any]:
        book = self._book(market, symbol)
        bids = sorted(book.bids.items(), key=lambda lv: lv[0], reverse=True)[:limit]
        asks = sorted(book.asks.items(), key=lambda lv: lv[0])[:limit]
        return {
            "lastUpdateId": book.update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    def tracked(self) -> list[tuple[str, str]]:
        return list(self._books)

    def refresh(self, market: str, symbol: str, event_ms: int) -> dict[str, Any] | None:
        """Re-read the book; a ``depthUpdate`` event when it changed, else None."""
        book = self._book(market, symbol)
        bids, asks = self._read(market, symbol)
        b, a = _diff(book.bids, bids), _diff(book.asks, asks)
        if not b and not a:
            return None
        previous = book.update_id
        book.update_id += 1
        book.bids, book.asks = bids, asks
        event: dict[str, Any] = {"e": "depthUpdate", "E": event_ms}
        if market == "perp":
            event["T"] = event_ms
        event.update({"s": symbol, "U": book.update_id, "u": book.update_id})
        if market == "perp":
            event["pu"] = previous
        event.update({"b": b, "a": a})
        return event
