"""Write-ahead as another process sees it: every order and transfer the executor and the treasury hand to
the venue has its intent (and a transfer its row) committed, marked sent, before the call is made, and both
legs of an action are committed before either leaves. Read through a second connection to the same
database, so an uncommitted write would not be seen."""

from __future__ import annotations

from typing import Any

from bot.domain import Leg
from bot.execution import Executor, SimpleTarget
from bot.ledger.models import IntentKind, IntentStatus, TransferStatus
from bot.ledger.repository import Ledger
from bot.treasury import Treasury
from bot.venues.base import OrderRequest, OrderState, TransferResult
from execution.world import FAST, SYMBOL, TREASURY, D, make_world, no_sleep


class Watched:
    """The world's venue, reading the ledger from a second connection before each write reaches it."""

    def __init__(self, inner: Any, url: str) -> None:
        self.inner = inner
        self.url = url
        self.seen: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_order(self, req: OrderRequest) -> OrderState:
        async with await Ledger.open(self.url, migrate=False) as other:
            committed = {i.client_id: i for i in await other.list_intents([IntentKind.ORDER])}
        self.seen.append((req.client_order_id, committed))
        return await self.inner.create_order(req)

    async def transfer(self, asset: str, amount: D, from_wallet: Any, to_wallet: Any) -> TransferResult:
        async with await Ledger.open(self.url, migrate=False) as other:
            transfers = await other.list_transfers()
            intents = {i.client_id: i for i in await other.list_intents([IntentKind.TRANSFER])}
        self.seen.append(("transfer", (transfers, intents)))
        return await self.inner.transfer(asset, amount, from_wallet, to_wallet)


async def test_orders_and_transfers_leave_only_after_their_intents_are_committed(ledger: Ledger, db_url: str) -> None:
    world = make_world(ledger, spot_usdt="20000", futures_usdt="0")
    venue = Watched(world.venue, db_url)
    await venue.setup_symbol(SYMBOL, 3, "cross")
    treasury = Treasury(venue, ledger, TREASURY, world.now, sleep=no_sleep)
    executor = Executor(venue, ledger, world.now, FAST, funder=treasury, sleep=no_sleep)

    result = await executor.apply(SimpleTarget(SYMBOL, D("0.05")))

    assert result.status in {"done", "repaired"}, result
    (kind, (transfers, transfer_intents)), *orders = venue.seen
    assert kind == "transfer"  # the futures wallet is empty: the entry's margin is moved in first
    (row,) = transfers
    assert (row.status, row.attempts) == (TransferStatus.SENT, 1)
    assert (transfer_intents[row.client_id].status, transfer_intents[row.client_id].attempts) == (IntentStatus.SENT, 1)
    pair = await ledger.active_pair("sim", SYMBOL)
    assert pair is not None
    legs = {f"fb-{pair.id}-1-s": Leg.SPOT, f"fb-{pair.id}-1-p": Leg.PERP}
    assert {cid for cid, _ in orders} == set(legs)
    for sent, committed in orders:  # both legs' intents are there when either leaves, its own marked sent
        assert set(legs) <= set(committed)
        assert (committed[sent].status, committed[sent].attempts) == (IntentStatus.SENT, 1)
        # the legs leave together: the other one may already be answered (done) by the time this one's
        # second connection reads, never still unsent
        (other,) = set(legs) - {sent}
        assert committed[other].status in {IntentStatus.SENT, IntentStatus.DONE} and committed[other].attempts == 1
    assert await ledger.open_intents() == []  # and settled once the answers are recorded
