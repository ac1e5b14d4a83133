"""Spot fees paid in BNB: a small BNB balance kept topped up within a band, and the BNB spent priced.

With ``FUNDBOT_TREASURY__BNB_FEES`` the account pays its spot fees in BNB (``spotBNBBurn``, at Binance's
25% discount) instead of in the coin bought, so spot buys need no gross-up and the legs match exactly.
That only holds while the wallet has BNB: when the BNB kept for fees is worth less than ``bnb_low_usdt`` a
market buy on BNB/USDT brings it back to ``bnb_target_usdt``, under a write-ahead intent with a
deterministic client id (``fb-bnb-<n>-s``) and a ``bnb_topup`` decision, like every other order. The BNB
kept for fees is the wallet's BNB less the spot leg of a BNB/USDT pair the bot holds.

The ledger values each BNB fee at BNB's USDT price at the trade's time: after trades whose fee was paid
in BNB, a ``prices`` event records the BNB/USDT mid of that instant (``fundbot report`` and the
attribution read it, as they read every observed price).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from bot.config import TreasuryConfig
from bot.domain import ZERO, Leg, PairState, Side, ceil_to_step
from bot.execution.executor import Executor
from bot.execution.ids import order_id
from bot.execution.plan import LegOrder, min_sendable_qty, sendable
from bot.ledger.models import EventKind, IntentKind

log = logging.getLogger(__name__)

BNB = "BNB"
BNB_SYMBOL = "BNB/USDT"
RULE = "bnb_topup"
TOPUP_KEY = "bnb"  # the pair part of a top-up's client id: fb-bnb-<n>-s


class BnbKeeper:
    """Keeps the BNB that pays spot fees within the band and prices the BNB fees paid."""

    def __init__(self, executor: Executor, config: TreasuryConfig) -> None:
        self.executor = executor
        self.config = config
        self.venue = executor.venue
        self.ledger = executor.ledger
        self._priced_fill_id = 0  # fills up to this ledger id have had their BNB fee priced
        self._priced_ms: int | None = None  # ... and none of them is newer than this

    @property
    def enabled(self) -> bool:
        return self.config.bnb_fees

    async def fee_bnb(self) -> Decimal:
        """The wallet's BNB less the spot leg of a held BNB/USDT pair: what pays fees."""
        total = sum((b.total for b in await self.venue.fetch_balances() if b.wallet == "spot" and b.asset == BNB), ZERO)
        pair = await self.ledger.active_pair(self.venue.name, BNB_SYMBOL)
        held = pair.spot_qty if pair is not None and pair.state is not PairState.CLOSED else ZERO
        return max(total - held, ZERO)

    async def _unsettled(self) -> bool:
        return any(
            i.payload.get("reason") == RULE
            for i in await self.ledger.open_intents([IntentKind.ORDER, IntentKind.CANCEL])
        )

    async def _next_n(self) -> int:
        used = [
            i.client_id for i in await self.ledger.list_intents([IntentKind.ORDER]) if i.client_id.startswith("fb-bnb-")
        ]
        return len(used) + 1

    async def top_up(self, upcoming_usdt: Decimal = ZERO) -> Decimal:
        """Buy BNB when the fee BNB is worth less than the band's low plus ``upcoming_usdt`` (the fees the
        trades about to be sent will pay), up to the target plus that; returns the BNB bought (0: none)."""
        if not self.enabled:
            return ZERO
        markets = await self.executor.markets(BNB_SYMBOL)
        book = await self.venue.fetch_order_book(BNB_SYMBOL, Leg.SPOT, 5)
        if not book.bids or not book.asks:
            return ZERO
        mid, ask = book.mid, book.asks[0][0]
        have = await self.fee_bnb()
        value = have * mid
        low, target = self.config.bnb_low_usdt + upcoming_usdt, self.config.bnb_target_usdt + upcoming_usdt
        if value >= low or await self._unsettled():
            return ZERO
        spot = markets.spot
        qty = max(ceil_to_step((target - value) / ask, spot.step_size), min_sendable_qty(spot, ask))
        if not sendable(spot, qty, ask):
            raise RuntimeError(f"{BNB_SYMBOL}: a top-up of {qty} BNB is not a valid order on the spot market")
        usdt = sum(
            (b.free for b in await self.venue.fetch_balances() if b.wallet == "spot" and b.asset == "USDT"), ZERO
        )
        now = self.executor.now()
        if usdt < qty * ask * Decimal("1.01"):
            await self.ledger.add_event(
                EventKind.DECISION,
                f"{BNB_SYMBOL}: BNB for fees low ({have.normalize():f} BNB, {value:.2f} USDT) but spot USDT "
                f"({usdt:.2f}) cannot buy {qty.normalize():f}; fees fall back to the coin traded",
                ts_ms=now,
                symbol=BNB_SYMBOL,
                details={"rule": "bnb_topup_unfunded", "bnb": str(have), "usdt_free": str(usdt)},
            )
            return ZERO
        cid = order_id(TOPUP_KEY, await self._next_n(), Leg.SPOT)
        order = LegOrder(Leg.SPOT, Side.BUY, qty)
        await self.ledger.add_event(
            EventKind.DECISION,
            f"{BNB_SYMBOL}: buying {qty.normalize():f} BNB for spot fees (held {have.normalize():f} BNB, worth "
            f"{value:.2f} USDT, below {low:.2f} USDT; target {target:.2f} USDT"
            + (f", with {upcoming_usdt:.2f} USDT of fees about to be paid)" if upcoming_usdt else ")"),
            ts_ms=now,
            symbol=BNB_SYMBOL,
            details={
                "rule": RULE,
                "action": "buy",
                "qty": str(qty),
                "bnb_before": str(have),
                "value_usdt": str(value),
                "low_usdt": str(low),
                "target_usdt": str(target),
                "upcoming_fees_usdt": str(upcoming_usdt),
                "price": str(mid),
                "client_order_id": cid,
            },
        )
        runner = self.executor.runner
        if not await runner.write_intent(None, BNB_SYMBOL, cid, order, RULE, mid):
            raise RuntimeError(f"client id {cid} was already used; refusing to resubmit")
        result = await runner.run(None, BNB_SYMBOL, cid, order)
        return result.hedge_effect(BNB) if result.ok else ZERO

    async def price_fees(self) -> int:
        """Record BNB/USDT's mid once new fills paid their fee in BNB (the price their fee is valued at,
        stamped at the first such fill's time); returns how many such fills were priced."""
        fills = [
            f
            for f in await self.ledger.list_fills(venue=self.venue.name, since_ms=self._priced_ms)
            if f.id > self._priced_fill_id
        ]
        paid = [f for f in fills if (f.fee_asset or "").upper() == BNB and f.fee]
        if not paid:
            if fills:
                self._priced_fill_id, self._priced_ms = max(f.id for f in fills), max(f.ts_ms for f in fills)
            return 0
        book = await self.venue.fetch_order_book(BNB_SYMBOL, Leg.SPOT, 5)
        if not book.bids or not book.asks:
            log.warning("no BNB/USDT book: %d BNB fees left unpriced until the next read", len(paid))
            return 0
        self._priced_fill_id, self._priced_ms = max(f.id for f in fills), max(f.ts_ms for f in fills)
        spent = sum((f.fee for f in paid), ZERO)
        await self.ledger.add_event(
            EventKind.INFO,
            f"prices: {BNB_SYMBOL} {book.mid.normalize():f} (BNB fees of {len(paid)} fills, {spent.normalize():f} BNB)",
            ts_ms=min(f.ts_ms for f in paid),
            symbol=BNB_SYMBOL,
            details={"prices": {BNB_SYMBOL: str(book.mid)}, "bnb_fees": str(spent), "fills": len(paid)},
        )
        return len(paid)
