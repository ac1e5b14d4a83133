"""The API's adopt / close POSTs: the same rules as ``fundbot control adopt`` / ``close``, source ``api``."""

from __future__ import annotations

from decimal import Decimal

from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import Ledger
from bot.orphans import RECONCILE_SOURCE, OrphanLegs

from .test_api import P, Served, served  # noqa: F401 (the fixture)


async def block_orphan_legs(ledger: Ledger, symbol: str, spot: str = "1.5", short: str = "1.5") -> None:
    """What reconciliation writes when it finds orphan legs on ``symbol`` (``OrphanWatch.review``)."""
    legs = OrphanLegs(symbol, Decimal(spot), Decimal(short), Decimal("0.001"), Decimal("0.001"))
    control, _ = await ledger.set_control(
        ControlKind.ORPHAN,
        now_ms=1,
        source=RECONCILE_SOURCE,
        symbol=symbol,
        value=legs.short,
        reason=f"{legs.figures()}; {legs.what_to_do()}",
    )
    details = {"alert": "orphan_position", "control_id": control.id, **legs.details()}
    await ledger.add_event(EventKind.ALERT, "orphan", ts_ms=1, symbol=symbol, details=details)


async def test_adopt_and_close_posts_file_requests_or_say_why_not(served: Served) -> None:  # noqa: F811
    await block_orphan_legs(served.ledger, "ETH/USDT", spot="0")
    _, st = await served.get(f"{P}/controls")
    assert st["orphans"] == ["ETH/USDT"]

    status, res = await served.post(f"{P}/controls/adopt", {"symbol": "ETH/USDT"})
    assert status == 409 and "venue short 1.5, spot 0" in res["error"] and not served.changes
    status, res = await served.post(f"{P}/controls/adopt", {"symbol": "BTC/USDT"})  # held as a pair
    assert status == 409 and "held as pair #1" in res["error"]
    status, res = await served.post(f"{P}/controls/close", {"symbol": "ETH/USDT", "reason": "not ours"})
    assert status == 200 and res["changed"] and "at a scan it starts now" in res["message"]
    assert served.changes == ["scan"]
    (req,) = [c for c in await served.ledger.controls() if c.kind is ControlKind.CLOSE_ORPHAN]
    assert (req.symbol, req.source, req.reason) == ("ETH/USDT", "api", "not ours")
