"""The operator's control actions, shared by ``fundbot control`` and the HTTP API (one set of rules).

Each action changes the ledger's ``controls`` table through ``Ledger.set_control`` / ``clear_control``
(which also write the audit event) and returns what happened in words. ``source`` says who asked
(``cli``, ``api``); ``where`` names the ledger in the messages; ``when`` says when the daemon applies
it (the CLI: at its next scan; the API: at a scan the daemon starts at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain import PairState
from bot.format import iso_utc
from bot.ledger.controls import Controls
from bot.ledger.models import Control, ControlKind, EventKind
from bot.ledger.repository import Ledger

NOT_CLOSED = tuple(s for s in PairState if s is not PairState.CLOSED)
NEXT_SCAN = "the daemon using it applies it at its next scan"
ORPHAN_REQUESTS = (ControlKind.ADOPT, ControlKind.CLOSE_ORPHAN)


class ControlRefused(RuntimeError):
    """The control cannot be written as asked (no such pair...); the message says why."""


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    changed: bool
    message: str


def parse_usdt(text: str) -> Decimal:
    """A positive USDT amount; ValueError naming the expected form otherwise."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{text!r} is not a positive USDT amount (e.g. 5000), nor off")
    return value


async def set_close_only(
    ledger: Ledger, on: bool, *, now_ms: int, source: str, where: str, reason: str | None = None, when: str = NEXT_SCAN
) -> ControlOutcome:
    value = "on" if on else "off"
    if on:
        _, changed = await ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=now_ms, source=source, reason=reason)
    else:
        changed = await ledger.clear_control(ControlKind.CLOSE_ONLY, now_ms=now_ms, source=source) is not None
    if not changed:
        return ControlOutcome(False, f"close-only was already {value} in {where}; nothing changed")
    return ControlOutcome(True, f"close-only {value} written to {where}: {when}")


async def pause(
    ledger: Ledger,
    symbol: str,
    *,
    now_ms: int,
    source: str,
    where: str,
    reason: str | None = None,
    when: str = NEXT_SCAN,
) -> ControlOutcome:
    _, changed = await ledger.set_control(ControlKind.PAUSE, now_ms=now_ms, source=source, symbol=symbol, reason=reason)
    if not changed:
        return ControlOutcome(False, f"{symbol} was already paused in {where}; nothing changed")
    return ControlOutcome(True, f"{symbol} paused in {where}: no entries or increases; a held pair is kept; {when}")


async def resume(
    ledger: Ledger, symbol: str, *, now_ms: int, source: str, where: str, when: str = NEXT_SCAN
) -> ControlOutcome:
    cleared = await ledger.clear_control(ControlKind.PAUSE, now_ms=now_ms, source=source, symbol=symbol)
    if cleared is None:
        return ControlOutcome(False, f"{symbol} was not paused in {where}; nothing changed")
    return ControlOutcome(True, f"{symbol} resumed in {where}: entries allowed again; {when}")


async def request_exit(
    ledger: Ledger,
    symbol: str,
    *,
    now_ms: int,
    source: str,
    where: str,
    reason: str | None = None,
    also_pause: bool = False,
    when: str = "the daemon closes it at its next scan",
    pause_hint: str = "pause it too",
) -> ControlOutcome:
    """Ask the engine to close the pair held on ``symbol``; ControlRefused when none is held."""
    held = [p for p in await ledger.list_pairs(NOT_CLOSED) if p.symbol == symbol]
    if not held:
        raise ControlRefused(f"{where} holds no open pair of {symbol}")
    pair = max(held, key=lambda p: (p.opened_ms, p.id))  # an earlier dry run's pair is closed at start
    lines = []
    changed_any = False
    if also_pause:  # first: a scan between the two writes then keeps the pair instead of re-entering after it
        _, paused = await ledger.set_control(
            ControlKind.PAUSE, now_ms=now_ms, source=source, symbol=symbol, reason=reason
        )
        changed_any = paused
        lines.append(f"{symbol} {'paused' if paused else 'was already paused'}: no new entries on it")
    control, changed = await ledger.set_control(
        ControlKind.EXIT, now_ms=now_ms, source=source, symbol=symbol, pair_id=pair.id, reason=reason
    )
    if not changed:
        lines.append(f"the exit of {symbol} pair #{pair.id} was already requested at {iso_utc(control.created_ms)}")
        return ControlOutcome(changed_any, "\n".join(lines))
    out = f"exit of {symbol} pair #{pair.id} requested in {where}: {when}"
    if pair.state is PairState.QUARANTINED:
        out += " (the pair is quarantined: the exit waits until reconciliation releases it)"
    if not also_pause:
        out += f". The strategy may enter {symbol} again at a later scan: {pause_hint} to prevent it"
    return ControlOutcome(True, "\n".join([*lines, out]))


async def request_orphan_answer(
    ledger: Ledger,
    symbol: str,
    kind: ControlKind,
    *,
    now_ms: int,
    source: str,
    where: str,
    reason: str | None = None,
    when: str = "at its next scan",
) -> ControlOutcome:
    """Ask the daemon to adopt (``ControlKind.ADOPT``) or close (``CLOSE_ORPHAN``) the orphan legs that
    reconciliation found on ``symbol``; ControlRefused when there are none, a pair holds the symbol, or
    (adopt) the legs last seen were not equal within one lot."""
    what = "adopt" if kind is ControlKind.ADOPT else "close"
    held = [p for p in await ledger.list_pairs(NOT_CLOSED) if p.symbol == symbol]
    if held:
        raise ControlRefused(
            f"{symbol} is held as pair #{held[0].id} in {where}, not orphan legs: nothing to {what} "
            f"(`fundbot control exit {symbol}` closes the pair)"
        )
    block = next((c for c in await ledger.controls() if c.kind is ControlKind.ORPHAN and c.symbol == symbol), None)
    if block is None:
        raise ControlRefused(
            f"no orphan legs are recorded on {symbol} in {where}: the daemon records them at start and at "
            "each reconciliation (`fundbot control show` lists them)"
        )
    if kind is ControlKind.ADOPT and not await _adoptable(ledger, block):
        raise ControlRefused(f"{symbol} cannot be adopted: {block.reason}")
    control, changed = await ledger.set_control(kind, now_ms=now_ms, source=source, symbol=symbol, reason=reason)
    if not changed:
        return ControlOutcome(False, f"the {what} of {symbol} was already requested at {iso_utc(control.created_ms)}")
    seen = (block.reason or "").split(";")[0]
    if kind is ControlKind.ADOPT:
        does = "re-reads the venue's legs and makes them a pair it manages"
    else:
        does = "re-reads the venue's legs and trades them to flat (sells the coin, buys back the short)"
    return ControlOutcome(
        True,
        f"{what} of {symbol} requested in {where} (last seen: {seen}): the daemon {does} {when}; "
        "if they changed it refuses with an alert",
    )


async def _adoptable(ledger: Ledger, block: Control) -> bool:
    """What reconciliation said of the legs behind ``block`` (its alert's details); True if unknown."""
    alerts = await ledger.events(kinds=[EventKind.ALERT], symbol=block.symbol, limit=20, newest_first=True)
    for event in alerts:
        details = event.details or {}
        if details.get("alert") == "orphan_position" and details.get("control_id") == block.id:
            return bool(details.get("adoptable", True))
    return True


async def set_capital_limit(
    ledger: Ledger, value: Decimal | None, *, now_ms: int, source: str, where: str, when: str = NEXT_SCAN
) -> ControlOutcome:
    """``value`` None clears the limit (the setting ``engine.capital_limit`` applies again)."""
    if value is None:
        cleared = await ledger.clear_control(ControlKind.CAPITAL_LIMIT, now_ms=now_ms, source=source)
        if cleared is None:
            return ControlOutcome(False, f"no capital limit was set in {where}; nothing changed (the setting applies)")
        return ControlOutcome(
            True, f"capital limit cleared in {where}: the setting engine.capital_limit applies again; {when}"
        )
    _, changed = await ledger.set_control(ControlKind.CAPITAL_LIMIT, now_ms=now_ms, source=source, value=value)
    text = f"{value.normalize():f} USDT"
    if not changed:
        return ControlOutcome(False, f"the capital limit was already {text} in {where}; nothing changed")
    return ControlOutcome(
        True, f"capital limit {text} written to {where} (replaces the setting engine.capital_limit): {when}"
    )


def control_row(c: Control) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind.value,
        "symbol": c.symbol,
        "pair_id": c.pair_id,
        "status": c.status.value,
        "value": None if c.value is None else f"{c.value.normalize():f}",
        "reason": c.reason,
        "source": c.source,
        "note": c.note,
        "created_ms": c.created_ms,
        "updated_ms": c.updated_ms,
    }


def controls_json(where: str, active: list[Control], done: list[Control]) -> dict[str, Any]:
    """The controls in force and the last exit requests carried out (``control show --json``, the API)."""
    state = Controls.of(active)
    return {
        "ledger": where,
        "close_only": state.close_only,
        "capital_limit": None if state.capital_limit is None else f"{state.capital_limit.normalize():f}",
        "paused": sorted(state.paused),
        "orphans": sorted(state.orphans),
        "active": [control_row(c) for c in active],
        "recent_exits": [control_row(c) for c in done],
    }


async def read_controls(ledger: Ledger, where: str, recent: int = 5) -> dict[str, Any]:
    active = await ledger.controls()
    done = await ledger.control_history([ControlKind.EXIT], limit=recent)
    return controls_json(where, active, done)
