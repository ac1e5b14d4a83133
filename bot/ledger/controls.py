"""Operator controls as ledger state (table ``controls``): what is in force now, and how it changes.

The engine reads ``Controls`` at every scan; ``fundbot control`` changes them. A change is one
transaction that moves the rows and appends an info event (the audit trail), so the state and the log
never disagree (``Ledger.set_control``, ``clear_control`` and ``finish_request`` write both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.ledger.models import ACCOUNT, Control, ControlKind, ControlStatus, EventKind

OPERATOR_SOURCE = "cli"  # ``fundbot control``: its events read "operator ..."
API_SOURCE = "api"  # the daemon's HTTP API and its dashboard: "operator (API) ..."
ACTORS = {OPERATOR_SOURCE: "operator", API_SOURCE: "operator (API)"}


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """The operator asked for this pair to be closed; done once the engine has closed it."""

    control_id: int
    symbol: str
    pair_id: int | None
    reason: str | None
    source: str
    requested_ms: int


@dataclass(frozen=True, slots=True)
class Controls:
    """The controls in force, as the engine applies them at one scan."""

    close_only: bool = False
    capital_limit: Decimal | None = None
    paused: frozenset[str] = frozenset()
    exits: tuple[ExitRequest, ...] = ()
    orphans: frozenset[str] = frozenset()  # symbols blocked by legs on the venue that no pair explains
    orphan_requests: tuple[Control, ...] = ()  # the operator's adopt / close_orphan requests waiting

    @classmethod
    def of(cls, active: Iterable[Control]) -> Controls:
        """From the active rows (``Ledger.controls()``)."""
        close_only, limit, paused, exits, orphans, requests = False, None, set(), [], set(), []
        for c in active:
            if c.kind is ControlKind.CLOSE_ONLY:
                close_only = True
            elif c.kind is ControlKind.CAPITAL_LIMIT:
                limit = c.value
            elif c.kind is ControlKind.PAUSE:
                paused.add(c.symbol)
            elif c.kind is ControlKind.EXIT:
                exits.append(ExitRequest(c.id, c.symbol, c.pair_id, c.reason, c.source, c.created_ms))
            elif c.kind is ControlKind.ORPHAN:
                orphans.add(c.symbol)
            elif c.kind in (ControlKind.ADOPT, ControlKind.CLOSE_ORPHAN):
                requests.append(c)
        return cls(close_only, limit, frozenset(paused), tuple(exits), frozenset(orphans), tuple(requests))


def describe(c: Control, *, on: bool, source: str) -> str:
    """The event line of a change made by ``source``: ``on`` is the control put in force / a request filed."""
    actor = ACTORS.get(source, source)
    if c.kind is ControlKind.CLOSE_ONLY:
        text = f"{actor} set close-only {'on' if on else 'off'}"
    elif c.kind is ControlKind.CAPITAL_LIMIT:
        text = (
            f"{actor} set the capital limit to {c.value.normalize():f} USDT"
            if on and c.value is not None
            else f"{actor} cleared the capital limit (the setting applies again)"
        )
    elif c.kind is ControlKind.PAUSE:
        text = f"{actor} paused {c.symbol}: no entries" if on else f"{actor} resumed {c.symbol}: entries allowed"
    elif c.kind is ControlKind.ORPHAN:
        text = (
            f"{c.symbol}: entries blocked: the venue holds legs no pair explains"
            if on
            else f"{c.symbol}: entries no longer blocked"
        )
    elif c.kind in (ControlKind.ADOPT, ControlKind.CLOSE_ORPHAN):
        what = "adopt" if c.kind is ControlKind.ADOPT else "close"
        if on:
            text = f"{actor} asked to {what} the venue's legs on {c.symbol}"
        elif c.status is ControlStatus.DONE:
            text = f"{c.symbol}: operator {what} of the venue's legs carried out"
        else:
            text = f"{actor} withdrew the {what} of the venue's legs on {c.symbol}"
    elif on:
        text = f"{actor} asked to exit {c.symbol} (pair #{c.pair_id})"
    elif c.status is ControlStatus.DONE:
        text = f"{c.symbol}: operator exit of pair #{c.pair_id} done"
    else:
        text = f"{actor} withdrew the exit of {c.symbol} (pair #{c.pair_id})"
    if c.reason and (on or c.kind in (ControlKind.EXIT, ControlKind.ADOPT, ControlKind.CLOSE_ORPHAN)):
        text += f": {c.reason}"
    if c.note and not on:
        text += f" ({c.note})"
    return text


def event_row(c: Control, *, on: bool, ts_ms: int, source: str) -> dict[str, Any]:
    """The ``events`` row recording a change of ``c`` made by ``source``. Close-only keeps the details of
    the old event-only switch (``{"control": "close_only", "value": bool}``), which a downgraded daemon
    still reads."""
    value: Any = on
    if c.kind is ControlKind.CAPITAL_LIMIT:
        value = f"{c.value.normalize():f}" if on and c.value is not None else None
    details: dict[str, Any] = {
        "control": c.kind.value,
        "value": value,
        "control_id": c.id,
        "status": c.status.value,
        "source": source,
    }
    if c.reason:
        details["reason"] = c.reason
    if c.note:
        details["note"] = c.note
    return {
        "ts_ms": ts_ms,
        "kind": EventKind.INFO,
        "pair_id": c.pair_id,
        "symbol": None if c.symbol == ACCOUNT else c.symbol,
        "message": describe(c, on=on, source=source),
        "details": details,
    }
