"""One order on one leg, write-ahead: intent committed, then sent, followed up, and every outcome recorded.

``OrderRunner.run`` never resubmits blindly: when the venue's answer is lost (timeout, 5xx, a body that
does not parse) the order is looked up by its client id, with backoff, and is ``failed`` only when the
venue refused it or repeatedly says it has no such order; when no lookup answers, the intent stays
``unknown`` for reconciliation. An order still open after the follow-up window is canceled under its own
cancel intent and read back. Orders, fills and events go to the ledger as they become known.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.config import ExecutionConfig
from bot.domain import ZERO, Leg, Side
from bot.execution.ids import cancel_id
from bot.execution.plan import LegOrder
from bot.ledger.models import EventKind, IntentKind, IntentStatus
from bot.ledger.recorder import Recorder
from bot.ledger.repository import EventRecord, IntentRecord
from bot.venues.base import OrderRequest, OrderState, Venue, VenueFill
from bot.venues.errors import Backoff, ErrorClass, classify, retry_call, safe_error_text

TERMINAL = frozenset({"closed", "canceled", "expired", "rejected"})
LOST_ANSWER_LOOKUPS = 4  # reads by client id of an order whose answer was lost (backoff between them)
ABSENT_CONFIRMATIONS = 2  # "no such order" answers, a backoff apart, that prove it was never placed
Sleep = Callable[[float], Awaitable[object]]
Now = Callable[[], int]


def venue_fill_arguments(venue: str, f: VenueFill, client_order_id: str | None, pair_id: int | None) -> dict[str, Any]:
    """``Recorder.record_fill``'s keyword arguments for one venue fill (``record_venue_fill``, the outcomes)."""
    return {
        "venue": venue,
        "market": f.leg,
        "symbol": f.symbol,
        "venue_trade_id": f.venue_trade_id,
        "side": f.side,
        "quantity": f.qty,
        "price": f.price,
        "fee": f.fee,
        "ts_ms": f.ts_ms,
        "fee_asset": f.fee_asset,
        "is_maker": f.is_maker,
        "client_order_id": client_order_id,
        "venue_order_id": f.venue_order_id,
        "pair_id": pair_id,
    }


async def record_venue_fill(
    ledger: Recorder, venue: str, f: VenueFill, client_order_id: str | None, pair_id: int | None
) -> bool:
    """Write one venue fill to the ledger (idempotent on its trade id); True when it was new."""
    return await ledger.record_fill(**venue_fill_arguments(venue, f, client_order_id, pair_id))


@dataclass(frozen=True, slots=True)
class LegResult:
    """What one order did: its final known state, or the error that stopped it."""

    order: LegOrder
    client_id: str
    state: OrderState | None = None
    error: str | None = None
    error_class: ErrorClass | None = None
    fills: tuple[VenueFill, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        """The failure may go away if tried again with a fresh id (transient, and surely not placed)."""
        return self.error_class is not None and self.error_class.retryable

    def hedge_effect(self, base_asset: str) -> Decimal:
        """Change of the leg's hedge quantity: spot holding (net of base-asset fees) or short size."""
        filled = self._filled_net(base_asset)
        sign = 1 if (self.order.leg is Leg.SPOT) == (self.order.side is Side.BUY) else -1
        return filled * sign

    def _filled_net(self, base_asset: str) -> Decimal:
        if self.state is None:
            return ZERO
        if not self.fills:
            return self.state.filled
        qty = sum((f.qty for f in self.fills), ZERO)
        if self.order.leg is Leg.SPOT and self.order.side is Side.BUY:
            qty -= sum((f.fee for f in self.fills if f.fee_asset == base_asset), ZERO)
        return qty


def _payload(
    symbol: str, order: LegOrder, reason: str, reference_price: Decimal, limit_price: Decimal | None = None
) -> dict[str, object]:
    """An order intent's payload: what reconciliation needs to look the order up and explain it."""
    payload: dict[str, object] = {
        "symbol": symbol,
        "leg": order.leg.value,
        "side": order.side.value,
        "qty": str(order.qty),
        "reduce_only": order.reduce_only,
        "type": "market" if limit_price is None else "limit",
        "reason": reason,
        "reference_price": str(reference_price),
    }
    if limit_price is not None:
        payload.update(price=str(limit_price), post_only=True)
    return payload


class OrderRunner:
    """Sends one leg order under its write-ahead intent and follows it to a final state."""

    def __init__(
        self, venue: Venue, ledger: Recorder, now: Now, config: ExecutionConfig, sleep: Sleep, rng: random.Random
    ) -> None:
        self.venue = venue
        self.ledger = ledger
        self.now = now
        self.config = config
        self.sleep = sleep
        self.rng = rng
        self.on_send: Callable[[str], object] | None = None  # told the symbol of every order about to be sent

    async def write_intent(
        self,
        pair_id: int | None,
        symbol: str,
        client_id: str,
        order: LegOrder,
        reason: str,
        reference_price: Decimal,
        limit_price: Decimal | None = None,
    ) -> bool:
        """Commit the intent; False when the id was already used (then the caller picks a fresh one).
        ``reference_price`` is the leg's book mid when the action was planned (slippage is measured from it);
        ``limit_price`` makes it a post-only limit order (maker style) at that price."""
        payload = _payload(symbol, order, reason, reference_price, limit_price)
        intent = await self.ledger.create_intent(
            IntentKind.ORDER, client_id, now_ms=self.now(), pair_id=pair_id, payload=payload
        )
        return intent.status is IntentStatus.PENDING and intent.attempts == 0

    async def write_intents(
        self,
        pair_id: int | None,
        symbol: str,
        orders: list[tuple[str, LegOrder, Decimal]],
        reason: str,
        events: Sequence[EventRecord] = (),
    ) -> list[bool]:
        """Commit the intents of market orders (client id, order, reference price) about to be sent
        together, already marked sent, with ``events``, in one transaction (``Recorder.write_ahead``); send
        each with ``run(..., marked_sent=True)``. One flag per order: False when its id was already used."""
        now = self.now()
        records = [
            IntentRecord(IntentKind.ORDER, cid, now, _payload(symbol, order, reason, ref), pair_id)
            for cid, order, ref in orders
        ]
        return [new for _, new in await self.ledger.write_ahead(records, events)]

    async def run(
        self, pair_id: int | None, symbol: str, client_id: str, order: LegOrder, *, marked_sent: bool = False
    ) -> LegResult:
        """Send (intent already committed; ``marked_sent``: committed as sent by ``write_intents``), follow
        up, record. Never raises for venue errors."""
        req = OrderRequest(
            client_order_id=client_id,
            symbol=symbol,
            leg=order.leg,
            side=order.side,
            type="market",
            qty=order.qty,
            reduce_only=order.reduce_only,
        )
        sent = await self._submit(pair_id, symbol, client_id, order, req, marked_sent)
        if isinstance(sent, LegResult):
            return sent
        state = await self._follow_up(pair_id, symbol, sent)
        return await self.settle(pair_id, order, state)

    async def place(self, pair_id: int, symbol: str, client_id: str, order: LegOrder, price: Decimal) -> LegResult:
        """Send a post-only limit order (intent already committed) and return at once: resting (its intent
        stays sent while it rests), or refused. The maker worker follows, re-prices and cancels it."""
        req = OrderRequest(
            client_order_id=client_id,
            symbol=symbol,
            leg=order.leg,
            side=order.side,
            type="limit",
            qty=order.qty,
            price=price,
            reduce_only=order.reduce_only,
            post_only=True,
        )
        sent = await self._submit(pair_id, symbol, client_id, order, req)
        if isinstance(sent, LegResult):
            return sent
        if sent.status in TERMINAL:
            return await self.settle(pair_id, order, sent)
        return LegResult(order, client_id, sent)

    async def settle(self, pair_id: int | None, order: LegOrder, state: OrderState) -> LegResult:
        """Record an order's state and fills; its intent is done when the order is final, else unknown."""
        status = IntentStatus.DONE if state.status in TERMINAL else IntentStatus.UNKNOWN
        fills = await self.record(pair_id, state, status)
        return LegResult(order, state.client_order_id, state, fills=fills)

    async def _submit(
        self,
        pair_id: int | None,
        symbol: str,
        client_id: str,
        order: LegOrder,
        req: OrderRequest,
        marked_sent: bool = False,
    ) -> OrderState | LegResult:
        """Send ``req``: the venue's answer (or, when it was lost, the order found by its client id), or the
        failed leg (refused, never placed, or of unknown fate: then its intent is left for reconciliation).
        The intent is marked sent (one more attempt) first, unless ``marked_sent`` says it was committed so."""
        if not marked_sent:
            await self.ledger.set_intent_status(client_id, IntentStatus.SENT, now_ms=self.now(), count_attempt=True)
        if self.on_send is not None:
            self.on_send(symbol)
        try:
            state = await self.venue.create_order(req)
        except Exception as exc:
            kind = classify(exc, mutating=True)
            text = safe_error_text(exc)
            if kind is not ErrorClass.UNKNOWN_STATE:  # the venue's explicit refusal
                return await self._failed(pair_id, symbol, client_id, order, text, kind)
            found, why = await self.look_up_lost(symbol, order.leg, client_id)
            if found is None and why is not None:  # fate unknown: leave the intent for reconciliation
                text = f"{text}; {why}"
                return await self._failed(pair_id, symbol, client_id, order, text, kind, IntentStatus.UNKNOWN)
            if found is None:  # never placed: safe to decide anew (with a fresh id)
                return await self._failed(
                    pair_id, symbol, client_id, order, f"not placed: {text}", ErrorClass.RETRYABLE
                )
            state = found
        return state

    async def look_up_lost(self, symbol: str, leg: Leg, client_id: str) -> tuple[OrderState | None, str | None]:
        """Find an order whose answer was lost: (its state, None), (None, None) when the venue said twice,
        a backoff apart, that it has no such order (a request may still be in flight at the first read),
        or (None, why) when the reads did not settle it within ``LOST_ANSWER_LOOKUPS``."""
        delays = Backoff(self.config.retry_backoff_s, cap_s=30.0).delays(self.rng, LOST_ANSWER_LOOKUPS - 1)
        absent, why = 0, "not looked up"
        for attempt in range(LOST_ANSWER_LOOKUPS):
            if attempt:
                await self.sleep(next(delays))
            try:
                found = await self.venue.fetch_order(symbol, leg, client_id)
            except Exception as exc:
                why = f"lookup failed: {safe_error_text(exc)}"
                if not classify(exc).retryable:
                    break
                continue
            if found is not None:
                return found, None
            absent += 1
            if absent >= ABSENT_CONFIRMATIONS:
                return None, None
            why = "the venue did not know it yet"
        return None, why

    async def lookup(self, symbol: str, leg: Leg, client_id: str) -> OrderState | None:
        """The venue's view of ``client_id`` (reads retried on transient errors); None if never placed."""
        return await retry_call(
            lambda: self.venue.fetch_order(symbol, leg, client_id),
            rng=self.rng,
            attempts=3,
            base_s=self.config.retry_backoff_s,
            sleep=self.sleep,
        )

    async def _failed(
        self,
        pair_id: int | None,
        symbol: str,
        client_id: str,
        order: LegOrder,
        text: str,
        kind: ErrorClass,
        status: IntentStatus = IntentStatus.FAILED,
    ) -> LegResult:
        await self.ledger.set_intent_status(client_id, status, now_ms=self.now(), error=text)
        await self.ledger.add_event(
            EventKind.ORDER,
            f"{order.leg} {order.side} {order.qty} {symbol} failed ({kind}): {text}",
            ts_ms=self.now(),
            pair_id=pair_id,
            symbol=symbol,
            details={"client_order_id": client_id, "error_class": kind.value, "error": text},
        )
        return LegResult(order, client_id, None, text, kind)

    async def _follow_up(self, pair_id: int | None, symbol: str, state: OrderState) -> OrderState:
        """Poll an open order by client id for a bounded time, then cancel it and read it back."""
        polls = max(1, math.ceil(self.config.order_timeout_s / self.config.poll_interval_s))
        deadline = self.now() + int(self.config.order_timeout_s * 1000)
        while state.status not in TERMINAL and polls > 0 and self.now() < deadline:
            polls -= 1
            await self.sleep(self.config.poll_interval_s)
            try:
                state = await self.lookup(symbol, state.leg, state.client_order_id) or state
            except Exception:  # a failed read is not a verdict: keep polling until the bound
                continue
        if state.status in TERMINAL:
            return state
        return await self.cancel(pair_id, symbol, state)

    async def cancel(self, pair_id: int | None, symbol: str, state: OrderState) -> OrderState:
        """Cancel an open order under its own write-ahead cancel intent, then read it back."""
        cid = cancel_id(state.client_order_id)
        await self.ledger.create_intent(
            IntentKind.CANCEL,
            cid,
            now_ms=self.now(),
            pair_id=pair_id,
            payload={"symbol": symbol, "leg": state.leg.value, "client_order_id": state.client_order_id},
        )
        await self.ledger.set_intent_status(cid, IntentStatus.SENT, now_ms=self.now(), count_attempt=True)
        try:
            await self.venue.cancel_order(symbol, state.leg, state.client_order_id)
        except Exception as exc:  # filled meanwhile (not found / rejected) or unknown: read it back below
            await self.ledger.set_intent_status(cid, IntentStatus.SENT, now_ms=self.now(), error=safe_error_text(exc))
        try:
            final = await self.lookup(symbol, state.leg, state.client_order_id) or state
        except Exception:
            final = state
        status = IntentStatus.DONE if final.status in TERMINAL else IntentStatus.UNKNOWN
        await self.ledger.set_intent_status(cid, status, now_ms=self.now())
        return final

    async def record(
        self, pair_id: int | None, state: OrderState, intent_status: IntentStatus | None = None
    ) -> tuple[VenueFill, ...]:
        """Upsert the order, store its fills (idempotent), log an order event and one per new fill, and
        (``intent_status``) move the order's intent: one ledger transaction once the fills are known."""
        now = self.now()
        order = {
            "client_order_id": state.client_order_id,
            "venue": self.venue.name,
            "symbol": state.symbol,
            "leg": state.leg,
            "side": state.side,
            "type": state.type,
            "quantity": state.qty,
            "now_ms": max(now, state.ts_ms),
            "status": state.status,
            "price": state.price,
            "filled_qty": state.filled,
            "avg_price": state.average,
            "venue_order_id": state.venue_order_id,
            "pair_id": pair_id,
            "reduce_only": state.reduce_only,
        }
        fills = await self._fills_of(state)
        order_event = EventRecord(
            EventKind.ORDER,
            f"{state.leg} {state.side} {state.filled}/{state.qty} {state.symbol} {state.status}",
            ts_ms=now,
            pair_id=pair_id,
            symbol=state.symbol,
            details={
                "client_order_id": state.client_order_id,
                "venue_order_id": state.venue_order_id,
                "status": state.status,
                "filled": state.filled,
                "average": state.average,
                "reduce_only": state.reduce_only,
            },
        )
        fill_rows = [
            (
                venue_fill_arguments(self.venue.name, f, f.client_order_id or state.client_order_id, pair_id),
                EventRecord(
                    EventKind.FILL,
                    f"{f.leg} {f.side} {f.qty} {f.symbol} @ {f.price} fee {f.fee} {f.fee_asset}",
                    ts_ms=now,
                    pair_id=pair_id,
                    symbol=f.symbol,
                    details={"client_order_id": state.client_order_id, "trade_id": f.venue_trade_id},
                ),
            )
            for f in fills
        ]
        intent = (state.client_order_id, intent_status, self.now()) if intent_status is not None else None
        await self.ledger.record_order_outcome(order, [order_event], fill_rows, intent)
        return fills

    async def _fills_of(self, state: OrderState) -> tuple[VenueFill, ...]:
        """The order's trades: from the order answer, or from the venue's fills when it left some out."""
        fills = tuple(state.fills)
        if sum((f.qty for f in fills), ZERO) >= state.filled:
            return fills
        since = min((f.ts_ms for f in fills), default=state.ts_ms) - 60_000
        try:
            listed = await retry_call(
                lambda: self.venue.fetch_fills(state.symbol, state.leg, since_ms=since),
                rng=self.rng,
                attempts=3,
                base_s=self.config.retry_backoff_s,
                sleep=self.sleep,
            )
        except Exception:  # reconciliation backfills fills later
            return fills
        mine = tuple(f for f in listed if f.venue_order_id == state.venue_order_id)
        return mine if sum((f.qty for f in mine), ZERO) >= sum((f.qty for f in fills), ZERO) else fills
