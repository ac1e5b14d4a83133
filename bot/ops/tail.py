"""``fundbot tail``: the ledger's event log, one readable line per event, optionally following new ones.

Decision lines say why: the rule, the score, the break-even hours and the forecast, read from the
strategy's ``Reason.to_dict()`` in the event details (fields that are missing are left out, never guessed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rich.text import Text

from bot.format import fmt_dec, fmt_pct, fmt_qty, iso_utc, to_jsonable
from bot.ledger.models import Event
from bot.ledger.reads import decision_reason, decision_target, last_event_id, select_events, symbols_of, to_dec
from bot.ledger.repository import Ledger

KIND_STYLES = {
    "decision": "cyan",
    "order": "blue",
    "fill": "green",
    "transfer": "magenta",
    "funding": "yellow",
    "alert": "bold red",
    "error": "red",
    "info": "dim",
    "reconcile": "white",
    "rate_limit": "bold yellow",
    "ledger_outage": "bold red",
}

DEFAULT_BACKLOG = 50


def _kv(label: str, value: str | None) -> str | None:
    return None if value in (None, "", "-") else f"{label}={value}"


def decision_summary(details: dict[str, Any] | None, *, with_message: bool = True) -> str:
    """'enter 0.5 rule=enter_carry score=12.34 break-even=5.2h apr=21.50% net-apr=18.00%: message'."""
    d = decision_target(details)
    reason = decision_reason(details)
    econ = found if isinstance(found := reason.get("economics"), dict) else {}
    parts = [
        str(d.get("action") or reason.get("action") or "").strip() or None,
        fmt_qty(to_dec(d.get("target_qty"))) if d.get("target_qty") is not None else None,
        _kv("rule", reason.get("rule")),
        _kv("score", fmt_dec(to_dec(econ.get("score")))),
    ]
    be = to_dec(econ.get("break_even_hours"))
    if "break_even_hours" in econ:
        parts.append(f"break-even={fmt_dec(be, 1)}h" if be is not None else "break-even=never")
    apr = to_dec(econ.get("forecast_apr"))
    parts.append(_kv("apr", fmt_pct(apr, 2) if apr is not None else None))
    net = to_dec(econ.get("net_apr"))
    parts.append(_kv("net-apr", fmt_pct(net, 2) if net is not None else None))
    parts.append(_kv("notional", fmt_dec(to_dec(econ.get("notional")))))
    text = " ".join(p for p in parts if p)
    message = reason.get("message")
    if message and with_message:
        text = f"{text}: {message}" if text else str(message)
    return text


def _scalar_details(details: dict[str, Any], skip: Sequence[str] = ()) -> str:
    """A few scalar key=value pairs from details (nested structures are left for --json)."""
    out = []
    for k, v in details.items():
        if k in skip or isinstance(v, dict | list) or v is None or v == "":
            continue
        out.append(f"{k}={v}")
        if len(out) == 6:
            break
    return " ".join(out)


def event_summary(kind: str, message: str, details: dict[str, Any] | None) -> str:
    """The text after the symbol on a tail line."""
    d = details if isinstance(details, dict) else {}
    if kind == "decision":
        reason_message = str(decision_reason(d).get("message") or "")
        why = decision_summary(d, with_message=not (reason_message and reason_message in message))
        if not why:
            return message
        return f"{message} | {why}" if message else why
    extra = _scalar_details(d, skip=("message",))
    return f"{message}  [{extra}]" if extra else message


def event_line(ev: Event, symbol: str | None) -> Text:
    """One coloured line: time, id, kind, symbol, summary."""
    kind = str(ev.kind.value if hasattr(ev.kind, "value") else ev.kind)
    style = KIND_STYLES.get(kind, "white")
    line = Text()
    line.append(iso_utc(ev.ts_ms), style="dim")
    line.append(f" #{ev.id:<5} ", style="dim")
    line.append(f"{kind.upper():<9}", style=style)
    line.append(f" {symbol or '-':<14} ", style="bold")
    line.append(event_summary(kind, ev.message, ev.details), style=style if kind in ("alert", "error") else "")
    return line


def event_json(ev: Event, symbol: str | None) -> dict[str, Any]:
    kind = str(ev.kind.value if hasattr(ev.kind, "value") else ev.kind)
    return {
        "id": ev.id,
        "ts_ms": ev.ts_ms,
        "time": iso_utc(ev.ts_ms),
        "kind": kind,
        "symbol": symbol,
        "pair_id": ev.pair_id,
        "message": ev.message,
        "details": to_jsonable(ev.details),
    }


Emit = Callable[[Text | str], None]


async def tail_events(
    ledger: Ledger,
    emit: Emit,
    *,
    as_json: bool = False,
    since_ms: int | None = None,
    kinds: Sequence[str] | None = None,
    pair_symbol: str | None = None,
    backlog: int = DEFAULT_BACKLOG,
    follow: bool = False,
    interval_s: float = 1.0,
    max_polls: int | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> int:
    """Print matching events, then (with ``follow``) poll for newer ones by id; returns the last id shown.

    Without ``since_ms`` the backlog is the last ``backlog`` events. ``max_polls`` bounds the follow loop
    (tests, scripts); None follows until cancelled (Ctrl-C).
    """

    def show(rows: list[tuple[Event, str | None]]) -> int:
        last = 0
        for ev, sym in rows:
            emit(json.dumps(event_json(ev, sym), separators=(",", ":")) if as_json else event_line(ev, sym))
            last = ev.id
        return last

    filters: dict[str, Any] = {"kinds": kinds, "pair_symbol": pair_symbol}
    top = await last_event_id(ledger)  # read first: anything newer is either shown now or polled later
    if since_ms is not None:
        rows = await select_events(ledger, since_ms=since_ms, **filters)
    else:
        rows = list(reversed(await select_events(ledger, limit=backlog, newest_first=True, **filters)))
    show(rows)
    last_id = max(top, rows[-1][0].id if rows else 0)
    wanted = set(symbols_of(pair_symbol)) if pair_symbol else None
    polls = 0
    while follow and (max_polls is None or polls < max_polls):
        await sleep(interval_s)
        polls += 1
        # Read everything newer and filter here, so the position moves past non-matching events without
        # a second query (and without a window in which a matching event could be skipped).
        new = await select_events(ledger, after_id=last_id)
        if new:
            last_id = new[-1][0].id
        show([(ev, sym) for ev, sym in new if _matches(ev, sym, kinds, wanted)])
    return last_id


def _matches(ev: Event, symbol: str | None, kinds: Sequence[str] | None, wanted: set[str] | None) -> bool:
    kind = str(ev.kind.value if hasattr(ev.kind, "value") else ev.kind)
    if kinds and kind not in kinds:
        return False
    return wanted is None or (symbol is not None and symbol in wanted)
