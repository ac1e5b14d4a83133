"""A transfer whose answer never came is settled by the venue's own transfer history, never presumed.

Matched by the venue's tranId when the ledger has it, otherwise by asset, amount and direction within a
window around the intent (the intent's clock): a signed request can still execute until its recvWindow
has passed (venue time, which an emulator at speed N stretches N-fold) and the bot's clock may differ
from the venue's, so a transfer written ahead at t is looked for in [t - window, t + window]. It is
called absent (failed) only once the venue's clock is past t + window and that whole span was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from bot.ledger.models import Intent
from bot.ledger.recorder import Recorder
from bot.venues.base import TransferResult, Venue

DEFAULT_WINDOW_MS = 60_000  # recvWindow (10 s) and clock differences, with room, at real-time speed

Outcome = Literal["done", "failed", "open"]


@dataclass(frozen=True, slots=True)
class TransferEvidence:
    """What the venue's history says: done / failed (with the venue's row when there is one) or still
    open (not decidable yet: a pending row, or the window has not passed)."""

    outcome: Outcome
    why: str
    row: TransferResult | None = None

    @property
    def tran_id(self) -> str | None:
        return self.row.tran_id if self.row is not None else None


def window_ms(time_scale: float, recv_window_ms: int) -> int:
    """The matching window at a run's time scale (venue seconds per real second)."""
    return max(DEFAULT_WINDOW_MS, int(2 * recv_window_ms * time_scale))


async def claimed_tran_ids(ledger: Recorder) -> set[str]:
    """TranIds the ledger already gives to a transfer: never matched to another one."""
    return {t.venue_tran_id for t in await ledger.list_transfers() if t.venue_tran_id}


async def transfer_evidence(
    venue: Venue, ledger: Recorder, intent: Intent, *, window: int, claimed: set[str]
) -> TransferEvidence:
    """Look the transfer intent up in the venue's history (``claimed``: tranIds taken by other rows)."""
    p = intent.payload
    row = await ledger.get_transfer(intent.client_id)
    start, end = intent.created_ms - window, intent.created_ms + window
    venue_now = await venue.now_ms()
    history = await venue.fetch_transfers(start, min(end, venue_now))
    if row is not None and row.venue_tran_id:
        known = next((t for t in history if t.tran_id == row.venue_tran_id), None)
        if known is None:  # the venue answered with it, yet its history lacks it: decide nothing
            return TransferEvidence("open", f"tranId {row.venue_tran_id} is not in the venue's history yet")
        return _from_row(known, f"tranId {known.tran_id} in the venue's history")
    amount, asset = Decimal(str(p["amount"])), str(p.get("asset", "USDT"))
    for t in history:
        if t.tran_id in claimed:
            continue
        if (t.asset, t.amount, t.from_wallet, t.to_wallet) == (asset, amount, p["from"], p["to"]):
            return _from_row(t, f"matched tranId {t.tran_id} ({t.amount:f} {t.asset} {t.from_wallet} -> {t.to_wallet})")
    if venue_now < end:
        return TransferEvidence("open", f"not in the venue's history yet; it may still execute until {end}")
    return TransferEvidence(
        "failed", f"not in the venue's transfer history from {start} to {end}: the venue never executed it"
    )


def _from_row(t: TransferResult, why: str) -> TransferEvidence:
    if t.status == "pending":
        return TransferEvidence("open", f"{why}: still pending at the venue", t)
    return TransferEvidence(t.status, f"{why}: {'confirmed' if t.status == 'done' else 'failed'} by the venue", t)
