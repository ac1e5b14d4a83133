"""Spot dust: the coin the bot's own fills left behind once a pair closed, sold once it adds up.

Every round trip leaves a fraction of a lot: buys are grossed up for the fee Binance takes in the coin,
and the closing sale is floored to the lot. That remainder is in the ledger as the spot leg its closed
pairs' fills explain (``Reconciler.explained_legs``), so the bot knows exactly how much of the wallet's
coin it created. Once that sum passes the spot market's smallest order (lot, minimum quantity, minimum
notional at the bid), it is sold as a market order under a write-ahead intent with a ``dust_sweep``
decision; the sale's fill goes to the newest closed pair, so its explained spot (and the dust) drops by
what was sold and ``fundbot report`` counts it in that symbol's PnL.

Never touched: coin the ledger does not attribute to the bot's fills (the operator's own, anything
beyond the closed pairs' remainder) and the spot leg of a pair still held. A remainder below one
lot stays until more dust joins it. Buying up to a whole lot at close is not done: with the fee taken
in the coin, no small buy lands on a lot boundary, and any buy that does costs more in fees than the
dust is worth.
"""

from __future__ import annotations

from decimal import Decimal

from bot.domain import ZERO, Leg, PairState, Side, floor_to_step
from bot.execution.executor import Executor
from bot.execution.ids import order_id
from bot.execution.plan import LegOrder, sendable
from bot.ledger.models import EventKind, Pair
from bot.reconcile import Reconciler

SWEEP_STEP = "d"  # client id step letter of a dust sale: fb-<pair>-<seq>-s-d1
RULE = "dust_sweep"


class DustSweeper:
    """Sells the bot's own spot dust per symbol (see the module docstring)."""

    def __init__(self, executor: Executor, reconciler: Reconciler) -> None:
        self.executor = executor
        self.reconciler = reconciler
        self.venue = executor.venue
        self.ledger = executor.ledger
        self._dust: dict[str, tuple[tuple[int, ...], Decimal]] = {}  # symbol -> (closed pair ids, dust)

    async def dust(self, symbol: str, closed: list[Pair]) -> Decimal:
        """The spot coin the closed pairs' fills leave in the wallet (cached until a pair closes or a sweep)."""
        ids = tuple(p.id for p in closed)
        cached = self._dust.get(symbol)
        if cached is not None and cached[0] == ids:
            return cached[1]
        total = ZERO
        for pair in closed:
            total += (await self.reconciler.explained_legs(pair))[0]
        self._dust[symbol] = (ids, total)
        return total

    async def sweep(self, symbols: list[str]) -> dict[str, Decimal]:
        """One pass over ``symbols``; returns what was sold per symbol."""
        closed_by_symbol: dict[str, list[Pair]] = {}
        for p in await self.ledger.list_pairs((PairState.CLOSED,), venue=self.venue.name):
            closed_by_symbol.setdefault(p.symbol, []).append(p)
        sold: dict[str, Decimal] = {}
        for symbol in symbols:
            closed = sorted(closed_by_symbol.get(symbol, []), key=lambda p: p.id)
            if closed:
                qty = await self._sweep_symbol(symbol, closed)
                if qty:
                    sold[symbol] = qty
        return sold

    async def _sweep_symbol(self, symbol: str, closed: list[Pair]) -> Decimal:
        dust = await self.dust(symbol, closed)
        markets = await self.executor.markets(symbol)
        spot = markets.spot
        if dust < spot.min_qty:
            return ZERO
        book = await self.venue.fetch_order_book(symbol, Leg.SPOT, 5)
        if not book.bids:
            return ZERO
        price = book.bids[0][0]
        if floor_to_step(dust, spot.step_size) * price < spot.min_notional:
            return ZERO  # not enough yet: wait for more round trips
        held = await self.ledger.active_pair(self.venue.name, symbol)
        held_spot = (await self.reconciler.explained_legs(held))[0] if held is not None else ZERO
        free = sum(
            (b.free for b in await self.venue.fetch_balances() if b.wallet == "spot" and b.asset == markets.base),
            ZERO,
        )
        # only coin the closed pairs' fills created, and never the spot leg of a pair still held
        qty = floor_to_step(min(dust, free - held_spot), spot.step_size)
        if qty <= 0 or not sendable(spot, qty, price):
            return ZERO
        owner = closed[-1]
        seq = await self.executor.next_seq(owner.id)
        cid = order_id(owner.id, seq, Leg.SPOT, SWEEP_STEP, 1)
        order = LegOrder(Leg.SPOT, Side.SELL, qty)
        message = (
            f"{symbol}: selling {qty.normalize():f} {markets.base} of dust the bot's fills left "
            f"({dust.normalize():f} from {len(closed)} closed pairs, worth {(qty * price).normalize():f} USDT)"
        )
        await self.ledger.add_event(
            EventKind.DECISION,
            message,
            ts_ms=self.executor.now(),
            symbol=symbol,
            pair_id=owner.id,
            details={
                "rule": RULE,
                "action": "sweep",
                "qty": str(qty),
                "dust": str(dust),
                "price": str(price),
                "closed_pairs": [p.id for p in closed],
                "client_order_id": cid,
            },
        )
        runner = self.executor.runner
        reference = book.mid if book.asks else price  # slippage is measured from the book's mid, as for pairs
        if not await runner.write_intent(owner.id, symbol, cid, order, RULE, reference):
            raise RuntimeError(f"client id {cid} was already used; refusing to resubmit")
        result = await runner.run(owner.id, symbol, cid, order)
        self._dust.pop(symbol, None)  # the sale's fills change the owner's explained spot
        return -result.hedge_effect(markets.base) if result.ok else ZERO
