"""The daily summary's text (the same figures as ``fundbot report --since 1d`` and ``fundbot status``): a view
of the ledger, handed to the notifier (``bot.services.notify``) by the daemon so the service never imports
the views."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import DAY_MS, ZERO
from bot.format import fmt_dec
from bot.ledger.models import EventKind
from bot.ledger.reads import select_events
from bot.ledger.repository import Ledger
from bot.ops.report import collect_report
from bot.ops.status import collect_status


async def daily_summary(ledger: Ledger, now_ms: int) -> str:
    """The last 24 h in a few lines: equity, funding, fees, the net, the pairs held, alerts and errors."""
    rep = await collect_report(ledger, now_ms, since_ms=now_ms - DAY_MS)
    st = await collect_status(ledger, now_ms)
    day = await select_events(ledger, since_ms=now_ms - DAY_MS, kinds=[EventKind.ALERT.value, EventKind.ERROR.value])
    alerts = sum(1 for ev, _ in day if ev.kind is EventKind.ALERT)
    t, e = rep["total"], rep["equity"]
    lines = []
    if e["last"] is not None:
        lines.append(f"equity {fmt_dec(e['last'], 2)} USDT ({fmt_dec(e['change'], 2, signed=True)} in 24 h)")
    lines.append(
        f"funding {fmt_dec(t['funding'], 2, signed=True)}, fees {fmt_dec(t['fees'], 2, signed=True)}, "
        f"price and basis {fmt_dec(_sum(t['price'], t['basis']), 2, signed=True)}, "
        f"net {fmt_dec(t['net'], 2, signed=True)} USDT"
    )
    pairs = st["pairs"]
    held = ", ".join(f"{p['symbol']} ({fmt_dec(p['funding_earned'], 2, signed=True)})" for p in pairs)
    lines.append(f"{len(pairs)} pairs held: {held}" if pairs else "no pair held")
    ratio = st["collateral"]["ratio"]
    if ratio is not None:
        lines.append(f"collateral ratio {fmt_dec(ratio, 3)}")
    lines.append(f"{alerts} alerts and {len(day) - alerts} errors in 24 h")
    return "\n".join(lines)


def _sum(*values: Decimal | None) -> Decimal | None:
    if any(v is None for v in values):
        return None
    return sum((v for v in values if v is not None), ZERO)
