"""Orphan legs: a perp position or spot coin on the venue that no pair in the ledger explains.

Found after the ledger was lost (a dropped database, a fresh file) or by hand trading. Trading on top of
them would mix the bot's legs with legs it knows nothing of, so reconciliation (at start and at each run)
puts an ``orphan`` control on the symbol, with an alert stating the figures, and the engine enters
nothing there until the operator answers:
- ``fundbot control adopt SYM``: the legs become a pair the engine manages (refused unless they are
  equal within one lot, with the figures and what to do instead);
- ``fundbot control close SYM``: the engine trades the legs to flat (sells the coin, buys back the short);
- or closing them by hand: the block lifts at the first reconciliation that no longer finds them.
Spot coin worth less than the market's minimum notional is dust, not an orphan: it cannot be sold.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.domain import ZERO, Leg, PairState, common_step, legs_equal
from bot.ledger.models import Control, ControlKind, EventKind, Pair
from bot.ledger.recorder import Recorder
from bot.venues.base import PairMarkets, Venue

RECONCILE_SOURCE = "reconcile"  # who sets and lifts the block
ENGINE_SOURCE = "engine"  # who carries out the operator's requests
Read = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
Markets = Callable[[str], Awaitable[PairMarkets]]
Explained = Callable[[str], Awaitable[tuple[Decimal, Decimal]]]  # symbol -> (spot, short) closed pairs left


@dataclass(frozen=True, slots=True)
class OrphanLegs:
    """What the venue holds on one symbol: spot coin and the perp short (negative: a long perp)."""

    symbol: str
    spot: Decimal
    short: Decimal
    lot: Decimal  # the pair's common step
    fee_slack: Decimal  # the spot buy's base-asset fee on the short, as a fraction
    entry_price: Decimal | None = None  # the perp position's
    spot_price: Decimal | None = None
    ledger_spot: Decimal = ZERO  # what closed pairs left, as their fills say (e.g. the dust of round trips)
    ledger_short: Decimal = ZERO

    @property
    def adoptable(self) -> bool:
        return self.short > 0 and legs_equal(self.spot, self.short, self.lot, self.fee_slack)

    def figures(self) -> str:
        return (
            f"venue short {self.short.normalize():f}, spot {self.spot.normalize():f} (ledger explains "
            f"short {self.ledger_short.normalize():f}, spot {self.ledger_spot.normalize():f})"
        )

    def what_to_do(self) -> str:
        if self.adoptable:
            return (
                f"`fundbot control adopt {self.symbol}` to manage them as a pair, or `fundbot control close "
                f"{self.symbol}` (or close them by hand) to trade them to flat"
            )
        why = "a long perp position is no carry pair" if self.short < 0 else "the legs are not equal within one lot"
        return (
            f"{why} ({self.lot.normalize():f}): `fundbot control close {self.symbol}` or close them by hand "
            "(the block lifts at the next reconciliation), or make them equal by hand and adopt them"
        )

    def details(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "venue_short": str(self.short),
            "venue_spot": str(self.spot),
            "ledger_short": str(self.ledger_short),
            "ledger_spot": str(self.ledger_spot),
            "lot": str(self.lot),
            "adoptable": self.adoptable,
        }


class OrphanWatch:
    """Finds orphan legs and keeps the ``orphan`` controls equal to what the venue shows."""

    def __init__(
        self,
        venue: Venue,
        ledger: Recorder,
        now: Callable[[], int],
        markets: Markets,
        read: Read,
        fee_slack: Decimal,
        explained: Explained,
    ) -> None:
        self.venue = venue
        self.ledger = ledger
        self.now = now
        self.markets = markets
        self.read = read
        self.fee_slack = fee_slack
        self.explained = explained
        self.reserved: dict[str, Decimal] = {}  # asset -> coin the bot keeps for another use (BNB for fees)

    async def venue_legs(self, symbols: list[str]) -> dict[str, OrphanLegs]:
        """The legs the venue holds on ``symbols`` (of no pair held) beyond what the ledger explains (the
        residue closed pairs left) and beyond dust; symbols with nothing unexplained are absent."""
        if not symbols:
            return {}
        positions = await self.read(lambda: self.venue.fetch_positions(symbols))
        balances = await self.read(self.venue.fetch_balances)
        out: dict[str, OrphanLegs] = {}
        for symbol in symbols:
            m = await self.markets(symbol)
            pos = positions.get(symbol)
            short = -pos.qty if pos is not None else ZERO
            spot = sum((b.total for b in balances if b.wallet == "spot" and b.asset == m.base), ZERO)
            price = pos.mark_price if pos is not None else None
            if spot >= m.spot.min_qty and spot > 0 and price is None:
                book = await self.read(functools.partial(self.venue.fetch_order_book, symbol, Leg.SPOT, 5))
                price = book.mid if book.bids and book.asks else None
            ledger_spot, ledger_short = await self.explained(symbol)
            extra = spot - ledger_spot - self.reserved.get(m.base, ZERO)
            dust = extra < m.spot.min_qty or (price is not None and extra * price < m.spot.min_notional)
            explained_short = short == 0 or abs(short - ledger_short) < m.perp.step_size / 2
            if explained_short and dust:
                continue
            lot = common_step(m.spot.step_size, m.perp.step_size)
            entry = pos.entry_price if pos is not None else None
            out[symbol] = OrphanLegs(symbol, spot, short, lot, self.fee_slack, entry, price, ledger_spot, ledger_short)
        return out

    async def review(self, loose: list[str]) -> list[OrphanLegs]:
        """Block the ``loose`` symbols (no pair in the ledger) whose legs the venue holds, alert on new or
        changed figures, and lift the blocks the venue no longer justifies. Returns the newly alerted."""
        found = await self.venue_legs(loose)
        blocks = {c.symbol: c for c in await self.ledger.controls() if c.kind is ControlKind.ORPHAN}
        now = self.now()
        alerted: list[OrphanLegs] = []
        for symbol, legs in sorted(found.items()):
            current = blocks.get(symbol)
            reason = f"{legs.figures()}; {legs.what_to_do()}"
            if current is not None and current.reason == reason:
                continue
            if current is not None:
                await self.ledger.clear_control(
                    ControlKind.ORPHAN, now_ms=now, source=RECONCILE_SOURCE, symbol=symbol, note="figures changed"
                )
            control, _ = await self.ledger.set_control(
                ControlKind.ORPHAN, now_ms=now, source=RECONCILE_SOURCE, symbol=symbol, value=legs.short, reason=reason
            )
            await self.ledger.add_event(
                EventKind.ALERT,
                f"{symbol}: the venue holds legs no pair in the ledger explains: {legs.figures()}; entries on "
                f"{symbol} are blocked: {legs.what_to_do()}",
                ts_ms=now,
                symbol=symbol,
                details={"alert": "orphan_position", "control_id": control.id, **legs.details()},
            )
            alerted.append(legs)
        for symbol in sorted(set(blocks) - set(found)):
            if symbol in loose:
                await self.lift(symbol, "the venue no longer shows legs no pair explains")
        return alerted

    async def lift(self, symbol: str, note: str) -> None:
        await self.ledger.clear_control(
            ControlKind.ORPHAN, now_ms=self.now(), source=RECONCILE_SOURCE, symbol=symbol, note=note
        )

    async def adopt(self, symbol: str, legs: OrphanLegs, source: str, *, closing: bool = False) -> Pair:
        """A pair made of the venue's legs, which stay its base (``adopted_*``); lifts the block."""
        now = self.now()
        basis = None
        if legs.entry_price and legs.spot_price:
            basis = (legs.entry_price - legs.spot_price) / legs.spot_price
        pair = await self.ledger.upsert_pair(
            venue=self.venue.name,
            symbol=symbol,
            now_ms=now,
            state=PairState.CLOSING if closing else PairState.OPEN,
            target_qty=ZERO if closing else max(legs.short, ZERO),
            spot_qty=legs.spot,
            perp_qty=legs.short,
            entry_spot_price=legs.spot_price,
            entry_perp_price=legs.entry_price,
            entry_basis=basis,
            note=f"adopted from the venue's legs ({source}): {legs.figures()}",
            adopted_spot_qty=legs.spot,
            adopted_perp_qty=legs.short,
        )
        await self.lift(symbol, f"{'closing' if closing else 'adopted as'} pair #{pair.id}")
        return pair

    async def refusal(self, request: Control, message: str, details: dict[str, Any]) -> None:
        """The request cannot be carried out: done with the reason, and an alert saying what to do."""
        now = self.now()
        await self.ledger.finish_request(request.id, now_ms=now, source=ENGINE_SOURCE, note=f"refused: {message}")
        await self.ledger.add_event(
            EventKind.ALERT,
            f"{request.symbol}: {request.kind.value} refused: {message}",
            ts_ms=now,
            symbol=request.symbol,
            details={"alert": "orphan_request_refused", "control_id": request.id, **details},
        )

    async def answer(self, request: Control, close_to_flat: Callable[[str], Awaitable[Any]]) -> str:
        """Carry out an ``adopt`` / ``close_orphan`` request against the venue's legs as read now (they
        may have changed since the block was set); the note the request is finished with."""
        symbol, now = request.symbol, self.now()
        held = await self.ledger.active_pair(self.venue.name, symbol)
        if held is not None:
            note = f"pair #{held.id} already holds {symbol}: nothing to {request.kind.value}"
            await self.ledger.finish_request(request.id, now_ms=now, source=ENGINE_SOURCE, note=note)
            return note
        legs = (await self.venue_legs([symbol])).get(symbol)
        if legs is None:
            note = f"the venue holds nothing on {symbol} beyond dust: nothing to do"
            await self.lift(symbol, note)
            await self.ledger.finish_request(request.id, now_ms=now, source=ENGINE_SOURCE, note=note)
            return note
        if request.kind is ControlKind.ADOPT:
            if not legs.adoptable:
                message = f"{legs.figures()}: {legs.what_to_do()}"
                await self.refusal(request, message, legs.details())
                return f"refused: {message}"
            pair = await self.adopt(symbol, legs, request.source)
            note = f"pair #{pair.id} made of the venue's legs: {legs.figures()}"
        else:
            if legs.short < 0:
                message = f"{legs.figures()}: a long perp position is closed by hand (the bot only shorts)"
                await self.refusal(request, message, legs.details())
                return f"refused: {message}"
            pair = await self.adopt(symbol, legs, request.source, closing=True)
            await close_to_flat(symbol)
            after = await self.ledger.get_pair(pair.id)
            if after is not None and after.state is PairState.CLOSED:
                note = f"pair #{pair.id} made of the venue's legs ({legs.figures()}) traded to flat"
            else:
                state = after.state.value if after is not None else "gone"
                note = (
                    f"pair #{pair.id} made of the venue's legs is {state}, not flat yet: "
                    f"`fundbot control exit {symbol}` tries again"
                )
        await self.ledger.finish_request(request.id, now_ms=self.now(), source=ENGINE_SOURCE, note=note)
        return note
