"""Round trips: each pair of the ledger from entry to exit, with what it cost and earned.

A pair row is one round trip (the ledger opens a new pair for each entry). Its fills, funding payments
and the executor's decisions (``pair_id``) give: entry and exit times (``opened_ms``/``closed_ms``), the
rules and messages of the first and the last decision, the hold in hours against the break-even the
entry decision's economics promised, funding, fees (``bot.ledger.attribution``), price PnL and net.

price = cash of both legs' fills (sells +, buys -) + what is left of each leg valued at a mark (the
leg's last fill price once closed: fee dust; the caller's marks while open) + the fees paid in the coin
(they are in ``fees``, not lost twice); net = funding + price - fees, which for a closed pair is exactly
the USDT it added to the account.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain import HOUR_MS, ZERO, Leg, PairState, Side, spot_symbol
from bot.ledger.attribution import Attribution, base_asset
from bot.ledger.models import Event, EventKind, Pair
from bot.ledger.recorder import Recorder

Marks = Mapping[str, Mapping[Leg, Decimal | None]]  # spot symbol -> leg -> price, for pairs still open


@dataclass(frozen=True)
class RoundTrip:
    pair_id: int
    symbol: str
    entry_ms: int
    exit_ms: int | None  # None: still open at the end
    entry_rule: str
    entry_reason: str
    exit_rule: str
    exit_reason: str
    hold_hours: float
    break_even_hours: float | None  # what the entry decision's economics said; None: unknown or never
    actions: int  # executor decisions on the pair (entry, resizes, rebalances, exit)
    fills: int
    funding: Decimal
    fees: Decimal  # positive: a cost
    price: Decimal | None  # None: open and no mark
    net: Decimal | None

    @property
    def held_past_break_even(self) -> bool | None:
        return None if self.break_even_hours is None else self.hold_hours >= self.break_even_hours

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as float: the report's analytics; the ledger keeps the Decimals)."""
        d = {k: float(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}
        d["held_past_break_even"] = self.held_past_break_even
        return d


def _reason(ev: Event | None) -> tuple[str, str, dict[str, Any]]:
    """(rule, message, economics) of an executor decision: the strategy's reason, else the bot's own."""
    if ev is None:
        return "", "", {}
    d = ev.details if isinstance(ev.details, dict) else {}
    reason = (d.get("target") or {}).get("reason") or {}
    if reason:
        return str(reason.get("rule", "")), str(reason.get("message", "")), reason.get("economics") or {}
    text = str(d.get("reason") or ev.message)
    rule, _, message = text.partition(": ")
    return (rule, message, {}) if message else (text, "", {})


def _hours(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(Decimal(str(value)))
    except InvalidOperation:
        return None


def _price_pnl(costs: list[Any], closed: bool, marks: Mapping[Leg, Decimal | None]) -> Decimal | None:
    cash = ZERO
    position: dict[Leg, Decimal] = defaultdict(lambda: ZERO)
    last_price: dict[Leg, Decimal] = {}
    coin_fees = ZERO
    for c in costs:
        f = c.fill
        signed = f.quantity if f.side is Side.BUY else -f.quantity
        cash -= signed * f.price
        position[f.market] += signed
        last_price[f.market] = f.price
        if f.fee_asset and f.fee_asset.upper() == base_asset(f.symbol).upper():
            position[f.market] -= f.fee
            coin_fees += f.fee * f.price
    left = ZERO
    for leg, qty in position.items():
        if qty == 0:
            continue
        mark = last_price[leg] if closed else marks.get(leg)
        if mark is None:
            return None
        left += qty * mark
    return cash + left + coin_fees


async def round_trips(ledger: Recorder, att: Attribution, end_ms: int, marks: Marks | None = None) -> list[RoundTrip]:
    """Every pair of the ledger, oldest first; ``att`` is the ledger's attribution (fees of its fills)."""
    decisions: dict[int, list[Event]] = defaultdict(list)
    for ev in await ledger.events(kinds=[EventKind.DECISION]):
        if ev.pair_id is not None:
            decisions[ev.pair_id].append(ev)
    fills: dict[int, list[Any]] = defaultdict(list)
    for c in att.fills:
        if c.fill.pair_id is not None:
            fills[c.fill.pair_id].append(c)
    funding: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for p in att.payments:
        if p.payment.pair_id is not None and p.amount is not None:
            funding[p.payment.pair_id] += p.amount
    out = []
    pairs: list[Pair] = sorted(await ledger.list_pairs(), key=lambda p: (p.opened_ms, p.id))
    for pair in pairs:
        evs = decisions.get(pair.id, [])
        costs = fills.get(pair.id, [])
        if not evs and not costs:
            continue
        closed = pair.state is PairState.CLOSED
        entry_rule, entry_msg, econ = _reason(evs[0] if evs else None)
        exit_rule, exit_msg, _ = _reason(evs[-1] if closed and evs else None)
        if not closed:
            exit_rule, exit_msg = "open", "still held at the end"
        sym = spot_symbol(pair.symbol)
        fees = sum((c.fee for c in costs if c.fee is not None), ZERO)
        price = _price_pnl(costs, closed, (marks or {}).get(sym, {}))
        exit_ms = pair.closed_ms if closed else None
        out.append(
            RoundTrip(
                pair_id=pair.id,
                symbol=sym,
                entry_ms=pair.opened_ms,
                exit_ms=exit_ms,
                entry_rule=entry_rule,
                entry_reason=entry_msg,
                exit_rule=exit_rule,
                exit_reason=exit_msg,
                hold_hours=((exit_ms if exit_ms is not None else end_ms) - pair.opened_ms) / HOUR_MS,
                break_even_hours=_hours(econ.get("break_even_hours")),
                actions=len(evs),
                fills=len(costs),
                funding=funding.get(pair.id, ZERO),
                fees=fees,
                price=price,
                net=None if price is None else funding.get(pair.id, ZERO) + price - fees,
            )
        )
    return out
