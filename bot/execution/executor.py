"""The executor: brings both legs of a pair to a target base quantity, and keeps the hedge whole.

One action = one sequence number of the pair. Its first orders (``fb-<pair>-<seq>-s`` / ``-p``) are sent
concurrently; afterwards, if the legs differ (partial fill, a rejected leg), the lagging leg is topped up
(``-t<n>``, retried with a fresh id while the failure is transient) and otherwise the leading leg is
unwound back (``-u<n>``, reduce-only on the perp). A pair that still cannot be made whole is quarantined
with an alert. A leg whose outcome is unknown (its answer lost, no lookup settled it) is never taken for
"not filled": the action stops with the pair in its transitional state, and reconciliation settles the
intent before the pair trades again. K consecutive failed actions on a symbol open its circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from bot.config import ExecutionConfig
from bot.domain import ZERO, Leg, PairState, Side, ceil_to_step, floor_to_step
from bot.execution.breaker import CircuitBreaker
from bot.execution.ids import order_id, parse_order_id
from bot.execution.legs import read_venue_legs
from bot.execution.maker import MakerWorker
from bot.execution.orders import LegResult, Now, OrderRunner, Sleep
from bot.execution.plan import (
    LegOrder,
    PairFilters,
    hedge_repair,
    hedge_trim,
    min_sendable_qty,
    plan_to_target,
    reduced_qty,
    sendable,
)
from bot.ledger.models import EventKind, Pair
from bot.ledger.recorder import Recorder
from bot.ledger.repository import EventRecord
from bot.venues.base import PairMarkets, Venue
from bot.venues.errors import Backoff, ErrorClass, retry_call

# How old (``now`` ms) a scan's book mids may be and still serve as an action's reference prices.
QUOTE_MAX_AGE_MS = 1_000

# Strategy actions that mean "leave the pair as it is".
PASSIVE_ACTIONS = frozenset({"hold", "skip"})

# Set while this task runs ``Executor.reduce_pairs``: the treasury's lock is held then (see there).
_REDUCING: contextvars.ContextVar[bool] = contextvars.ContextVar("fundbot_reducing", default=False)


class LockOrderError(RuntimeError):
    """An action would call the treasury while the treasury's own (non-reentrant) lock is held."""


class TargetLike(Protocol):
    """What the executor reads from a ``strategies.base.Target``."""

    @property
    def symbol(self) -> str: ...

    @property
    def target_qty(self) -> Decimal: ...


class EntryFunder(Protocol):
    """The treasury side of an entry: pre-fund the futures margin, say how much notional is affordable."""

    async def prepare_entry(self, extra_notional: Decimal, cost_buffer: Decimal) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class SimpleTarget:
    """A target the bot sets itself (treasury reductions, operator commands)."""

    symbol: str
    target_qty: Decimal
    reason: str = ""


@dataclass
class ExecutionResult:
    """Outcome of one ``apply``: status is noop, blocked, done, repaired, unwound, failed, unknown (a leg's
    outcome is open until reconciliation) or quarantined."""

    symbol: str
    status: str
    pair_id: int | None = None
    spot_qty: Decimal = ZERO
    perp_qty: Decimal = ZERO
    client_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def hedged(self) -> bool:
        return self.status not in {"quarantined"}


class Executor:
    """Turns targets into orders on both legs; every step is written to the ledger first."""

    def __init__(
        self,
        venue: Venue,
        ledger: Recorder,
        now: Now,
        config: ExecutionConfig | None = None,
        *,
        funder: EntryFunder | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.venue = venue
        self.ledger = ledger
        self.now = now
        self.config = config or ExecutionConfig()
        self.funder = funder
        self.sleep = sleep
        self.rng = rng or random.Random(0)
        self.breaker = CircuitBreaker(self.config.breaker_failures, int(self.config.breaker_cooldown_s * 1000))
        self.runner = OrderRunner(venue, ledger, now, self.config, sleep, self.rng)
        self.maker = MakerWorker(venue, self.runner, now, self.config, sleep, self._read)
        self._markets: dict[str, PairMarkets] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one per symbol, non-reentrant: see ``reduce_pairs``
        self._quotes: dict[str, tuple[int, dict[Leg, Decimal]]] = {}  # symbol -> (read at, both legs' mids)
        self.runner.on_send = self._traded

    def use_quotes(self, quotes: dict[str, dict[Leg, Decimal]], read_ms: int) -> None:
        """Both legs' book mids per symbol as the caller (the scan) just read them at ``read_ms``: an action
        planned within ``QUOTE_MAX_AGE_MS`` takes them as its reference prices instead of reading both books
        again. A symbol's mids are dropped as soon as any order on it is about to be sent (its fills move
        the book), and a later action reads the books afresh."""
        self._quotes = {symbol: (read_ms, dict(mids)) for symbol, mids in quotes.items()}

    def _traded(self, symbol: str) -> None:
        self._quotes.pop(symbol, None)

    # -- public ----------------------------------------------------------------------------------------

    async def apply(self, target: TargetLike) -> ExecutionResult:
        """Bring the pair of ``target.symbol`` to ``target.target_qty`` on both legs (0 closes it).

        Holds the symbol's lock; an increase then takes the treasury's lock (``funder.prepare_entry``).
        """
        async with self._lock(target.symbol):
            return await self._apply(target)

    async def reduce_pairs(self, fraction: Decimal, reason: str) -> dict[str, Decimal]:
        """Shrink every open pair by ``fraction`` on both legs (the treasury's answer to thin collateral).

        Returns the new target of each pair. Quantities round down to the common step, so the cut is at
        least ``fraction``.

        Invariant (lock order): the treasury calls this holding its lock (``Treasury._top_up``), and each
        ``apply`` here takes the symbol's lock, while an increase under a symbol's lock calls back into the
        treasury (``prepare_entry``), which takes the treasury's lock. Both locks are asyncio locks, not
        reentrant: that callback from here would wait forever on a lock its own task holds. It is
        never made because a reduction never grows a pair (``reduced_qty`` is at most either leg, so
        ``_affordable`` returns before asking the funder); should that ever break, ``_affordable`` raises
        ``LockOrderError`` instead of hanging. (Between tasks the engine's ``account_lock`` serialises
        execution and the treasury.)
        """
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        targets: dict[str, Decimal] = {}
        token = _REDUCING.set(True)
        try:
            for pair in await self.ledger.list_pairs((PairState.OPEN,), venue=self.venue.name):
                markets = await self.markets(pair.symbol)
                step = PairFilters(markets.spot, markets.perp).common_step
                new = reduced_qty(pair.spot_qty, pair.perp_qty, fraction, step)
                await self.apply(SimpleTarget(pair.symbol, new, reason))
                targets[pair.symbol] = new
        finally:
            _REDUCING.reset(token)
        return targets

    async def markets(self, symbol: str) -> PairMarkets:
        if symbol not in self._markets:
            loaded = await self._read(lambda: self.venue.load_markets([symbol]))
            if symbol not in loaded:
                raise ValueError(f"{symbol} has no spot market with a linear perpetual on {self.venue.name}")
            self._markets[symbol] = loaded[symbol]
        return self._markets[symbol]

    async def next_seq(self, pair_id: int) -> int:
        """1 + the highest action number used by this pair's orders and intents."""
        seqs = [p[1] for p in map(parse_order_id, await self.ledger.pair_client_ids(pair_id)) if p is not None]
        return max(seqs, default=0) + 1

    # -- the action ------------------------------------------------------------------------------------

    async def _apply(self, target: TargetLike) -> ExecutionResult:
        symbol = target.symbol
        action = getattr(getattr(target, "action", None), "value", None)
        if action in PASSIVE_ACTIONS:
            return ExecutionResult(symbol, "noop")
        now = self.now()
        pair = await self.ledger.active_pair(self.venue.name, symbol)
        if pair is not None and pair.state is PairState.QUARANTINED:
            return ExecutionResult(symbol, "blocked", pair.id, pair.spot_qty, pair.perp_qty, errors=["quarantined"])
        if pair is None and target.target_qty <= 0:
            return ExecutionResult(symbol, "noop")
        if self.breaker.is_open(symbol, now):
            await self._event(EventKind.DECISION, pair, symbol, f"circuit breaker open: {symbol} skipped", {})
            return ExecutionResult(symbol, "blocked", pair.id if pair else None, errors=["circuit breaker open"])

        markets = await self.markets(symbol)
        filters = PairFilters(markets.spot, markets.perp)
        references = await self._reference_prices(symbol)
        price = references[Leg.SPOT]
        spot_qty = pair.spot_qty if pair else ZERO
        short_qty = pair.perp_qty if pair else ZERO
        wanted = floor_to_step(target.target_qty, filters.common_step)
        wanted = await self._affordable(wanted, short_qty, price, filters)
        orders = [self._gross_up(o, filters) for o in plan_to_target(spot_qty, short_qty, wanted, filters, price)]
        if not orders and pair is not None and self._flat(spot_qty, short_qty, wanted, filters, price):
            await self.ledger.upsert_pair(  # closing, and what is left cannot be sold: dust, swept later
                venue=self.venue.name, symbol=symbol, now_ms=now, target_qty=wanted, state=PairState.CLOSED
            )
            await self._event(
                EventKind.DECISION,
                pair,
                symbol,
                f"closed: {symbol} spot {spot_qty} is below the smallest sale the market accepts (dust, swept later)",
                {"rule": "close_dust", "spot_qty": spot_qty, "perp_qty": short_qty, "price": price},
            )
            return ExecutionResult(symbol, "noop", pair.id, spot_qty, short_qty)
        # legs a residue apart that no plan order fixes: nothing to send first, the repair trims the longer leg
        if not orders and not self._needs_trim(spot_qty, short_qty, wanted, filters, price):
            if pair is not None and pair.target_qty != wanted:
                await self.ledger.upsert_pair(venue=self.venue.name, symbol=symbol, now_ms=now, target_qty=wanted)
            return ExecutionResult(symbol, "noop", pair.id if pair else None, spot_qty, short_qty)

        state = self._state_for(spot_qty, short_qty, wanted)
        known = pair is not None
        pair = await self.ledger.upsert_pair(
            venue=self.venue.name, symbol=symbol, now_ms=now, state=state, target_qty=wanted
        )
        reason = getattr(target, "reason", "")
        reason_text = reason if isinstance(reason, str) else getattr(reason, "rule", type(reason).__name__)
        details: dict[str, Any] = {
            "target_qty": wanted,
            "spot_qty": spot_qty,
            "perp_qty": short_qty,
            "price": price,
            "reference_prices": {leg.value: px for leg, px in references.items()},
            "reason": str(reason_text),  # the bot's own targets (treasury, gap exits) have no strategy reason
        }
        if hasattr(target, "to_dict"):
            details["target"] = target.to_dict()
        decision = EventRecord(
            EventKind.DECISION,
            f"{state}: {symbol} {spot_qty}/{short_qty} -> {wanted}",
            ts_ms=self.now(),
            pair_id=pair.id,
            symbol=symbol,
            details=details,
        )
        seq = await self.next_seq(pair.id) if known else 1  # a pair row made just now owns no client id yet
        result = ExecutionResult(symbol, "done", pair.id)
        if self.config.style == "maker" and {o.leg for o in orders} == {Leg.SPOT, Leg.PERP}:
            await self.ledger.add_events([decision])
            legs = await self._work_maker(pair, seq, orders, filters, str(reason_text), references, result, price)
        else:  # the decision is committed with the legs' intents, in one transaction before they leave
            legs = await self._send(
                pair.id, symbol, seq, orders, "", 0, str(reason_text), references, result, [decision]
            )
        spot_qty, short_qty = self._apply_effects(spot_qty, short_qty, legs, markets.base)
        failed = any(not leg.ok for leg in legs)
        if _unknown(legs):
            result.status = "unknown"
        else:
            spot_qty, short_qty = await self._repair(
                pair.id, symbol, seq, spot_qty, short_qty, wanted, filters, references, legs, result, markets.base
            )
        await self._finish(pair, spot_qty, short_qty, wanted, result, legs, filters, price)
        if failed or result.status in {"failed", "quarantined"}:
            await self._count_failure(pair, symbol)
        else:
            self.breaker.record_success(symbol)
        return result

    async def _reference_prices(self, symbol: str) -> dict[Leg, Decimal]:
        """Both legs' book mids when the action is planned: the reference every fill of the action is
        measured against (slippage, ``bot.ledger.attribution``) and the price it is sized at; the scan's
        own (``use_quotes``) while fresh and untraded, else both books read together."""
        quoted = self._quotes.get(symbol)
        if quoted is not None and 0 <= self.now() - quoted[0] <= QUOTE_MAX_AGE_MS:
            return dict(quoted[1])
        spot, perp = await asyncio.gather(
            self._read(lambda: self.venue.fetch_order_book(symbol, Leg.SPOT, 5)),
            self._read(lambda: self.venue.fetch_order_book(symbol, Leg.PERP, 5)),
        )
        return {Leg.SPOT: spot.mid, Leg.PERP: perp.mid}

    async def _affordable(self, wanted: Decimal, short_qty: Decimal, price: Decimal, filters: PairFilters) -> Decimal:
        """Shrink an increase to what the treasury can fund (it pre-funds the futures margin)."""
        if self.funder is None or wanted <= short_qty:
            return wanted
        if _REDUCING.get():  # the treasury's lock is held by this task: see ``reduce_pairs``
            raise LockOrderError(
                f"a reduction would grow the short from {short_qty} to {wanted}: the treasury is reducing and "
                "holds its lock, so funding an increase now would deadlock"
            )
        extra = (wanted - short_qty) * price
        capacity = await self.funder.prepare_entry(extra, self.config.spot_cost_buffer)
        if capacity >= extra:
            return wanted
        return short_qty + floor_to_step(capacity / price, filters.common_step)

    @staticmethod
    def _flat(spot_qty: Decimal, short_qty: Decimal, wanted: Decimal, filters: PairFilters, price: Decimal) -> bool:
        """No short left and no spot to sell: below the lot minimum, or (closing) below the smallest sale
        the spot market accepts. That remainder is dust the bot's fills created, swept once it adds up."""
        if short_qty >= filters.perp.min_qty:
            return False
        return spot_qty < filters.spot.min_qty or (wanted == 0 and spot_qty < min_sendable_qty(filters.spot, price))

    @staticmethod
    def _needs_trim(
        spot_qty: Decimal, short_qty: Decimal, wanted: Decimal, filters: PairFilters, price: Decimal
    ) -> bool:
        """Legs at least a common step apart with nothing the plan would send (a residue below the
        minimums): the repair must trim, or the residue stays naked until something else trades the pair."""
        if abs(spot_qty - short_qty) < filters.common_step:
            return False
        top_up, unwind = hedge_repair(spot_qty, short_qty, wanted, filters, price)
        return (top_up or unwind or hedge_trim(spot_qty, short_qty, filters, price)) is not None

    def _gross_up(self, order: LegOrder, filters: PairFilters) -> LegOrder:
        """A spot buy pays its fee in the coin bought: buy enough that the coin received covers the short."""
        fee = self.config.spot_fee_in_base
        if order.leg is not Leg.SPOT or order.side is not Side.BUY or fee <= 0:
            return order
        return replace(order, qty=ceil_to_step(order.qty / (1 - fee), filters.spot.step_size))

    @staticmethod
    def _state_for(spot_qty: Decimal, short_qty: Decimal, wanted: Decimal) -> PairState:
        if wanted == 0:
            return PairState.CLOSING
        if spot_qty == 0 and short_qty == 0:
            return PairState.OPENING
        return PairState.REBALANCING

    async def _send(
        self,
        pair_id: int,
        symbol: str,
        seq: int,
        orders: list[LegOrder],
        step: str,
        attempt: int,
        reason: str,
        references: dict[Leg, Decimal],
        result: ExecutionResult,
        events: list[EventRecord] | None = None,
    ) -> list[LegResult]:
        """Commit one intent per order (with its leg's reference price), already marked sent, and
        ``events``, all in one transaction; then send the orders concurrently."""
        ids = [order_id(pair_id, seq, order.leg, step, attempt) for order in orders]
        planned = [(cid, order, references[order.leg]) for cid, order in zip(ids, orders, strict=True)]
        fresh = await self.runner.write_intents(pair_id, symbol, planned, reason, events or [])
        for cid, new in zip(ids, fresh, strict=True):
            if not new:
                raise RuntimeError(f"client id {cid} was already used; refusing to resubmit")
        result.client_ids.extend(ids)
        legs = await asyncio.gather(
            *(
                self.runner.run(pair_id, symbol, cid, order, marked_sent=True)
                for cid, order in zip(ids, orders, strict=True)
            )
        )
        result.errors.extend(f"{leg.client_id}: {leg.error}" for leg in legs if leg.error)
        return list(legs)

    async def _work_maker(
        self,
        pair: Pair,
        seq: int,
        orders: list[LegOrder],
        filters: PairFilters,
        reason: str,
        references: dict[Leg, Decimal],
        result: ExecutionResult,
        price: Decimal,
    ) -> list[LegResult]:
        """Maker style (``bot.execution.maker``): both legs as post-only orders, then the rest at market
        (ids ``-k1``); the repair that follows is the taker path's."""
        started = self.now()
        outcome = await self.maker.work(
            pair.id, pair.symbol, seq, orders, filters, references, reason, result.client_ids
        )
        legs = list(outcome.legs)
        maker_filled = {
            leg: sum((f.qty for r in legs if r.order.leg is leg for f in r.fills if f.is_maker), ZERO)
            for leg in (Leg.SPOT, Leg.PERP)
        }
        rest = [o for o in outcome.rest if sendable(filters.of(o.leg), o.qty, price, o.reduce_only)]
        await self._event(
            EventKind.ORDER,
            pair,
            pair.symbol,
            f"{pair.symbol}: maker phase {(self.now() - started) / 1000:.0f}s, spot {maker_filled[Leg.SPOT]:f} and "
            f"perp {maker_filled[Leg.PERP]:f} filled as maker, {outcome.reprices} re-prices, "
            f"{outcome.refusals} post-only refusals; "
            + ("an order's fate is unknown" if outcome.unknown else f"{len(rest)} leg(s) completed at market"),
            {
                "maker_filled": {leg.value: q for leg, q in maker_filled.items()},
                "reprices": outcome.reprices,
                "refusals": outcome.refusals,
                "max_leg_gap": outcome.max_gap,
                "elapsed_ms": self.now() - started,
                "rest": [{"leg": o.leg.value, "side": o.side.value, "qty": o.qty} for o in rest],
            },
        )
        if outcome.unknown:
            assert outcome.unknown_leg is not None
            return [*legs, outcome.unknown_leg]
        if rest:
            legs += await self._send(pair.id, pair.symbol, seq, rest, "k", 1, reason, references, result)
        return legs

    @staticmethod
    def _apply_effects(
        spot_qty: Decimal, short_qty: Decimal, legs: list[LegResult], base: str
    ) -> tuple[Decimal, Decimal]:
        for leg in legs:
            if leg.order.leg is Leg.SPOT:
                spot_qty += leg.hedge_effect(base)
            else:
                short_qty += leg.hedge_effect(base)
        return spot_qty, short_qty

    async def _repair(
        self,
        pair_id: int,
        symbol: str,
        seq: int,
        spot_qty: Decimal,
        short_qty: Decimal,
        wanted: Decimal,
        filters: PairFilters,
        references: dict[Leg, Decimal],
        legs: list[LegResult],
        result: ExecutionResult,
        base: str,
    ) -> tuple[Decimal, Decimal]:
        """Top up the lagging leg (bounded retries while transient), else unwind the leading one; repair
        orders keep the action's reference prices (their slippage is part of the action's)."""
        price = references[Leg.SPOT]
        max_top_ups = self.config.max_hedge_retries
        max_unwinds = max(1, self.config.max_hedge_retries)
        if any(not leg.ok and not leg.retryable for leg in legs):
            max_top_ups = 0  # a refused leg will be refused again: unwind instead
        top_ups = unwinds = 0
        while abs(spot_qty - short_qty) >= filters.common_step:
            if self._flat(spot_qty, short_qty, wanted, filters, price):
                break  # closing: the spot left cannot be sold, and a new short would only hedge dust
            top_up, unwind = hedge_repair(spot_qty, short_qty, wanted, filters, price)
            if top_up is None and unwind is None:
                # a residue below the markets' minimums: trim the longer leg (a spot sale may overshoot
                # it, then the short leads and its reduce-only buy-back ends the legs equal)
                unwind = hedge_trim(spot_qty, short_qty, filters, price)
                if unwind is None:
                    break  # nothing sendable at all (a leg smaller than one minimum order)
            if top_up is not None and top_ups < max_top_ups:
                step, order, backoff = "t", top_up, top_ups
                top_ups += 1
                attempt = top_ups
            elif unwind is not None and unwinds < max_unwinds:
                step, order, backoff = "u", unwind, unwinds
                unwinds += 1
                attempt = unwinds
            else:
                result.status = "quarantined"
                return spot_qty, short_qty
            if backoff:
                await self.sleep(Backoff(self.config.retry_backoff_s).delay(backoff))
            order = self._gross_up(order, filters)
            (leg,) = await self._send(
                pair_id, symbol, seq, [order], step, attempt, f"hedge repair ({step})", references, result
            )
            spot_qty, short_qty = self._apply_effects(spot_qty, short_qty, [leg], base)
            if _unknown([leg]):
                result.status = "unknown"
                return spot_qty, short_qty
            if not leg.ok and not leg.retryable:
                if step == "t":
                    max_top_ups = 0
                else:
                    max_unwinds = 0
        if unwinds:
            result.status = "unwound"
        elif top_ups:
            result.status = "repaired"
        elif any(not leg.ok for leg in legs):
            result.status = "failed"
        return spot_qty, short_qty

    async def _finish(
        self,
        pair: Pair,
        spot_qty: Decimal,
        short_qty: Decimal,
        wanted: Decimal,
        result: ExecutionResult,
        legs: list[LegResult],
        filters: PairFilters,
        price: Decimal,
    ) -> None:
        now = self.now()
        result.spot_qty, result.perp_qty = spot_qty, short_qty
        if result.status == "unknown":
            state = pair.state  # still opening / rebalancing / closing: reconciliation settles the legs
        elif result.status == "quarantined":
            state = PairState.QUARANTINED
        elif self._flat(spot_qty, short_qty, wanted, filters, price):
            state = PairState.CLOSED
        else:
            state = PairState.OPEN
        entry: dict[str, Decimal] = {}
        if pair.entry_spot_price is None:
            avg = _averages(legs)
            if Leg.SPOT in avg and Leg.PERP in avg:
                entry = {
                    "entry_spot_price": avg[Leg.SPOT],
                    "entry_perp_price": avg[Leg.PERP],
                    "entry_basis": (avg[Leg.PERP] - avg[Leg.SPOT]) / avg[Leg.SPOT],
                }
        await self.ledger.upsert_pair(
            venue=self.venue.name,
            symbol=pair.symbol,
            now_ms=now,
            spot_qty=spot_qty,
            perp_qty=short_qty,
            target_qty=wanted,
            state=state,
            entry_spot_price=entry.get("entry_spot_price"),
            entry_perp_price=entry.get("entry_perp_price"),
            entry_basis=entry.get("entry_basis"),
        )
        if result.status == "unknown":
            await self._event(
                EventKind.ORDER,
                pair,
                pair.symbol,
                f"{pair.symbol}: an order's outcome is unknown (its answer was lost and no lookup settled it); "
                "the pair waits for reconciliation, nothing is unwound on a guess",
                {"spot_qty": spot_qty, "perp_qty": short_qty, "errors": result.errors},
            )
        if state is PairState.QUARANTINED:
            details: dict[str, Any] = {"spot_qty": spot_qty, "perp_qty": short_qty, "errors": result.errors}
            try:  # the alert states what the venue holds, not only what this action believes
                base = (await self.markets(pair.symbol)).base
                held = await self._read(lambda: read_venue_legs(self.venue, pair.symbol, base))
            except Exception as exc:
                venue_text = f"venue legs could not be read ({type(exc).__name__})"
            else:
                venue_text = held.describe()
                details.update(venue_spot=held.spot, venue_short=held.short, venue_net=held.net)
            await self._event(
                EventKind.ALERT,
                pair,
                pair.symbol,
                f"{pair.symbol}: hedge could not be repaired (ledger spot {spot_qty.normalize():f}, short "
                f"{short_qty.normalize():f}; {venue_text}); pair quarantined",
                details,
            )

    async def _count_failure(self, pair: Pair, symbol: str) -> None:
        now = self.now()
        if self.breaker.record_failure(symbol, now):
            until = self.breaker.open_until(symbol)
            await self._event(
                EventKind.ALERT,
                pair,
                symbol,
                f"circuit breaker opened for {symbol} after {self.breaker.threshold} failed actions (until {until})",
                {"open_until_ms": until, "failures": self.breaker.threshold},
            )

    # -- helpers ---------------------------------------------------------------------------------------

    async def _event(
        self, kind: EventKind, pair: Pair | None, symbol: str, message: str, details: dict[str, Any]
    ) -> None:
        await self.ledger.add_event(
            kind, message, ts_ms=self.now(), pair_id=pair.id if pair else None, symbol=symbol, details=details
        )

    async def _read(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await retry_call(fn, rng=self.rng, attempts=3, base_s=self.config.retry_backoff_s, sleep=self.sleep)

    def _lock(self, symbol: str) -> asyncio.Lock:
        """The symbol's lock (non-reentrant; taken after the treasury's when reducing: ``reduce_pairs``)."""
        return self._locks.setdefault(symbol, asyncio.Lock())


def _unknown(legs: list[LegResult]) -> bool:
    """A leg neither known filled nor refused: acting on its other leg would be a guess."""
    return any(leg.state is None and leg.error_class is ErrorClass.UNKNOWN_STATE for leg in legs)


def _averages(legs: list[LegResult]) -> dict[Leg, Decimal]:
    """Each leg's average fill price over all its orders of the action (maker pieces, the rest at market)."""
    qty: dict[Leg, Decimal] = {}
    quote: dict[Leg, Decimal] = {}
    for leg in legs:
        if leg.state is not None and leg.state.average and leg.state.filled:
            qty[leg.order.leg] = qty.get(leg.order.leg, ZERO) + leg.state.filled
            quote[leg.order.leg] = quote.get(leg.order.leg, ZERO) + leg.state.filled * leg.state.average
    return {k: quote[k] / q for k, q in qty.items()}
