"""What the daemon does with the live account's user-data stream (``Venue.watch_user_events``).

- A fill of one of the bot's orders (its client id has an intent or an order in the ledger) is recorded
  at once, under the same natural key (venue, leg, symbol, trade id) the polled fills use, so the
  order follow-up and reconciliation that read it later find it there and write nothing twice. Fills of
  orders the bot did not place (the operator's own trading) are left alone, as polling leaves them.
- A forced close (liquidation or ADL of a short) is what reconciliation would find at its next run: an
  alert, the pair quarantined (its spot leg is no longer hedged), and the venue's closing trade recorded
  against the pair, so the report closes the leg at the venue's price.

Polling stays the fallback: the stream only makes these arrive as they happen.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.domain import PairState
from bot.execution.orders import record_venue_fill
from bot.ledger.models import EventKind
from bot.venues.base import ForcedClose, UserEvent, VenueFill

if TYPE_CHECKING:
    from bot.engine.core import Engine

log = logging.getLogger(__name__)

SOURCE = "user_stream"
_FORCED_WHAT = {"liquidation": "liquidation", "adl": "auto-deleveraging (ADL)"}


class UserStreamHandler:
    """Applies user-stream events to the engine's ledger (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fills_recorded = 0
        self._forced_seen: set[str] = set()

    async def follow(self, events: AsyncIterator[UserEvent]) -> None:
        """Handle every event of ``events``; a failure to handle one is a job error, never the end."""
        async for event in events:
            try:
                await self.handle(event)
            except Exception as exc:
                await self.engine.on_job_error("user_stream", exc)

    async def handle(self, event: UserEvent) -> None:
        if isinstance(event, ForcedClose):
            await self._forced_close(event)
        else:
            await self._fill(event)

    async def _fill(self, fill: VenueFill, pair_id: int | None = None) -> bool:
        """Record one fill; True when it was new. Without ``pair_id`` only the bot's own orders' fills."""
        ledger = self.engine.ledger
        if pair_id is None:
            owned, pair_id = await self._owner(fill.client_order_id)
            if not owned:
                log.debug("user stream: fill %s of an order the bot did not place", fill.venue_trade_id)
                return False
        new = await record_venue_fill(ledger, self.engine.venue.name, fill, fill.client_order_id, pair_id)
        if new:
            self.fills_recorded += 1
            await ledger.add_event(
                EventKind.FILL,
                f"{fill.leg} {fill.side} {fill.qty} {fill.symbol} @ {fill.price} fee {fill.fee} {fill.fee_asset}",
                ts_ms=self.engine.now(),
                pair_id=pair_id,
                symbol=fill.symbol,
                details={
                    "client_order_id": fill.client_order_id,
                    "trade_id": fill.venue_trade_id,
                    "source": SOURCE,
                },
            )
        return new

    async def _owner(self, client_order_id: str | None) -> tuple[bool, int | None]:
        """(the bot placed this order, its pair) from the write-ahead intent or the recorded order."""
        if not client_order_id:
            return False, None
        ledger = self.engine.ledger
        intent = await ledger.get_intent(client_order_id)
        if intent is not None:
            return True, intent.pair_id
        order = await ledger.get_order(client_order_id)
        return (order is not None), (order.pair_id if order is not None else None)

    async def _forced_close(self, event: ForcedClose) -> None:
        eng = self.engine
        first = event.venue_order_id not in self._forced_seen
        self._forced_seen.add(event.venue_order_id)
        async with eng.account_lock:  # never while an action on the pair is half done
            pair = await eng.ledger.active_pair(eng.venue.name, event.symbol)
            if first:
                await self._alert_forced(event, pair.id if pair is not None else None)
                if pair is not None and pair.state is not PairState.QUARANTINED:
                    await eng.ledger.upsert_pair(
                        venue=eng.venue.name, symbol=event.symbol, now_ms=eng.now(), state=PairState.QUARANTINED
                    )
                    reason = f"the venue closed its short ({_FORCED_WHAT[event.kind]}): the spot leg is unhedged"
                    await self._alert(
                        "pair_quarantined", f"{event.symbol} quarantined: {reason}", event.symbol, pair.id, {}
                    )
            if event.fill is not None:
                await self._fill(event.fill, pair.id if pair is not None else None)

    async def _alert_forced(self, event: ForcedClose, pair_id: int | None) -> None:
        price = f" at {event.price.normalize():f}" if event.price is not None else ""
        message = (
            f"{_FORCED_WHAT[event.kind]}: {event.symbol} short of {event.qty.normalize():f} closed by the venue"
            f"{price} (user stream)"
        )
        details = {
            "kind": event.kind,
            "qty": str(event.qty),
            "price": str(event.price) if event.price is not None else None,
            "venue_order_id": event.venue_order_id,
            "client_order_id": event.client_order_id,
            "source": SOURCE,
        }
        await self._alert(event.kind, message, event.symbol, pair_id, details)

    async def _alert(self, kind: str, message: str, symbol: str, pair_id: int | None, details: dict) -> None:
        """Through the operator's alerter (webhook too) when the engine has one, else an alert event."""
        eng = self.engine
        if eng.alerter is not None:
            await eng.alerter.alert(kind, message, symbol=symbol, pair_id=pair_id, details=details or {"kind": kind})
        else:
            await eng.ledger.add_event(
                EventKind.ALERT, message, ts_ms=eng.now(), symbol=symbol, pair_id=pair_id, details=details or None
            )
