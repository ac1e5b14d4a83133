"""Fill backfill: every trade of our orders that the ledger missed is fetched from the venue and recorded.

What is read, per symbol and leg:
- a pair still held (or quarantined): from the last fill the ledger recorded on that symbol and leg (the
  pair's opening time when it has none yet), so a pair held for months costs one short read, not its life;
- an order of any pair, closed ones included, whose recorded fills add up to less than the venue said it
  filled (its trades could not be read when it executed, e.g. ``userTrades`` answered 503): from the
  order's creation.
The venue pages the history until it is exhausted (``Venue.fetch_fills``); trades are matched to our
orders by the venue's order id and recorded idempotently by trade id, so a second run records nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from bot.domain import DAY_MS, ZERO, Leg
from bot.execution.orders import record_venue_fill
from bot.ledger.models import Order, Pair
from bot.ledger.recorder import Recorder
from bot.venues.base import Venue

# Binance serves USD-M trades of the last 6 months only: an order older than that cannot be completed.
HISTORY_MS = 180 * DAY_MS

Read = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


def _orders_missing_fills(orders: Iterable[Order], recorded: dict[str, Decimal]) -> list[Order]:
    """Orders the venue filled more of than the ledger holds fills for."""
    return [o for o in orders if o.venue_order_id and o.filled_qty > recorded.get(o.client_order_id, ZERO)]


async def backfill_fills(venue: Venue, ledger: Recorder, now_ms: int, held: Iterable[Pair], read: Read) -> int:
    """Record the trades of our orders the ledger lacks (see the module docstring); the count recorded.

    ``held``: the pairs not closed; ``read`` wraps each venue read (bounded retries)."""
    horizon = now_ms - HISTORY_MS
    orders = await ledger.list_orders(venue=venue.name, since_ms=horizon)
    fills = await ledger.list_fills(venue=venue.name, since_ms=horizon)
    recorded: dict[str, Decimal] = {}
    last_fill: dict[tuple[str, Leg], int] = {}
    for f in fills:
        if f.client_order_id:
            recorded[f.client_order_id] = recorded.get(f.client_order_id, ZERO) + f.quantity
        last_fill[(f.symbol, f.market)] = f.ts_ms  # oldest first: the last one wins
    since: dict[tuple[str, Leg], int] = {}
    for pair in held:
        for leg in (Leg.SPOT, Leg.PERP):
            since[(pair.symbol, leg)] = last_fill.get((pair.symbol, leg), pair.opened_ms)
    for o in _orders_missing_fills(orders, recorded):
        key = (o.symbol, o.leg)
        since[key] = min(since.get(key, o.created_ms), o.created_ms)
    by_venue_id = {(o.symbol, o.leg, o.venue_order_id): o for o in orders if o.venue_order_id}
    new = 0
    for (symbol, leg), start in sorted(since.items()):
        listed = await read(functools.partial(venue.fetch_fills, symbol, leg, since_ms=start))
        for f in listed:
            order = by_venue_id.get((symbol, leg, f.venue_order_id))
            if order is None:  # not ours (the operator's own trade, or another bot's)
                continue
            new += int(await record_venue_fill(ledger, venue.name, f, order.client_order_id, order.pair_id))
    return new
