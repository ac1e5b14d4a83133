"""Maker-first legs (``execution.style = maker``): both legs of an action worked as post-only limit orders.

Each leg rests one post-only order (LIMIT_MAKER on spot, GTX on the perp) one tick inside the touch (at
the touch when the spread is one tick), re-priced when the book moves away from it by
``maker_reprice_bps``. The hedge is kept at every
moment: a leg's resting quantity never exceeds what would put its fills more than the hedge tolerance
(``maker_hedge_tolerance`` of the action, at least one minimum order) ahead of the other leg's fills,
so the second leg follows the first one's fills (a partial spot fill lets the perp rest its quantity,
and the reverse). When the leading leg is a whole tolerance ahead (it may rest nothing more), the
lagging leg takes the difference at market (``-f<n>``): a price trending one way fills only one side's
resting orders, and waiting for it to turn would leave the lead stuck. After ``maker_max_reprices``
re-prices of a leg or ``maker_timeout_s`` the resting orders are canceled and the executor sends the
rest at market (``-k1``), then repairs the hedge as for any action.

Every order has its write-ahead intent and a deterministic id ``fb-<pair>-<seq>-<s|p>-m<n>`` (n counts the
leg's maker orders); a re-price cancels under its own cancel intent (``...-m<n>.x``) and reads the order
back before the next one is placed, so no two orders of a leg ever rest at once. A crash leaves intents
that reconciliation settles like any other: resting orders are canceled, their fills recorded.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.config import ExecutionConfig
from bot.domain import ZERO, Leg, MarketFilters, Side, ceil_to_step, floor_to_step
from bot.execution.ids import order_id
from bot.execution.orders import TERMINAL, LegResult, Now, OrderRunner, Sleep
from bot.execution.plan import LegOrder, PairFilters, min_sendable_qty, sendable
from bot.venues.base import OrderBook, Venue
from bot.venues.errors import ErrorClass

STEP = "m"  # the id step letter of maker orders
FOLLOW = "f"  # ... and of a lagging leg's market order that follows the leading leg's fills


@dataclass
class WorkedLeg:
    """One leg of the action while it is worked: its whole order, the pieces done, the order resting."""

    order: LegOrder
    filters: MarketFilters
    hedge_factor: Decimal  # hedge quantity per unit executed (a spot buy pays its fee in the coin)
    pieces: list[LegResult] = field(default_factory=list)  # finished maker orders (with a known state)
    refused: list[LegResult] = field(default_factory=list)  # post-only refusals (the book moved)
    live: LegResult | None = None
    placed: int = 0
    reprices: int = 0  # replacements of the resting order and post-only refusals
    exhausted: bool = False
    followed: int = 0  # market orders that followed the other leg's fills

    def executed(self) -> Decimal:
        done = sum((p.state.filled for p in self.pieces if p.state is not None), ZERO)
        return done + (self.live.state.filled if self.live is not None and self.live.state is not None else ZERO)

    def hedge(self) -> Decimal:
        return self.executed() * self.hedge_factor

    def remaining(self) -> Decimal:
        return max(self.order.qty - self.executed(), ZERO)


@dataclass
class MakerOutcome:
    """What the maker phase did: its finished orders, what is left for the market, and whether an order's
    fate is unknown (then the action stops for reconciliation, as for a market order)."""

    legs: list[LegResult]
    rest: list[LegOrder]
    unknown: bool = False
    unknown_leg: LegResult | None = None  # the order whose fate is open (a lost answer, a cancel unconfirmed)
    refusals: int = 0
    reprices: int = 0
    max_gap: Decimal = ZERO  # the largest difference of the legs' hedge quantities seen while worked


class MakerWorker:
    """Works the two legs of one action as post-only orders (see the module docstring)."""

    def __init__(
        self,
        venue: Venue,
        runner: OrderRunner,
        now: Now,
        config: ExecutionConfig,
        sleep: Sleep,
        read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> None:
        self.venue = venue
        self.runner = runner
        self.now = now
        self.config = config
        self.sleep = sleep
        self.read = read

    async def work(
        self,
        pair_id: int,
        symbol: str,
        seq: int,
        orders: list[LegOrder],
        filters: PairFilters,
        references: dict[Leg, Decimal],
        reason: str,
        client_ids: list[str],
    ) -> MakerOutcome:
        legs = {o.leg: WorkedLeg(o, filters.of(o.leg), self._hedge_factor(o)) for o in orders}
        spot, perp = legs[Leg.SPOT], legs[Leg.PERP]
        price = references[Leg.SPOT]
        goal = perp.order.qty
        floor = max(min_sendable_qty(filters.spot, price), min_sendable_qty(filters.perp, price))
        tolerance = max(goal * self.config.maker_hedge_tolerance, floor)
        deadline = self.now() + int(self.config.maker_timeout_s * 1000)
        outcome = MakerOutcome([], [])
        try:
            while True:
                if not await self._refresh(pair_id, symbol, legs.values()):
                    outcome.unknown = True
                    break
                outcome.max_gap = max(outcome.max_gap, abs(spot.hedge() - perp.hedge()))
                if all(not self._sendable(w, w.remaining(), references[w.order.leg]) for w in legs.values()):
                    break
                if self.now() >= deadline or any(
                    w.exhausted or w.reprices > self.config.maker_max_reprices for w in legs.values()
                ):
                    break
                for lag, lead in self._followers(spot, perp):
                    if lead.hedge() > lag.hedge() and not await self._follow(
                        pair_id, symbol, seq, lag, lead, tolerance, reason, references, client_ids
                    ):
                        outcome.unknown = True
                if outcome.unknown:
                    break
                books = await asyncio.gather(
                    *(self.read(functools.partial(self.venue.fetch_order_book, symbol, leg, 5)) for leg in legs)
                )
                for (leg, w), book in zip(legs.items(), books, strict=True):
                    other = perp if leg is Leg.SPOT else spot
                    ok = await self._quote(
                        pair_id, symbol, seq, w, other, tolerance, floor, book, reason, references, client_ids
                    )
                    if not ok:
                        outcome.unknown = True
                        break
                if outcome.unknown:
                    break
                await self.sleep(self.config.maker_poll_s)
        except Exception:  # a bug or the ledger failing: take the resting orders down before giving up
            await self._cancel_all(pair_id, symbol, legs.values())
            raise
        # (a process that dies here leaves its orders resting: reconciliation cancels them at the restart)
        if not await self._cancel_all(pair_id, symbol, legs.values()):
            outcome.unknown = True
        outcome.max_gap = max(outcome.max_gap, abs(spot.hedge() - perp.hedge()))
        for w in legs.values():
            outcome.legs.extend(w.pieces)
            if w.live is not None:  # its cancel's outcome is unknown: reconciliation settles it
                outcome.legs.append(w.live)
                outcome.unknown_leg = LegResult(
                    w.live.order, w.live.client_id, None, "cancel not confirmed", ErrorClass.UNKNOWN_STATE
                )
            lost = [r for r in w.refused if r.error_class is ErrorClass.UNKNOWN_STATE]
            if lost:
                outcome.unknown_leg = lost[-1]
            outcome.refusals += len(w.refused)
            outcome.reprices += w.reprices
            left = floor_to_step(w.remaining(), w.filters.step_size)
            if left > 0:
                outcome.rest.append(LegOrder(w.order.leg, w.order.side, left, w.order.reduce_only))
        return outcome

    # -- one leg ---------------------------------------------------------------------------------------

    async def _quote(
        self,
        pair_id: int,
        symbol: str,
        seq: int,
        w: WorkedLeg,
        other: WorkedLeg,
        tolerance: Decimal,
        floor: Decimal,
        book: OrderBook,
        reason: str,
        references: dict[Leg, Decimal],
        client_ids: list[str],
    ) -> bool:
        """Bring the leg's resting order to the right price and size; False when an order's fate is unknown."""
        price = self._price(w, book)
        open_qty = self._piece(w, self._allowed(w, other, tolerance), floor)
        if w.live is not None:
            state = w.live.state
            assert state is not None
            behind = price is not None and state.price is not None and self._behind(w, state.price, price)
            if behind and state.price is not None and price is not None:
                behind = abs(price - state.price) >= state.price * self.config.maker_reprice_bps / 10_000
            if not behind and state.remaining * 2 >= open_qty:
                return True  # still at (or through) the touch, and not much smaller than the hedge allows
            if w.reprices >= self.config.maker_max_reprices:
                w.exhausted = True  # no re-price left: the rest goes at market
                return True
            w.reprices += 1
            if not await self._cancel(pair_id, symbol, w):
                return False
            open_qty = self._piece(w, self._allowed(w, other, tolerance), floor)  # fills may have come meanwhile
        if price is None or not self._sendable(w, open_qty, price):
            return True  # nothing the hedge allows yet (the other leg leads by less than a minimum order)
        w.placed += 1
        cid = order_id(pair_id, seq, w.order.leg, STEP, w.placed)
        piece = LegOrder(w.order.leg, w.order.side, open_qty, w.order.reduce_only)
        if not await self.runner.write_intent(
            pair_id, symbol, cid, piece, reason, references[w.order.leg], limit_price=price
        ):
            raise RuntimeError(f"client id {cid} was already used; refusing to resubmit")
        client_ids.append(cid)
        placed = await self.runner.place(pair_id, symbol, cid, piece, price)
        if placed.state is None:
            if placed.error_class is ErrorClass.UNKNOWN_STATE:
                w.refused.append(placed)
                return False
            w.refused.append(placed)  # refused (post-only would cross: the book moved): try again next round
            w.reprices += 1
            return True
        if placed.state.status in TERMINAL:
            w.pieces.append(placed)
        else:
            w.live = placed
        return True

    @staticmethod
    def _behind(w: WorkedLeg, resting: Decimal, quote: Decimal) -> bool:
        """The book moved away from the order (a better bid than our buy, a better ask than our sell): it
        will not fill where it is. A book moving towards it is left alone: that is how it gets filled."""
        return quote > resting if w.order.side is Side.BUY else quote < resting

    async def _follow(
        self,
        pair_id: int,
        symbol: str,
        seq: int,
        lag: WorkedLeg,
        lead: WorkedLeg,
        tolerance: Decimal,
        reason: str,
        references: dict[Leg, Decimal],
        client_ids: list[str],
    ) -> bool:
        """The leading leg is as far ahead as the tolerance lets it rest: the lagging leg takes its share at
        market (its resting order canceled first), so the lead can rest again. False: an outcome unknown."""
        price = references[lag.order.leg]
        if self._allowed(lead, lag, tolerance) > 0 and self._sendable(lead, self._allowed(lead, lag, tolerance), price):
            return True  # the lead can still rest: the lag keeps its chance to fill as maker
        if lag.live is not None and not await self._cancel(pair_id, symbol, lag):
            return False
        qty = floor_to_step(
            min((lead.hedge() - lag.hedge()) / lag.hedge_factor, lag.remaining()), lag.filters.step_size
        )
        if not sendable(lag.filters, qty, price, lag.order.reduce_only):
            return True
        lag.followed += 1
        cid = order_id(pair_id, seq, lag.order.leg, FOLLOW, lag.followed)
        piece = LegOrder(lag.order.leg, lag.order.side, qty, lag.order.reduce_only)
        if not await self.runner.write_intent(pair_id, symbol, cid, piece, reason, price):
            raise RuntimeError(f"client id {cid} was already used; refusing to resubmit")
        client_ids.append(cid)
        done = await self.runner.run(pair_id, symbol, cid, piece)
        if done.state is None:
            lag.refused.append(done)
            return done.error_class is not ErrorClass.UNKNOWN_STATE
        lag.pieces.append(done)
        return True

    def _followers(self, spot: WorkedLeg, perp: WorkedLeg) -> tuple[tuple[WorkedLeg, WorkedLeg], ...]:
        """(lagging, leading) legs where the lagging one may take its difference at market: with
        ``maker_follow = spot`` only the spot leg, whose taker fee is its maker fee at the regular tier; a
        perp leg behind keeps resting (its maker fee is well under its taker fee) until it fills or times out."""
        if self.config.maker_follow == "spot":
            return ((spot, perp),)
        return ((spot, perp), (perp, spot))

    @staticmethod
    def _piece(w: WorkedLeg, open_qty: Decimal, floor: Decimal) -> Decimal:
        """``open_qty``, made smaller when resting it would leave the leg a remainder below ``floor`` (the
        smallest order of either market): the other leg could not follow such a last slice, nor the
        market take it, and the hedge would stay unrepairable. When the remainder cannot be cut into
        pieces of at least ``floor`` the leg rests nothing more and is marked exhausted: the rest of both
        legs goes at market at once."""
        left = floor_to_step(w.remaining(), w.filters.step_size)
        if open_qty <= 0 or left - open_qty >= floor:
            return open_qty
        if open_qty >= left:
            return left
        piece = floor_to_step(left - floor, w.filters.step_size)
        if piece >= floor:
            return min(piece, open_qty)
        w.exhausted = True
        return ZERO

    def _allowed(self, w: WorkedLeg, other: WorkedLeg, tolerance: Decimal) -> Decimal:
        """What the leg may rest now: its remainder, capped so that its fills, if all of it filled, stay
        within ``tolerance`` (hedge units) of the other leg's fills."""
        cap = (other.hedge() + tolerance) / w.hedge_factor - w.executed()
        return max(floor_to_step(min(w.remaining(), cap), w.filters.step_size), ZERO)

    def _price(self, w: WorkedLeg, book: OrderBook) -> Decimal | None:
        """Where the leg rests (``maker_price``), never crossing the other side: ``touch`` at the best price of
        its side, ``inside`` one tick inside it when the spread leaves room, ``mid`` the tick nearest the mid
        on its side (a spread of many ticks: the order improves the touch most, so the least move fills it)."""
        if not book.bids or not book.asks:
            return None
        bid, ask, tick = book.bids[0][0], book.asks[0][0], w.filters.tick_size
        buy = w.order.side is Side.BUY
        style = self.config.maker_price
        if style == "touch":
            return bid if buy else ask
        if style == "mid":
            mid = (bid + ask) / 2
            if buy:
                return max(min(floor_to_step(mid, tick), ask - tick), bid)
            return min(max(ceil_to_step(mid, tick), bid + tick), ask)
        if buy:
            return bid + tick if bid + tick < ask else bid
        return ask - tick if ask - tick > bid else ask

    def _sendable(self, w: WorkedLeg, qty: Decimal, price: Decimal) -> bool:
        return qty > 0 and sendable(w.filters, qty, price, w.order.reduce_only)

    def _hedge_factor(self, order: LegOrder) -> Decimal:
        fee = self.config.spot_fee_in_base
        return 1 - fee if order.leg is Leg.SPOT and order.side is Side.BUY else Decimal(1)

    # -- reads and cancels -----------------------------------------------------------------------------

    async def _refresh(self, pair_id: int, symbol: str, legs: Any) -> bool:
        """Read each resting order; a finished one becomes a piece. False when a read cannot tell."""
        for w in legs:
            if w.live is None or w.live.state is None:
                continue
            try:
                state = await self.runner.lookup(symbol, w.order.leg, w.live.client_id)
            except Exception:  # a failed read is no verdict: keep the last state, read again next round
                continue
            if state is None:
                continue
            if state.status in TERMINAL:
                w.pieces.append(await self.runner.settle(pair_id, w.live.order, state))
                w.live = None
            else:
                w.live = LegResult(w.live.order, w.live.client_id, state)
        return True

    async def _cancel(self, pair_id: int, symbol: str, w: WorkedLeg) -> bool:
        """Cancel the leg's resting order (write-ahead cancel intent) and read it back; False when it may
        still be resting (the cancel's answer and the read-back both failed)."""
        assert w.live is not None and w.live.state is not None
        final = await self.runner.cancel(pair_id, symbol, w.live.state)
        if final.status not in TERMINAL:
            w.live = LegResult(w.live.order, w.live.client_id, final)
            return False
        w.pieces.append(await self.runner.settle(pair_id, w.live.order, final))
        w.live = None
        return True

    async def _cancel_all(self, pair_id: int, symbol: str, legs: Any) -> bool:
        ok = True
        for w in legs:
            if w.live is not None and w.live.state is not None:
                ok = await self._cancel(pair_id, symbol, w) and ok
        return ok
