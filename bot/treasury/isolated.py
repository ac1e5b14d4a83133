"""Isolated margin, kept per position: each isolated short's own ratio (isolated margin balance / notional)
stays in the treasury's band.

On isolated margin the collateral of a position is its own wallet: free USDT elsewhere in the futures
wallet does not protect it (an isolated 3x short is liquidated with plenty idle beside it). So below the
band's low ratio the position is topped up to the target from the futures wallet's available balance,
after moving spot USDT in when that is short; above the high ratio the excess (what the venue lets leave:
never unrealised profit nor the initial margin) goes back to the futures wallet, where the account-level
check returns it to spot. Every change is a write-ahead intent (kind ``margin``); an answer that was lost
is settled from the venue's margin-change history, never presumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.domain import ZERO
from bot.execution.ids import margin_id
from bot.ledger.models import EventKind, IntentKind, IntentStatus
from bot.treasury.maths import ceil_usdt, floor_usdt
from bot.venues.base import MarginChange, Position
from bot.venues.errors import ErrorClass, classify, safe_error_text

if TYPE_CHECKING:
    from bot.treasury.service import Treasury


@dataclass(frozen=True, slots=True)
class IsolatedReading:
    """One isolated position against the band."""

    symbol: str
    margin: Decimal  # isolated wallet + unrealised PnL
    notional: Decimal
    removable: Decimal  # what a reduction may take: wallet, less unrealised loss, less initial margin

    @property
    def ratio(self) -> Decimal:
        return self.margin / self.notional if self.notional else Decimal(1)


def reading(p: Position) -> IsolatedReading:
    removable = max(ZERO, p.isolated_wallet + min(p.unrealized_pnl, ZERO) - p.initial_margin)
    return IsolatedReading(p.symbol, p.isolated_margin, p.notional, removable)


class IsolatedMargin:
    """The per-position half of the treasury (see the module docstring); runs under its lock."""

    def __init__(self, treasury: Treasury) -> None:
        self.t = treasury

    async def rebalance(self, positions: dict[str, Position]) -> list[MarginChange]:
        """Bring every isolated position's own ratio into the band; returns the changes made."""
        band = self.t.config
        done: list[MarginChange] = []
        for symbol in sorted(positions):
            p = positions[symbol]
            if p.margin_mode != "isolated" or not p.qty:
                continue
            r = reading(p)
            if r.ratio < band.low_ratio:
                change = await self._top_up(r)
            elif r.ratio > band.high_ratio:
                change = await self._release(r)
            else:
                change = None
            if change is not None:
                done.append(change)
        return done

    async def _top_up(self, r: IsolatedReading) -> MarginChange | None:
        need = ceil_usdt(self.t.config.target_ratio * r.notional - r.margin)
        account = await self.t._read(self.t.venue.fetch_futures_account)
        available = floor_usdt(max(account.available_balance, ZERO))
        if available < need:
            missing = need - available
            spot = await self.t._read(lambda: self.t.venue.max_transferable(self.t.asset, "spot"))
            if spot >= self.t.config.min_transfer:
                await self.t._try_transfer(
                    min(max(missing, self.t.config.min_transfer), spot),
                    "spot",
                    "futures",
                    f"isolated margin of {r.symbol} below {self.t.config.low_ratio}",
                )
                account = await self.t._read(self.t.venue.fetch_futures_account)
                available = floor_usdt(max(account.available_balance, ZERO))
        amount = min(need, available)
        if amount <= 0:
            await self.t._event(
                EventKind.ALERT,
                f"isolated margin of {r.symbol} at ratio {r.ratio:.4f}, below {self.t.config.low_ratio}, and "
                f"nothing is free to add (futures available {available:f}, spot too poor)",
                {"symbol": r.symbol, "ratio": r.ratio, "need": need},
            )
            return None
        return await self._change(r, amount, add=True)

    async def _release(self, r: IsolatedReading) -> MarginChange | None:
        excess = floor_usdt(min(r.margin - self.t.config.target_ratio * r.notional, r.removable))
        if excess < self.t.config.min_transfer:
            return None
        return await self._change(r, excess, add=False)

    async def _change(self, r: IsolatedReading, amount: Decimal, add: bool) -> MarginChange | None:
        ts = self.t.now()
        cid = await self._write_ahead(r, amount, add, ts)
        verb = "added to" if add else "returned from"
        try:
            change = await self.t.venue.modify_isolated_margin(r.symbol, amount, add)
        except Exception as exc:
            kind = classify(exc, mutating=True)
            error = safe_error_text(exc)
            if kind is ErrorClass.UNKNOWN_STATE:
                found = await self._look_up(r.symbol, amount, add, ts)
                if found is None:
                    await self.t.ledger.set_intent_status(cid, IntentStatus.UNKNOWN, now_ms=self.t.now(), error=error)
                    await self.t._event(
                        EventKind.ALERT,
                        f"isolated margin change {cid} ({amount:f} USDT {verb} {r.symbol}): outcome unknown, "
                        f"not in the venue's history yet ({error}); reconciliation decides",
                        {"client_id": cid, "symbol": r.symbol},
                    )
                    return None
                change = found
            else:
                await self.t.ledger.set_intent_status(cid, IntentStatus.FAILED, now_ms=self.t.now(), error=error)
                await self.t._event(
                    EventKind.ALERT,
                    f"isolated margin change of {amount:f} USDT for {r.symbol} refused: {error}",
                    {"client_id": cid, "symbol": r.symbol, "error": error},
                )
                return None
        await self.t.ledger.set_intent_status(cid, IntentStatus.DONE, now_ms=self.t.now())
        after = (r.margin + (amount if add else -amount)) / r.notional
        await self.t._event(
            EventKind.TRANSFER,
            f"isolated margin: {amount:f} USDT {verb} {r.symbol} (its ratio {r.ratio:.4f} -> {after:.4f})",
            {"client_id": cid, "symbol": r.symbol, "amount": amount, "add": add, "ratio": r.ratio, "after": after},
        )
        return change

    async def _write_ahead(self, r: IsolatedReading, amount: Decimal, add: bool, ts: int) -> str:
        n = 0
        payload: dict[str, Any] = {
            "venue": self.t.venue.name,  # the account: a dry-run ledger holds several paper accounts
            "symbol": r.symbol,
            "amount": str(amount),
            "add": add,
            "ratio": str(r.ratio),
        }
        while True:
            cid = margin_id(ts, n)
            intent = await self.t.ledger.create_intent(IntentKind.MARGIN, cid, now_ms=ts, payload=payload)
            if intent.status is IntentStatus.PENDING and intent.attempts == 0:
                break
            n += 1
        await self.t.ledger.set_intent_status(cid, IntentStatus.SENT, now_ms=self.t.now(), count_attempt=True)
        return cid

    async def _look_up(self, symbol: str, amount: Decimal, add: bool, since_ms: int) -> MarginChange | None:
        """The venue's record of this change, if it made it (bounded reads through the treasury's retry)."""
        rows = await self.t._read(lambda: self.t.venue.fetch_margin_changes(symbol, since_ms - 60_000))
        return next((c for c in rows if c.add is add and c.amount == amount and c.ts_ms >= since_ms - 60_000), None)
