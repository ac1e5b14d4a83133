"""``fundbot control``: the operator's controls, written to the daemon's ledger (table ``controls``).

A running daemon reads them at every scan, and they stay in force across restarts until changed. Every
subcommand works on an existing ledger only (``--live`` for a daemon started with ``run --live``, else
the ``FUNDBOT_MODE`` one, or ``--url``): a missing ledger, a backtest's ledger or a ledger whose schema
is not this version's is refused with a message and nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from bot.config import load_settings
from bot.domain import PairState, parse_pair_symbol
from bot.ledger import db
from bot.ledger.controls import OPERATOR_SOURCE, Controls
from bot.ledger.models import Control, ControlKind
from bot.ledger.repository import Ledger
from bot.ops.cli import LEDGER_HINT, LIVE_OPTION, URL_OPTION
from bot.ops.format import iso_utc
from bot.ops.reads import LedgerNotFound, is_backtest_ledger, open_ledger

control_app = typer.Typer(
    help="Operator controls a running daemon reads from its ledger at every scan (they survive restarts).",
    no_args_is_help=True,
)
REASON_OPTION = typer.Option(None, "--reason", help="why (kept with the control and in the event log)")
JSON_OPTION = typer.Option(False, "--json", help="machine-readable JSON instead of text")
NOT_CLOSED = tuple(s for s in PairState if s is not PairState.CLOSED)


class ControlRefused(RuntimeError):
    """The control cannot be written as asked (no such pair...); the message says why."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def open_control_ledger(url: str) -> Ledger:
    """The daemon ledger at ``url``, refused when missing, a backtest's, or not at this version's schema
    (the controls table would be missing, or a newer daemon would read it differently)."""
    ledger = await open_ledger(url)  # never a new, empty ledger no daemon reads
    try:
        if await is_backtest_ledger(ledger):
            raise LedgerNotFound(f"{db.safe_url(url)} is a backtest's ledger, which no daemon reads")
        rev, head = await db.current(url), db.head_revision()
        if rev != head:
            raise LedgerNotFound(
                f"{db.safe_url(url)} has ledger schema {rev}, this fundbot writes {head}: run `fundbot db upgrade` "
                "(a daemon of this version does it at start) or use the fundbot that runs the daemon"
            )
    except BaseException:
        await ledger.close()
        raise
    return ledger


def _on_ledger(url: str | None, live: bool | None, work: Callable[[Ledger, str], Awaitable[str]], nothing: str) -> None:
    """``work(ledger, url)`` on the daemon's ledger; prints what it returns, or why nothing was done."""
    target = url or load_settings().resolved_database_url(live)

    async def run() -> str:
        async with await open_control_ledger(target) as ledger:
            return await work(ledger, db.safe_url(target))

    try:
        out = asyncio.run(run())
    except LedgerNotFound as err:
        hint = f" ({LEDGER_HINT})" if url is None and live is None else ""
        typer.echo(f"fundbot: {err}; {nothing}{hint}", err=True)
        raise typer.Exit(2) from None
    except ControlRefused as err:
        typer.echo(f"fundbot: {err}; {nothing}", err=True)
        raise typer.Exit(2) from None
    typer.echo(out)


def _symbol(text: str) -> str:
    try:
        return parse_pair_symbol(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="SYMBOL") from None


NEXT_SCAN = "the daemon using it applies it at its next scan"


@control_app.command("close-only")
def close_only_cmd(
    value: str = typer.Argument(..., help="on or off"),
    reason: str | None = REASON_OPTION,
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """No new pairs, held ones wound down (on), or back to normal (off)."""
    if value not in {"on", "off"}:
        raise typer.BadParameter("usage: fundbot control close-only on|off", param_hint="VALUE")

    async def write(ledger: Ledger, where: str) -> str:
        now = _wall_ms()
        if value == "on":
            _, changed = await ledger.set_control(
                ControlKind.CLOSE_ONLY, now_ms=now, source=OPERATOR_SOURCE, reason=reason
            )
        else:
            changed = await ledger.clear_control(ControlKind.CLOSE_ONLY, now_ms=now, source=OPERATOR_SOURCE) is not None
        if not changed:
            return f"close-only was already {value} in {where}; nothing changed"
        return f"close-only {value} written to {where}: {NEXT_SCAN}"

    _on_ledger(url, live, write, "nothing was switched")


@control_app.command("pause")
def pause_cmd(
    symbol: str = typer.Argument(..., help="the pair, e.g. SOL/USDT or SOLUSDT"),
    reason: str | None = REASON_OPTION,
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """No entries or increases on SYMBOL; a pair already held is kept (`exit` closes it)."""
    sym = _symbol(symbol)

    async def write(ledger: Ledger, where: str) -> str:
        _, changed = await ledger.set_control(
            ControlKind.PAUSE, now_ms=_wall_ms(), source=OPERATOR_SOURCE, symbol=sym, reason=reason
        )
        if not changed:
            return f"{sym} was already paused in {where}; nothing changed"
        return f"{sym} paused in {where}: no entries or increases; a held pair is kept; {NEXT_SCAN}"

    _on_ledger(url, live, write, "nothing was paused")


@control_app.command("resume")
def resume_cmd(
    symbol: str = typer.Argument(..., help="the pair, e.g. SOL/USDT or SOLUSDT"),
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Allow entries on SYMBOL again (undoes `pause`)."""
    sym = _symbol(symbol)

    async def write(ledger: Ledger, where: str) -> str:
        cleared = await ledger.clear_control(
            ControlKind.PAUSE, now_ms=_wall_ms(), source=OPERATOR_SOURCE, symbol=sym
        )
        if cleared is None:
            return f"{sym} was not paused in {where}; nothing changed"
        return f"{sym} resumed in {where}: entries allowed again; {NEXT_SCAN}"

    _on_ledger(url, live, write, "nothing was resumed")


@control_app.command("exit")
def exit_cmd(
    symbol: str = typer.Argument(..., help="the pair, e.g. SOL/USDT or SOLUSDT"),
    reason: str | None = REASON_OPTION,
    pause: bool = typer.Option(
        False, "--pause", help="also pause SYMBOL, so the strategy does not enter it again (`resume` allows it)"
    ),
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Close the pair held on SYMBOL (both legs) at the daemon's next scan, with your reason in its decision."""
    sym = _symbol(symbol)

    async def write(ledger: Ledger, where: str) -> str:
        held = [p for p in await ledger.list_pairs(NOT_CLOSED) if p.symbol == sym]
        if not held:
            raise ControlRefused(f"{where} holds no open pair of {sym}")
        pair = max(held, key=lambda p: (p.opened_ms, p.id))  # an earlier dry run's pair is closed at start
        lines = []
        if pause:  # first: a scan between the two writes then keeps the pair instead of re-entering after it
            _, paused = await ledger.set_control(
                ControlKind.PAUSE, now_ms=_wall_ms(), source=OPERATOR_SOURCE, symbol=sym, reason=reason
            )
            lines.append(f"{sym} {'paused' if paused else 'was already paused'}: no new entries on it")
        control, changed = await ledger.set_control(
            ControlKind.EXIT, now_ms=_wall_ms(), source=OPERATOR_SOURCE, symbol=sym, pair_id=pair.id, reason=reason
        )
        if not changed:
            return "\n".join(
                [*lines, f"the exit of {sym} pair #{pair.id} was already requested at {iso_utc(control.created_ms)}"]
            )
        out = f"exit of {sym} pair #{pair.id} requested in {where}: the daemon closes it at its next scan"
        if pair.state is PairState.QUARANTINED:
            out += " (the pair is quarantined: the exit waits until reconciliation releases it)"
        if not pause:
            out += f". The strategy may enter {sym} again at a later scan: add --pause (or `pause {sym}`) to prevent it"
        return "\n".join([*lines, out])

    _on_ledger(url, live, write, "nothing was requested")


@control_app.command("capital-limit")
def capital_limit_cmd(
    amount: str = typer.Argument(..., help="USDT the strategy may allocate at most, or off"),
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Cap the equity the strategy allocates; replaces the setting engine.capital_limit until `off`."""
    value = None if amount == "off" else _usdt(amount)

    async def write(ledger: Ledger, where: str) -> str:
        now = _wall_ms()
        if value is None:
            cleared = await ledger.clear_control(ControlKind.CAPITAL_LIMIT, now_ms=now, source=OPERATOR_SOURCE)
            if cleared is None:
                return f"no capital limit was set in {where}; nothing changed (the setting applies)"
            return f"capital limit cleared in {where}: the setting engine.capital_limit applies again; {NEXT_SCAN}"
        _, changed = await ledger.set_control(
            ControlKind.CAPITAL_LIMIT, now_ms=now, source=OPERATOR_SOURCE, value=value
        )
        text = f"{value.normalize():f} USDT"
        if not changed:
            return f"the capital limit was already {text} in {where}; nothing changed"
        return f"capital limit {text} written to {where} (replaces the setting engine.capital_limit): {NEXT_SCAN}"

    _on_ledger(url, live, write, "nothing was set")


def _usdt(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise typer.BadParameter(f"{text!r} is not a positive USDT amount (e.g. 5000), nor off", param_hint="AMOUNT")
    return value


@control_app.command("show")
def show_cmd(
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """The controls in force, the exit requests waiting and the last ones done."""

    async def read(ledger: Ledger, where: str) -> str:
        active = await ledger.controls()
        done = await ledger.control_history([ControlKind.EXIT], limit=5)
        if as_json:
            return json.dumps(_show_json(where, active, done), indent=2)
        return "\n".join(_show_lines(where, active, done))

    _on_ledger(url, live, read, "nothing to show")


def _row(c: Control) -> dict[str, Any]:
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


def _show_json(where: str, active: list[Control], done: list[Control]) -> dict[str, Any]:
    state = Controls.of(active)
    return {
        "ledger": where,
        "close_only": state.close_only,
        "capital_limit": None if state.capital_limit is None else f"{state.capital_limit.normalize():f}",
        "paused": sorted(state.paused),
        "active": [_row(c) for c in active],
        "recent_exits": [_row(c) for c in done],
    }


def _since(c: Control) -> str:
    why = f": {c.reason}" if c.reason else ""
    return f"since {iso_utc(c.created_ms)} ({c.source}{why})"


def _show_lines(where: str, active: list[Control], done: list[Control]) -> list[str]:
    by_kind: dict[ControlKind, list[Control]] = {k: [] for k in ControlKind}
    for c in active:
        by_kind[c.kind].append(c)
    lines = [f"controls in {where} (a daemon on this ledger applies them at every scan)"]
    close_only = by_kind[ControlKind.CLOSE_ONLY]
    lines.append(f"close-only     {'on ' + _since(close_only[0]) if close_only else 'off'}")
    limit = by_kind[ControlKind.CAPITAL_LIMIT]
    lines.append(
        f"capital limit  {limit[0].value.normalize():f} USDT {_since(limit[0])}, replaces engine.capital_limit"
        if limit and limit[0].value is not None
        else "capital limit  not set: the setting engine.capital_limit applies"
    )
    paused = by_kind[ControlKind.PAUSE]
    lines.append("paused         none" if not paused else "paused")
    lines += [f"  {c.symbol} {_since(c)}" for c in paused]
    exits = by_kind[ControlKind.EXIT]
    lines.append("exit requests  none waiting" if not exits else "exit requests")
    lines += [f"  {c.symbol} pair #{c.pair_id} waiting {_since(c)}" for c in exits]
    if done:
        lines.append("recent exits")
        lines += [
            f"  {c.symbol} pair #{c.pair_id} {c.status.value} at {iso_utc(c.updated_ms)}: {c.note or '-'}"
            for c in done
        ]
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(control_app, name="control")
