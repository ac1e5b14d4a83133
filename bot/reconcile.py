"""Reconciliation: make the ledger agree with the venue, at start and periodically.

1. Unsettled intents (pending / sent / unknown) are resolved by client id: an order the venue does not
   know was never placed (failed: safe to decide anew); an order it knows is recorded with its fills
   (an order still open with no owner is canceled under a cancel intent). Order intents marked
   ``failed`` by the executor are looked up once too: one the venue has after all is recorded and
   corrected to done (a lost answer is never a verdict). A transfer is settled by the venue's transfer
   history (``bot.treasury.evidence``): done when found, failed only when the history covering its window
   was read and lacks it, else left open for the next run.
2. Fills of our orders that the ledger missed are backfilled (idempotent by trade id): held pairs' from
   the last recorded fill of their symbol, and any order (closed pairs' too) with fewer recorded fills
   than the venue filled (``bot.backfill``).
3. Each active or quarantined pair's legs are recomputed from its recorded fills (spot net of base-asset
   fees, short size) and compared with the venue: perp position and spot balance. Explained differences
   update the pair (a quarantined pair whose venue legs now match and are hedged is released);
   unexplained ones, confirmed by a second fresh read, quarantine it with an alert stating the venue's
   legs as read.
4. Legs on a configured symbol that no pair explains (a lost ledger, hand trading) block entries there
   until the operator adopts or closes them (``bot.orphans``).

Idempotent: a second run finds nothing open, records no new fill, changes no pair and writes no event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.backfill import backfill_fills
from bot.config import ExecutionConfig
from bot.domain import ZERO, Leg, PairState, Side
from bot.execution.legs import VenueLegs, read_venue_legs
from bot.execution.orders import TERMINAL, OrderRunner
from bot.execution.plan import PairFilters
from bot.ledger.models import EventKind, Intent, IntentKind, IntentStatus, Pair, TransferStatus
from bot.ledger.recorder import Recorder
from bot.orphans import OrphanWatch
from bot.treasury.evidence import DEFAULT_WINDOW_MS, claimed_tran_ids, transfer_evidence
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
        ledger: Recorder,
        now: Now,
        *,
        symbols: list[str] | None = None,
        min_intent_age_ms: int = 0,
        config: ExecutionConfig | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        transfer_window_ms: int = DEFAULT_WINDOW_MS,
    ) -> None:
        """``min_intent_age_ms``: periodic runs leave younger intents to the executor working on them
        (0 at start, when nothing else runs). ``symbols``: also report venue positions with no pair.
        ``transfer_window_ms``: how far around its intent a transfer is looked for (``bot.treasury.evidence``)."""
        self.venue = venue
        self.ledger = ledger
        self.now = now
        self.symbols = symbols or []
        self.min_intent_age_ms = min_intent_age_ms
        self.transfer_window_ms = transfer_window_ms
        self.config = config or ExecutionConfig()
        self.sleep = sleep
        self.rng = random.Random(0)
        self.runner = OrderRunner(venue, ledger, now, self.config, sleep, self.rng)
        self._markets: dict[str, PairMarkets] = {}
        self.orphans = OrphanWatch(
            venue, ledger, now, self._pair_markets, self._read, self.config.spot_fee_in_base, self.residue
        )

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        await self._intents(report)
        await self._failed_order_intents(report)
        pairs = await self.ledger.list_pairs((*ACTIVE, PairState.QUARANTINED), venue=self.venue.name)
        # An order intent too young to settle may still execute (its request is within the recvWindow):
        # its pair is checked once the intent is settled, not quarantined for a fill that is on its way.
        in_flight = {i.pair_id for i in await self.ledger.open_intents([IntentKind.ORDER, IntentKind.CANCEL])}
        await self._backfill(report)
        for pair in pairs:
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
        """Settle a transfer by evidence: never handed to the venue, or found (or, once its window has
        passed, not found) in the venue's transfer history. Undecidable yet: left open for the next run."""
        transfer = await self.ledger.get_transfer(intent.client_id)
        if intent.status is IntentStatus.PENDING or (
            transfer is not None and transfer.status is TransferStatus.PENDING
        ):
            # written but never handed to the venue (the process died before the call)
            await self._settle_transfer(intent, TransferStatus.FAILED, None, "reconcile: never sent")
            report.resolved_intents.append(intent.client_id)
            return
        claimed = await claimed_tran_ids(self.ledger)
        evidence = await self._read(
            lambda: transfer_evidence(self.venue, self.ledger, intent, window=self.transfer_window_ms, claimed=claimed)
        )
        if evidence.outcome == "open":
            return
        status = TransferStatus.DONE if evidence.outcome == "done" else TransferStatus.FAILED
        error = None if status is TransferStatus.DONE else f"reconcile: {evidence.why}"
        await self._settle_transfer(intent, status, evidence.tran_id, error)
        await self.ledger.add_event(
            EventKind.TRANSFER if status is TransferStatus.DONE else EventKind.RECONCILE,
            f"transfer {intent.client_id} {status.value} by the venue's history: {evidence.why}",
            ts_ms=self.now(),
            details={"client_id": intent.client_id, "tran_id": evidence.tran_id, "amount": intent.payload["amount"]},
        )
        report.resolved_intents.append(intent.client_id)

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

    async def _backfill(self, report: ReconcileReport) -> None:
        """Fills the ledger missed, of held pairs and of closed pairs' orders alike (``bot.backfill``)."""
        held = await self.ledger.list_pairs((*ACTIVE, PairState.QUARANTINED), venue=self.venue.name)
        report.new_fills += await backfill_fills(self.venue, self.ledger, self.now(), held, self._read)

    # -- 3. pairs --------------------------------------------------------------------------------------

    async def explained_legs(self, pair: Pair) -> tuple[Decimal, Decimal]:
        """(spot holding, short size) implied by the pair's recorded fills, on top of the legs it was
        adopted with (``bot.orphans``)."""
        base = (await self._pair_markets(pair.symbol)).base
        start = (pair.adopted_spot_qty or ZERO, pair.adopted_perp_qty or ZERO)
        return _legs_after(start, await self.ledger.list_fills(pair_id=pair.id), base)

    async def residue(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(spot, short) that the closed pairs of ``symbol`` left behind, as their fills say: the dust of
        round trips is explained, not an orphan. An adoption took in all the venue held then, so the
        count starts again from the last adopted pair's legs."""
        base = (await self._pair_markets(symbol)).base
        closed = await self.ledger.list_pairs((PairState.CLOSED,), venue=self.venue.name)
        adopted = [p for p in closed if p.symbol == symbol and p.adopted_perp_qty is not None]
        last = max(adopted, key=lambda p: (p.opened_ms, p.id), default=None)
        start = (last.adopted_spot_qty or ZERO, last.adopted_perp_qty or ZERO) if last else (ZERO, ZERO)
        since = last.opened_ms if last is not None else None
        fills = await self.ledger.list_fills(symbol=symbol, venue=self.venue.name, since_ms=since)
        return _legs_after(start, fills, base)

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
        """Legs on configured symbols that no pair explains block entries there (``bot.orphans``);
        alerted when found or when their figures change, so a quiet second run stays quiet."""
        quarantined = {p.symbol for p in await self.ledger.list_pairs((PairState.QUARANTINED,), venue=self.venue.name)}
        loose = [s for s in self.symbols if s not in paired and s not in quarantined]
        for legs in await self.orphans.review(loose):
            report.alerts.append(f"{legs.symbol}: orphan legs on the venue: {legs.figures()}")

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


def _legs_after(start: tuple[Decimal, Decimal], fills: list[Any], base: str) -> tuple[Decimal, Decimal]:
    """(spot, short) after ``fills`` from ``start``: spot net of the fees taken in the base coin."""
    spot, short = start
    for f in fills:
        if f.market is Leg.SPOT:
            fee = f.fee if f.fee_asset == base else ZERO
            spot += f.quantity - fee if f.side is Side.BUY else -(f.quantity + fee)
        else:
            short += f.quantity if f.side is Side.SELL else -f.quantity
    return spot, short
