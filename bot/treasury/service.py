"""The treasury: keeps the futures wallet collateralised by moving USDT between spot and USD-M futures.

``rebalance()`` reads the collateral ratio (futures margin balance / total short notional, see
``bot.treasury.maths``). Below the low bound it moves spot USDT in, up to the target; if spot cannot pay,
it asks the executor to shrink every pair proportionally (both legs, never one) and then moves the sale
proceeds in. Above the high bound it sends the excess back to spot. Each transfer attempt is a
write-ahead intent plus a transfers row (pending -> sent -> done / failed); an insufficient-balance
answer re-reads the venue's maximum and retries smaller, a bounded number of times. A transfer whose
answer was lost is looked up in the venue's transfer history (``bot.treasury.evidence``, a few reads
with backoff): done when found, retried only when the history proves it never executed, else left
"sent" for reconciliation, never retried blindly. A rate limit (429/418) is never retried here: it is
raised, and the venue's rate gate pauses every caller.

The operator hears of both through what the daemon wires in: every further attempt of a transfer
(``on_retry``: ``fundbot_transfer_retries_total``) and, at each rebalance, a transfer still "sent" long after
reconciliation could have settled it (``on_stuck``: the daemon's ``transfer_stuck`` alert).

Locks: the treasury's lock and the executor's pair locks are not reentrant and each side calls the other
(``reduce_pairs`` under this lock, ``prepare_entry`` under a pair's); that is safe only because a
reduction never grows a pair (docs/invariants.md, section 5).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from bot.config import TreasuryConfig
from bot.domain import ZERO, PairState
from bot.execution.ids import transfer_id
from bot.ledger.models import EventKind, IntentKind, IntentStatus, Transfer, TransferStatus
from bot.ledger.models import Wallet as LedgerWallet
from bot.ledger.recorder import Recorder
from bot.ledger.repository import EventRecord, IntentRecord
from bot.treasury.evidence import DEFAULT_WINDOW_MS, TransferEvidence, claimed_tran_ids, transfer_evidence
from bot.treasury.isolated import IsolatedMargin
from bot.treasury.maths import (
    Band,
    Direction,
    ceil_usdt,
    collateral_ratio,
    entry_notional_capacity,
    floor_usdt,
    reduction_fraction,
    transfer_need,
)
from bot.venues.base import Position, TransferResult, Venue, Wallet
from bot.venues.errors import Backoff, ErrorClass, classify, retry_call, safe_error_text

Now = Callable[[], int]
Sleep = Callable[[float], Awaitable[object]]
ACTIVE_STATES = (PairState.OPENING, PairState.OPEN, PairState.REBALANCING, PairState.CLOSING)


STUCK_WINDOWS = 5  # a transfer still "sent" this many lookup windows after it was sent is stuck


OnStuck = Callable[[Transfer, int], Awaitable[object]]  # a stuck transfer's row and its age (ms)


async def _no_positions() -> dict[str, Position]:
    return {}


class Reducer(Protocol):
    """The executor side of a proportional reduction."""

    async def reduce_pairs(self, fraction: Decimal, reason: str) -> dict[str, Decimal]: ...


@dataclass(frozen=True, slots=True)
class Collateral:
    """One reading of the futures wallet against the shorts it carries."""

    margin_balance: Decimal
    short_notional: Decimal
    spot_free: Decimal
    futures_max_withdraw: Decimal

    @property
    def ratio(self) -> Decimal | None:
        return collateral_ratio(self.margin_balance, self.short_notional)


@dataclass
class RebalanceOutcome:
    """What ``rebalance`` did: action is none, to_futures, to_spot, reduce or short (spot too poor and
    no executor to reduce with)."""

    action: str
    before: Collateral
    after: Collateral | None = None
    transfers: list[TransferResult] = field(default_factory=list)
    reduction: Decimal = ZERO
    new_targets: dict[str, Decimal] = field(default_factory=dict)


class TransferFailed(RuntimeError):
    """A transfer could not be completed within its attempts (the message says why)."""


class Treasury:
    """Collateral checks and transfers; see the module docstring for the rules."""

    def __init__(
        self,
        venue: Venue,
        ledger: Recorder,
        config: TreasuryConfig | None,
        now: Now,
        *,
        reducer: Reducer | None = None,
        sleep: Sleep = asyncio.sleep,
        asset: str = "USDT",
        margin_mode: str = "cross",
        transfer_window_ms: int = DEFAULT_WINDOW_MS,
        on_stuck: OnStuck | None = None,
        on_retry: Callable[[], object] | None = None,
    ) -> None:
        """``transfer_window_ms``: how far around its intent a lost answer's transfer is looked for;
        ``on_stuck`` hears of stuck transfers, ``on_retry`` of every further attempt of a transfer."""
        self.venue = venue
        self.ledger = ledger
        self.config = config or TreasuryConfig()
        self.now = now
        self.rng = random.Random(0)
        self.reducer = reducer
        self.sleep = sleep
        self.asset = asset
        self.transfer_window_ms = transfer_window_ms
        self.on_stuck = on_stuck
        self.on_retry = on_retry
        self.band = Band(
            self.config.target_ratio, self.config.low_ratio, self.config.high_ratio, self.config.min_transfer
        )
        # Non-reentrant. Held across ``reducer.reduce_pairs`` (executor symbol locks inside), and taken by
        # ``prepare_entry`` under an executor symbol lock: safe only because a reduction never grows a pair,
        # so the executor never calls back in while reducing (the invariant at ``Executor.reduce_pairs``).
        self._lock = asyncio.Lock()
        self.isolated = IsolatedMargin(self) if margin_mode == "isolated" else None
        self._unmovable_noted = False  # the excess-is-unrealised-profit note was written for this episode

    # -- readings --------------------------------------------------------------------------------------

    async def collateral(self) -> Collateral:
        """Margin balance, short notional (|qty| x mark of every open perp position), spot free USDT."""
        pairs = await self.ledger.list_pairs((*ACTIVE_STATES, PairState.QUARANTINED), venue=self.venue.name)
        symbols = sorted({p.symbol for p in pairs})
        account, positions, spot_free = await asyncio.gather(  # one reading: the three go out together
            self._read(self.venue.fetch_futures_account),
            self._read(lambda: self.venue.fetch_positions(symbols)) if symbols else _no_positions(),
            self._read(lambda: self.venue.max_transferable(self.asset, "spot")),
        )
        notional = sum((abs(p.qty) * p.mark_price for p in positions.values()), ZERO)
        return Collateral(account.margin_balance, notional, spot_free, account.max_withdrawable)

    # -- the periodic check ----------------------------------------------------------------------------

    async def rebalance(self) -> RebalanceOutcome:
        """Bring the collateral ratio back into the band (see module docstring). Safe to call often.

        Holds the treasury's lock throughout, a reduction included (lock order: ``Executor.reduce_pairs``).
        """
        async with self._lock:
            await self._alert_stuck()
            if self.isolated is not None:
                await self._isolated_margin()
            before = await self.collateral()
            need = transfer_need(before.margin_balance, before.short_notional, self.band)
            if need is None:
                return RebalanceOutcome("none", before, before)
            if need.direction is Direction.TO_SPOT:
                movable = floor_usdt(await self._read(lambda: self.venue.max_transferable(self.asset, "futures")))
                if movable < self.config.min_transfer:
                    return await self._excess_unmovable(before, need.amount, movable)
                self._unmovable_noted = False
                out = RebalanceOutcome("to_spot", before)
                done = await self._try_transfer(need.amount, "futures", "spot", "collateral above high ratio")
                out.transfers += [done] if done else []
                out.after = await self.collateral()
                return out
            return await self._top_up(before, need.amount)

    async def _isolated_margin(self) -> None:
        """Each isolated position's own ratio first (bot/treasury/isolated.py): on isolated margin the
        account-level ratio says nothing about the position that is about to be liquidated."""
        assert self.isolated is not None
        pairs = await self.ledger.list_pairs((*ACTIVE_STATES, PairState.QUARANTINED), venue=self.venue.name)
        symbols = sorted({p.symbol for p in pairs})
        if symbols:
            positions = await self._read(lambda: self.venue.fetch_positions(symbols))
            await self.isolated.rebalance(positions)

    async def _excess_unmovable(self, before: Collateral, amount: Decimal, movable: Decimal) -> RebalanceOutcome:
        """Above the band, but what makes the excess is unrealised profit (cross margin): the venue lets
        nothing leave yet. Not a failure, and no transfer is tried; noted once until a transfer is
        possible again (a crash rally used to raise one alert per check, every minute)."""
        if not self._unmovable_noted:
            self._unmovable_noted = True
            await self._event(
                EventKind.INFO,
                f"collateral ratio {before.ratio:.4f} above {self.config.high_ratio}, but futures can move only "
                f"{movable:f} {self.asset} (the excess {amount:f} is unrealised profit or margin in use); "
                f"kept until it can move",
                {"ratio": before.ratio, "excess": amount, "movable": movable},
            )
        return RebalanceOutcome("none", before, before)

    async def _top_up(self, before: Collateral, amount: Decimal) -> RebalanceOutcome:
        out = RebalanceOutcome("to_futures", before)
        if before.spot_free >= self.config.min_transfer:
            done = await self._try_transfer(
                min(amount, before.spot_free), "spot", "futures", "collateral below low ratio"
            )
            out.transfers += [done] if done else []
        now = await self.collateral()
        ratio = now.ratio
        if ratio is None or ratio >= self.config.low_ratio:
            out.after = now
            return out
        fraction = reduction_fraction(now.margin_balance, now.short_notional, now.spot_free, self.config.target_ratio)
        out.reduction = fraction
        if self.reducer is None:
            out.action = "short"
            await self._event(
                EventKind.ALERT,
                f"collateral ratio {ratio:.4f} below {self.config.low_ratio} and spot cannot cover it; "
                f"a reduction of {fraction:.4f} of both legs is needed",
                {"ratio": ratio, "fraction": fraction},
            )
            out.after = now
            return out
        out.action = "reduce"
        await self._event(
            EventKind.DECISION,
            f"collateral ratio {ratio:.4f} below {self.config.low_ratio} and spot too poor: "
            f"reducing both legs by {fraction:.4f}",
            {"ratio": ratio, "fraction": fraction, "spot_free": now.spot_free},
        )
        out.new_targets = await self.reducer.reduce_pairs(fraction, "collateral: spot too poor")
        after = await self.collateral()
        need = transfer_need(after.margin_balance, after.short_notional, self.band)
        if need is not None and need.direction is Direction.TO_FUTURES and after.spot_free >= self.config.min_transfer:
            done = await self._try_transfer(min(need.amount, after.spot_free), "spot", "futures", "move sale proceeds")
            out.transfers += [done] if done else []
            after = await self.collateral()
        out.after = after
        return out

    # -- entries ---------------------------------------------------------------------------------------

    async def _ensure(self, required: Decimal, c: Collateral) -> tuple[Decimal, Decimal]:
        """Margin balance and spot free USDT after moving what ``required`` margin lacks into futures.
        ``c`` is the reading just taken under the treasury's lock: with nothing to move it is the answer
        (no transfer of the bot's can have run since); after a transfer both are read again, together."""
        missing = required - c.margin_balance
        if missing <= 0:
            return c.margin_balance, c.spot_free
        amount = ceil_usdt(max(missing, self.config.min_transfer))
        await self._try_transfer(amount, "spot", "futures", f"pre-fund margin to {required}", c.spot_free)
        account, spot_free = await asyncio.gather(
            self._read(self.venue.fetch_futures_account),
            self._read(lambda: self.venue.max_transferable(self.asset, "spot")),
        )
        return account.margin_balance, spot_free

    async def prepare_entry(self, extra_notional: Decimal, cost_buffer: Decimal = Decimal("0.01")) -> Decimal:
        """Pre-fund the margin for ``extra_notional`` more shorts at the target ratio and return the
        notional that spot cash and margin can carry (<= ``extra_notional``).

        Called by the executor under a symbol's lock; takes the treasury's lock, so it must never be
        reached from a reduction (``Executor.reduce_pairs``)."""
        async with self._lock:
            c = await self.collateral()
            t = self.config.target_ratio
            cap = entry_notional_capacity(
                extra_notional, c.margin_balance, c.short_notional, c.spot_free, t, cost_buffer
            )
            if cap <= 0:
                return ZERO
            margin, spot_free = await self._ensure(t * (c.short_notional + cap), c)
            by_margin = margin / t - c.short_notional
            by_spot = spot_free / (1 + cost_buffer)
            return max(ZERO, min(cap, by_margin, by_spot))

    # -- transfers -------------------------------------------------------------------------------------

    async def _alert_stuck(self) -> None:
        """Alert each transfer of this venue still "sent" ``STUCK_WINDOWS`` lookup windows after it was sent:
        reconciliation settles one as soon as its window has passed, so it could not (its history unread,
        or the venue's row still pending), and money may sit in neither wallet."""
        if self.on_stuck is None:
            return
        now = self.now()
        for t in await self.ledger.list_transfers(statuses=[TransferStatus.SENT], venue=self.venue.name):
            if now - t.created_ms >= STUCK_WINDOWS * self.transfer_window_ms:
                await self.on_stuck(t, now - t.created_ms)

    async def _try_transfer(
        self, amount: Decimal, from_w: Wallet, to_w: Wallet, reason: str, available: Decimal | None = None
    ) -> TransferResult | None:
        try:
            return await self.transfer(amount, from_w, to_w, reason, available)
        except TransferFailed:
            return None

    async def transfer(
        self, amount: Decimal, from_w: Wallet, to_w: Wallet, reason: str = "", available: Decimal | None = None
    ) -> TransferResult:
        """Move up to ``amount``: bounded by the venue's max transferable, shrinking after insufficient
        balance; each attempt is written ahead. Raises TransferFailed when nothing could be moved.
        ``available``: what ``from_w`` can move as the caller has just read it under the treasury's lock
        (the first attempt's bound; a further attempt reads the venue again)."""
        wanted = floor_usdt(amount)
        last_error = "nothing attempted"
        for attempt in range(1, self.config.max_attempts + 1):
            if attempt > 1:
                if self.on_retry is not None:
                    self.on_retry()
                await self.sleep(Backoff(self.config.backoff_s).delay(attempt - 1))
            if attempt > 1 or available is None:
                available = await self._read(lambda: self.venue.max_transferable(self.asset, from_w))
            if attempt > 1:
                available = available * self.config.shrink_factor ** (attempt - 1)
            size = floor_usdt(min(wanted, available))
            if size < self.config.min_transfer:
                last_error = (
                    f"{from_w} can move {floor_usdt(available):f} {self.asset}, "
                    f"below the minimum {self.config.min_transfer:f}"
                )
                break
            cid = await self._write_ahead(size, from_w, to_w, reason, attempt)
            try:
                result = await self.venue.transfer(self.asset, size, from_w, to_w)
            except Exception as exc:
                kind = classify(exc, mutating=True)
                last_error = safe_error_text(exc)
                if kind is ErrorClass.UNKNOWN_STATE:
                    await self._settle(cid, TransferStatus.SENT, IntentStatus.UNKNOWN, last_error)
                    evidence = await self._look_up(cid)
                    if evidence is not None and evidence.outcome == "done" and evidence.row is not None:
                        return await self._done(cid, size, evidence.row, wanted, reason, attempt)
                    if evidence is None or evidence.outcome == "open":
                        await self._event(
                            EventKind.ALERT, f"transfer {cid} outcome unknown: {last_error}", {"client_id": cid}
                        )
                        raise TransferFailed(
                            f"transfer {cid}: outcome unknown ({last_error}); reconciliation decides"
                        ) from exc
                    last_error = f"{last_error}; {evidence.why}"  # failed by evidence: never executed
                await self._settle(cid, TransferStatus.FAILED, IntentStatus.FAILED, last_error)
                if kind is ErrorClass.RATE_LIMITED:
                    raise  # the venue's rate gate pauses every caller; never retried here at backoff_s
                if kind in (ErrorClass.INSUFFICIENT_FUNDS, ErrorClass.UNKNOWN_STATE) or kind.retryable:
                    continue
                break
            return await self._done(cid, size, result, wanted, reason, attempt)
        await self._event(
            EventKind.ALERT,
            f"transfer of {wanted:f} {self.asset} {from_w} -> {to_w} failed: {last_error}",
            {"requested": wanted, "error": last_error},
        )
        raise TransferFailed(last_error)

    async def _done(
        self, cid: str, size: Decimal, result: TransferResult, wanted: Decimal, reason: str, attempt: int
    ) -> TransferResult:
        now = self.now()
        moved = EventRecord(
            EventKind.TRANSFER,
            f"moved {size} {self.asset} {result.from_wallet} -> {result.to_wallet} ({reason})",
            ts_ms=now,
            details={
                "client_id": cid,
                "tran_id": result.tran_id,
                "amount": size,
                "requested": wanted,
                "attempt": attempt,
            },
        )
        await self.ledger.settle_transfer(
            cid,
            now_ms=now,
            status=TransferStatus.DONE,
            intent_status=IntentStatus.DONE,
            venue_tran_id=result.tran_id,
            events=[moved],
        )
        return result

    async def _look_up(self, cid: str) -> TransferEvidence | None:
        """The venue's transfer history on a transfer whose answer was lost, read a bounded number of times
        with backoff (it may take a moment to show); None when it could not be read."""
        evidence: TransferEvidence | None = None
        for attempt in range(self.config.lookup_attempts):
            if attempt:
                await self.sleep(Backoff(self.config.backoff_s).delay(attempt))
            intent = await self.ledger.get_intent(cid)
            if intent is None:
                return None
            try:
                evidence = await transfer_evidence(
                    self.venue,
                    self.ledger,
                    intent,
                    window=self.transfer_window_ms,
                    claimed=await claimed_tran_ids(self.ledger),
                )
            except Exception as exc:
                if classify(exc) is ErrorClass.RATE_LIMITED:
                    raise
                continue
            if evidence.outcome != "open":
                return evidence
        return evidence

    async def _write_ahead(self, size: Decimal, from_w: Wallet, to_w: Wallet, reason: str, attempt: int) -> str:
        """A fresh transfer client id with its intent and transfers row committed (both as sent, one
        attempt) in one transaction, before the transfer is handed to the venue."""
        ts = self.now()
        payload = {"asset": self.asset, "amount": str(size), "from": from_w, "to": to_w, "reason": reason}
        n = 0
        while True:
            cid = transfer_id(ts, n)
            row = {
                "client_id": cid,
                "venue": self.venue.name,
                "asset": self.asset,
                "amount": size,
                "from_wallet": LedgerWallet(from_w),
                "to_wallet": LedgerWallet(to_w),
                "now_ms": ts,
            }
            intent = IntentRecord(IntentKind.TRANSFER, cid, ts, {**payload, "attempt": attempt})
            ((_, new),) = await self.ledger.write_ahead([intent], transfers=[row])
            if new:
                return cid
            n += 1

    async def _settle(self, cid: str, tstatus: TransferStatus, istatus: IntentStatus, error: str) -> None:
        await self.ledger.settle_transfer(cid, now_ms=self.now(), status=tstatus, intent_status=istatus, error=error)

    # -- helpers ---------------------------------------------------------------------------------------

    async def _event(self, kind: EventKind, message: str, details: dict[str, object]) -> None:
        await self.ledger.add_event(kind, message, ts_ms=self.now(), details=details)

    async def _read(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """A venue read, retried on transient errors."""
        return await retry_call(fn, rng=self.rng, attempts=3, base_s=self.config.backoff_s, sleep=self.sleep)
