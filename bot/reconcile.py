"""Reconciliation: make the ledger agree with the venue, at start and periodically.

1. Unsettled intents (pending / sent / unknown) are resolved by client id: an order the venue does not
   know was never placed (failed: safe to decide anew); an order it knows is recorded with its fills
   (an order still open with no owner is canceled under a cancel intent). Order intents marked
   ``failed`` by the executor are looked up once too: one the venue has after all is recorded and
   corrected to done (a lost answer is never a verdict). A transfer is matched against the venue's
   transfer history when the venue offers one (``fetch_transfers``), else flagged.
2. Fills of our orders that the ledger missed are backfilled (idempotent by trade id).
3. Each active or quarantined pair's legs are recomputed from its recorded fills (spot net of base-asset
   fees, short size) and compared with the venue: perp position and spot balance. Explained differences
   update the pair (a quarantined pair whose venue legs now match and are hedged is released);
   unexplained ones, confirmed by a second fresh read, quarantine it with an alert stating the venue's
   legs as read.

Idempotent: a second run finds nothing open, records no new fill, changes no pair and writes no event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.config import ExecutionConfig
from bot.domain import ZERO, Leg, PairState, Side
from bot.execution.legs import VenueLegs, read_venue_legs
from bot.execution.orders import TERMINAL, OrderRunner, record_venue_fill
from bot.execution.plan import PairFilters
from bot.ledger.models import EventKind, Intent, IntentKind, IntentStatus, Pair, TransferStatus
from bot.ledger.repository import Ledger
from bot.venues.base import OrderState, PairMarkets, Venue
from bot.venues.errors import retry_call

Now = Callable[[], int]
ACTIVE = (PairState.OPENING, PairState.OPEN, PairState.REBALANCING, PairState.CLOSING)
RECONCILED = "reconcile:"  # prefix of an intent's last_error once reconciliation settled it against the venue


@dataclass
class ReconcileReport:
    """What one run changed (empty lists and zero counts when the ledger already agreed)."""

    resolved_intents: list[str] = field(default_factory=list)
    new_fills: int = 0
    updated_pairs: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.resolved_intents or self.new_fills or self.updated_pairs or self.quarantined or self.alerts)


class Reconciler:
    """Compares ledger and venue; see the module docstring."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        now: Now,
        *,
        symbols: list[str] | None = None,
        min_intent_age_ms: int = 0,
        config: ExecutionConfig | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``min_intent_age_ms``: periodic runs leave younger intents to the executor working on them
        (0 at start, when nothing else runs). ``symbols``: also report venue positions with no pair."""
        self.venue = venue
        self.ledger = ledger
        self.now = now
        self.symbols = symbols or []
        self.min_intent_age_ms = min_intent_age_ms
        self.config = config or ExecutionConfig()
        self.sleep = sleep
        self.rng = random.Random(0)
        self.runner = OrderRunner(venue, ledger, now, self.config, sleep, self.rng)
        self._markets: dict[str, PairMarkets] = {}

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        await self._intents(report)
        await self._failed_order_intents(report)
        pairs = await self.ledger.list_pairs((*ACTIVE, PairState.QUARANTINED), venue=self.venue.name)
        # An order intent too young to settle may still execute (its request is within the recvWindow):
        # its pair is checked once the intent is settled, not quarantined for a fill that is on its way.
        in_flight = {i.pair_id for i in await self.ledger.open_intents([IntentKind.ORDER, IntentKind.CANCEL])}
        for pair in pairs:
            await self._backfill(pair, report)
            if pair.id in in_flight:
                continue
            await self._check_pair(pair, report)
        await self._orphans({p.symbol for p in pairs}, report)
        if report.changed:
            await self.ledger.add_event(
                EventKind.RECONCILE,
                f"reconciled: {len(report.resolved_intents)} intents, {report.new_fills} fills, "
                f"{len(report.updated_pairs)} pairs updated, {len(report.quarantined)} quarantined",
                ts_ms=self.now(),
                details={
                    "intents": report.resolved_intents,
                    "new_fills": report.new_fills,
                    "updated": report.updated_pairs,
                    "quarantined": report.quarantined,
                },
            )
        return report

    # -- 1. intents ------------------------------------------------------------------------------------

    async def _intents(self, report: ReconcileReport) -> None:
        cutoff = self.now() - self.min_intent_age_ms
        for intent in await self.ledger.open_intents():
            if self.min_intent_age_ms and intent.updated_ms > cutoff:
                continue
            if intent.kind is IntentKind.ORDER:
                await self._order_intent(intent, report)
            elif intent.kind is IntentKind.CANCEL:
                await self._cancel_intent(intent, report)
            else:
                await self._transfer_intent(intent, report)

    async def _order_intent(self, intent: Intent, report: ReconcileReport) -> None:
        symbol, leg = intent.payload["symbol"], Leg(intent.payload["leg"])
        state = await self._read(lambda: self.venue.fetch_order(symbol, leg, intent.client_id))
        if state is None:
            await self.ledger.set_intent_status(
                intent.client_id, IntentStatus.FAILED, now_ms=self.now(), error="reconcile: the venue never got it"
            )
        else:
            if state.status not in TERMINAL:
                state = await self._cancel_orphan(intent, state)
            await self.runner.record(intent.pair_id, state)
            status = IntentStatus.DONE if state.status in TERMINAL else IntentStatus.UNKNOWN
            await self.ledger.set_intent_status(intent.client_id, status, now_ms=self.now())
        report.resolved_intents.append(intent.client_id)

    async def _failed_order_intents(self, report: ReconcileReport) -> None:
        """Order intents failed by the executor and not yet checked here: the venue may have the order
        (an answer lost, a lookup that raced the order): if so, record it and correct the intent."""
        cutoff = self.now() - self.min_intent_age_ms
        for intent in await self.ledger.list_intents([IntentKind.ORDER], [IntentStatus.FAILED]):
            if (intent.last_error or "").startswith(RECONCILED):
                continue
            if not self.min_intent_age_ms or intent.updated_ms <= cutoff:
                await self._failed_order_intent(intent, report)

    async def _failed_order_intent(self, intent: Intent, report: ReconcileReport) -> None:
        previous = intent.last_error or ""
        symbol, leg = intent.payload["symbol"], Leg(intent.payload["leg"])
        state = await self._read(lambda: self.venue.fetch_order(symbol, leg, intent.client_id))
        if state is None:
            await self.ledger.set_intent_status(
                intent.client_id,
                IntentStatus.FAILED,
                now_ms=self.now(),
                error=f"{RECONCILED} confirmed: the venue has no such order ({previous})",
            )
            return
        if state.status not in TERMINAL:
            state = await self._cancel_orphan(intent, state)
        await self.runner.record(intent.pair_id, state)
        status = IntentStatus.DONE if state.status in TERMINAL else IntentStatus.UNKNOWN
        note = f"{RECONCILED} marked failed ({previous}) but the venue has it: {state.status} {state.filled:f}"
        await self.ledger.set_intent_status(intent.client_id, status, now_ms=self.now(), error=note)
        report.resolved_intents.append(intent.client_id)
        await self._corrected_on_settled_pair(intent, state, report)

    async def _corrected_on_settled_pair(self, intent: Intent, state: OrderState, report: ReconcileReport) -> None:
        """A corrected order of a pair that is already closed: its fills are coin or a short the ledger
        thought gone; say so with the venue's legs (the pair cannot reopen, the operator decides)."""
        pair = await self.ledger.get_pair(intent.pair_id) if intent.pair_id is not None else None
        if pair is None or pair.state is not PairState.CLOSED or not state.filled:
            return
        markets = await self._pair_markets(pair.symbol)
        legs = await self._read(lambda: read_venue_legs(self.venue, pair.symbol, markets.base))
        spot, short = await self.explained_legs(pair)
        message = (
            f"{pair.symbol}: order {intent.client_id} of closed pair #{pair.id} was marked failed but the venue "
            f"filled {state.filled.normalize():f}; its fills leave spot {spot.normalize():f}, short "
            f"{short.normalize():f}; {legs.describe()}"
        )
        await self._alert(pair, message, legs, spot, short)
        report.alerts.append(message)

    async def _cancel_orphan(self, intent: Intent, state: OrderState) -> OrderState:
        """An open order whose owner died: cancel it (write-ahead) and read it back."""
        return await self.runner.cancel(intent.pair_id, state.symbol, state)

    async def _cancel_intent(self, intent: Intent, report: ReconcileReport) -> None:
        target = intent.payload.get("client_order_id", "")
        symbol, leg = intent.payload["symbol"], Leg(intent.payload["leg"])
        state = await self._read(lambda: self.venue.fetch_order(symbol, leg, target))
        if state is not None:
            await self.runner.record(intent.pair_id, state)
        done = state is None or state.status in TERMINAL
        await self.ledger.set_intent_status(
            intent.client_id, IntentStatus.DONE if done else IntentStatus.UNKNOWN, now_ms=self.now()
        )
        report.resolved_intents.append(intent.client_id)

    async def _transfer_intent(self, intent: Intent, report: ReconcileReport) -> None:
        fetch = getattr(self.venue, "fetch_transfers", None)
        transfer = await self.ledger.get_transfer(intent.client_id)
        if intent.status is IntentStatus.PENDING or (
            transfer is not None and transfer.status is TransferStatus.PENDING
        ):
            # written but never handed to the venue (the process died before the call)
            await self._settle_transfer(intent, TransferStatus.FAILED, None, "reconcile: never sent")
        elif fetch is None:
            message = f"transfer {intent.client_id}: outcome unverifiable (venue has no transfer history); check it"
            await self.ledger.set_intent_status(intent.client_id, IntentStatus.FAILED, now_ms=self.now(), error=message)
            await self.ledger.add_event(
                EventKind.ALERT, message, ts_ms=self.now(), details={"client_id": intent.client_id}
            )
            report.alerts.append(message)
        else:
            match = await self._match_transfer(intent, await fetch(intent.created_ms - 60_000))
            if match is None:
                await self._settle_transfer(intent, TransferStatus.FAILED, None, "reconcile: not in venue history")
            else:
                await self._settle_transfer(intent, TransferStatus.DONE, match, None)
        report.resolved_intents.append(intent.client_id)

    async def _match_transfer(self, intent: Intent, history: list[Any]) -> str | None:
        amount = Decimal(intent.payload["amount"])
        known = {t.venue_tran_id for t in await self.ledger.list_transfers() if t.venue_tran_id}
        for t in history:
            same = (t.amount == amount, t.from_wallet == intent.payload["from"], t.to_wallet == intent.payload["to"])
            if all(same) and t.ts_ms >= intent.created_ms and t.tran_id not in known:
                return str(t.tran_id)
        return None

    async def _settle_transfer(
        self, intent: Intent, status: TransferStatus, tran_id: str | None, error: str | None
    ) -> None:
        if await self.ledger.get_transfer(intent.client_id) is not None:
            await self.ledger.update_transfer(
                intent.client_id, now_ms=self.now(), status=status, venue_tran_id=tran_id, error=error
            )
        done = status is TransferStatus.DONE
        await self.ledger.set_intent_status(
            intent.client_id, IntentStatus.DONE if done else IntentStatus.FAILED, now_ms=self.now(), error=error
        )

    # -- 2. fills --------------------------------------------------------------------------------------

    async def _backfill(self, pair: Pair, report: ReconcileReport) -> None:
        orders = {o.venue_order_id: o for o in await self.ledger.list_orders(pair_id=pair.id) if o.venue_order_id}
        if not orders:
            return
        for leg in (Leg.SPOT, Leg.PERP):
            fills = await self._read(lambda leg=leg: self.venue.fetch_fills(pair.symbol, leg, since_ms=pair.opened_ms))
            for f in fills:
                order = orders.get(f.venue_order_id)
                if order is None or order.leg is not leg:
                    continue
                new = await record_venue_fill(self.ledger, self.venue.name, f, order.client_order_id, pair.id)
                report.new_fills += int(new)

    # -- 3. pairs --------------------------------------------------------------------------------------

    async def explained_legs(self, pair: Pair) -> tuple[Decimal, Decimal]:
        """(spot holding, short size) implied by the pair's recorded fills."""
        base = (await self._pair_markets(pair.symbol)).base
        spot = short = ZERO
        for f in await self.ledger.list_fills(pair_id=pair.id):
            if f.market is Leg.SPOT:
                if f.side is Side.BUY:
                    spot += f.quantity - (f.fee if f.fee_asset == base else ZERO)
                else:
                    spot -= f.quantity + (f.fee if f.fee_asset == base else ZERO)
            else:
                short += f.quantity if f.side is Side.SELL else -f.quantity
        return spot, short

    async def _check_pair(self, pair: Pair, report: ReconcileReport) -> None:
        markets = await self._pair_markets(pair.symbol)
        filters = PairFilters(markets.spot, markets.perp)
        spot, short = await self.explained_legs(pair)
        legs = await self._read(lambda: read_venue_legs(self.venue, pair.symbol, markets.base))
        if not self._legs_match(legs, spot, short, markets):
            # One read is no verdict (a garbled answer, a fill on its way): a second, fresh read confirms.
            legs = await self._read(lambda: read_venue_legs(self.venue, pair.symbol, markets.base))
        if not self._legs_match(legs, spot, short, markets):
            if pair.state is not PairState.QUARANTINED:
                await self._quarantine(pair, legs, spot, short, report)
            return
        await self._surplus_spot(pair, legs, spot, markets, report)
        state = pair.state
        hedged = abs(spot - short) < filters.common_step
        if state is PairState.QUARANTINED and not hedged:
            return  # the venue agrees with the ledger, but the legs are unequal: the operator decides
        if state is not PairState.OPEN:  # an action was interrupted (or a mismatch cleared): settle the state
            flat = spot < markets.spot.min_qty and short < markets.perp.min_qty
            state = PairState.CLOSED if flat else PairState.OPEN
        if (spot, short, state) != (pair.spot_qty, pair.perp_qty, pair.state):
            await self.ledger.upsert_pair(
                venue=self.venue.name,
                symbol=pair.symbol,
                now_ms=self.now(),
                spot_qty=spot,
                perp_qty=short,
                state=state,
            )
            report.updated_pairs.append(pair.symbol)
            if pair.state is PairState.QUARANTINED:
                await self.ledger.add_event(
                    EventKind.RECONCILE,
                    f"{pair.symbol}: quarantine released, the venue's legs match the ledger and are hedged "
                    f"({legs.describe()})",
                    ts_ms=self.now(),
                    pair_id=pair.id,
                    symbol=pair.symbol,
                    details={"venue_spot": legs.spot, "venue_short": legs.short},
                )
            if abs(spot - short) >= filters.common_step:
                await self.ledger.add_event(
                    EventKind.RECONCILE,
                    f"{pair.symbol}: legs differ (spot {spot}, short {short}); the next rebalance repairs the hedge",
                    ts_ms=self.now(),
                    pair_id=pair.id,
                    symbol=pair.symbol,
                    details={"spot_qty": spot, "perp_qty": short},
                )

    @staticmethod
    def _legs_match(legs: VenueLegs, spot: Decimal, short: Decimal, markets: PairMarkets) -> bool:
        perp_ok = abs(legs.short - short) < markets.perp.step_size / 2
        # More coin on spot than our fills explain can be the operator's own; less cannot be explained.
        return perp_ok and legs.spot >= spot - markets.spot.step_size

    async def _quarantine(
        self, pair: Pair, legs: VenueLegs, spot: Decimal, short: Decimal, report: ReconcileReport
    ) -> None:
        message = (
            f"{pair.symbol}: {legs.describe()} do not match the ledger (spot {spot.normalize():f}, short "
            f"{short.normalize():f}) on two reads; pair quarantined"
        )
        await self.ledger.upsert_pair(
            venue=self.venue.name, symbol=pair.symbol, now_ms=self.now(), state=PairState.QUARANTINED
        )
        await self._alert(pair, message, legs, spot, short)
        report.quarantined.append(pair.symbol)
        report.alerts.append(message)

    async def _alert(self, pair: Pair, message: str, legs: VenueLegs, spot: Decimal, short: Decimal) -> None:
        await self.ledger.add_event(
            EventKind.ALERT,
            message,
            ts_ms=self.now(),
            pair_id=pair.id,
            symbol=pair.symbol,
            details={
                "venue_spot": legs.spot,
                "venue_short": legs.short,
                "venue_net": legs.net,
                "ledger_spot": spot,
                "ledger_short": short,
            },
        )

    async def _surplus_spot(
        self, pair: Pair, legs: VenueLegs, spot: Decimal, markets: PairMarkets, report: ReconcileReport
    ) -> None:
        """Coin beyond the pair's own is the operator's only when none of our orders explains it: fills of
        closed pairs of the symbol that leave a hedgeable amount (not dust) are a naked long of ours."""
        surplus = legs.spot - spot
        if surplus < max(markets.perp.min_qty, markets.spot.step_size):
            return
        ours = ZERO
        for other in await self.ledger.list_pairs((PairState.CLOSED,), venue=self.venue.name):
            if other.symbol != pair.symbol or other.id == pair.id:
                continue
            left, _ = await self.explained_legs(other)
            if left >= markets.perp.min_qty:
                ours += left
        if ours < markets.perp.min_qty:
            return
        message = (
            f"{pair.symbol}: spot surplus of {surplus.normalize():f} {markets.base} over the pair's "
            f"{spot.normalize():f}; {min(ours, surplus).normalize():f} of it was bought by our orders of closed "
            f"pairs (not the operator's): a long with no short; {legs.describe()}"
        )
        alerts = await self.ledger.events(kinds=[EventKind.ALERT], symbol=pair.symbol, limit=1, newest_first=True)
        if alerts and alerts[0].message == message:
            return
        await self._alert(pair, message, legs, spot, pair.perp_qty)
        report.alerts.append(message)

    async def _orphans(self, paired: set[str], report: ReconcileReport) -> None:
        """Perp positions on configured symbols that no active pair explains (alerted once per run that
        finds something else to change, so a quiet second run stays quiet)."""
        loose = [s for s in self.symbols if s not in paired]
        if not loose:
            return
        quarantined = {p.symbol for p in await self.ledger.list_pairs((PairState.QUARANTINED,), venue=self.venue.name)}
        positions = await self._read(lambda: self.venue.fetch_positions(loose))
        for symbol, pos in positions.items():
            if symbol in quarantined:
                continue
            message = f"{symbol}: perp position {pos.qty} on the venue with no pair in the ledger"
            alerts = await self.ledger.events(kinds=[EventKind.ALERT], symbol=symbol, limit=1, newest_first=True)
            if alerts and alerts[0].message == message:
                continue  # already reported, nothing new
            await self.ledger.add_event(EventKind.ALERT, message, ts_ms=self.now(), symbol=symbol)
            report.alerts.append(message)

    # -- helpers ---------------------------------------------------------------------------------------

    async def _pair_markets(self, symbol: str) -> PairMarkets:
        if symbol not in self._markets:
            loaded = await self._read(lambda: self.venue.load_markets([symbol]))
            if symbol not in loaded:
                raise ValueError(f"{symbol}: no spot market with a linear perpetual on {self.venue.name}")
            self._markets[symbol] = loaded[symbol]
        return self._markets[symbol]

    async def _read(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await retry_call(fn, rng=self.rng, attempts=3, base_s=self.config.retry_backoff_s, sleep=self.sleep)
