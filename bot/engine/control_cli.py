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
from decimal import Decimal

import typer

from bot.config import load_settings
from bot.domain import parse_pair_symbol
from bot.format import iso_utc
from bot.ledger import db
from bot.ledger.controls import OPERATOR_SOURCE
from bot.ledger.models import Control, ControlKind
from bot.ledger.reads import LedgerNotFound, is_backtest_ledger, open_ledger
from bot.ledger.repository import Ledger
from bot.ops import controls as actions
from bot.ops.cli import LEDGER_HINT, LIVE_OPTION, URL_OPTION
from bot.ops.controls import ORPHAN_REQUESTS, ControlRefused

control_app = typer.Typer(
    help="Operator controls a running daemon reads from its ledger at every scan (they survive restarts).",
    no_args_is_help=True,
)
REASON_OPTION = typer.Option(None, "--reason", help="why (kept with the control and in the event log)")
JSON_OPTION = typer.Option(False, "--json", help="machine-readable JSON instead of text")


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
        done = await actions.set_close_only(
            ledger, value == "on", now_ms=_wall_ms(), source=OPERATOR_SOURCE, where=where, reason=reason
        )
        return done.message

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
        done = await actions.pause(ledger, sym, now_ms=_wall_ms(), source=OPERATOR_SOURCE, where=where, reason=reason)
        return done.message

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
        return (await actions.resume(ledger, sym, now_ms=_wall_ms(), source=OPERATOR_SOURCE, where=where)).message

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
        done = await actions.request_exit(
            ledger,
            sym,
            now_ms=_wall_ms(),
            source=OPERATOR_SOURCE,
            where=where,
            reason=reason,
            also_pause=pause,
            pause_hint=f"add --pause (or `pause {sym}`)",
        )
        return done.message

    _on_ledger(url, live, write, "nothing was requested")


def _answer_orphan(symbol: str, kind: ControlKind, reason: str | None, url: str | None, live: bool | None) -> None:
    """File the operator's answer (adopt or close) to the orphan legs on ``symbol``."""
    sym = _symbol(symbol)

    async def write(ledger: Ledger, where: str) -> str:
        done = await actions.request_orphan_answer(
            ledger, sym, kind, now_ms=_wall_ms(), source=OPERATOR_SOURCE, where=where, reason=reason
        )
        return done.message

    _on_ledger(url, live, write, "nothing was requested")


@control_app.command("adopt")
def adopt_cmd(
    symbol: str = typer.Argument(..., help="the pair, e.g. SOL/USDT or SOLUSDT"),
    reason: str | None = REASON_OPTION,
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Make the venue's orphan legs on SYMBOL (equal within one lot) a pair the daemon manages."""
    _answer_orphan(symbol, ControlKind.ADOPT, reason, url, live)


@control_app.command("close")
def close_cmd(
    symbol: str = typer.Argument(..., help="the pair, e.g. SOL/USDT or SOLUSDT"),
    reason: str | None = REASON_OPTION,
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Trade the venue's orphan legs on SYMBOL to flat (sell the coin, buy back the short) at the next scan."""
    _answer_orphan(symbol, ControlKind.CLOSE_ORPHAN, reason, url, live)


@control_app.command("capital-limit")
def capital_limit_cmd(
    amount: str = typer.Argument(..., help="USDT the strategy may allocate at most, or off"),
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Cap the equity the strategy allocates; replaces the setting engine.capital_limit until `off`."""
    value = None if amount == "off" else _usdt(amount)

    async def write(ledger: Ledger, where: str) -> str:
        done = await actions.set_capital_limit(ledger, value, now_ms=_wall_ms(), source=OPERATOR_SOURCE, where=where)
        return done.message

    _on_ledger(url, live, write, "nothing was set")


def _usdt(text: str) -> Decimal:
    try:
        return actions.parse_usdt(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="AMOUNT") from None


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
            return json.dumps(actions.controls_json(where, active, done), indent=2)
        answered = await ledger.control_history(ORPHAN_REQUESTS, limit=5)
        return "\n".join(_show_lines(where, active, done) + _answered_lines(answered))

    _on_ledger(url, live, read, "nothing to show")


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
    orphans = by_kind[ControlKind.ORPHAN]
    lines.append("orphan legs    none" if not orphans else "orphan legs (entries blocked)")
    lines += [f"  {c.symbol} {c.reason or ''} {_since(c)}" for c in orphans]
    answers = by_kind[ControlKind.ADOPT] + by_kind[ControlKind.CLOSE_ORPHAN]
    lines += [f"  {c.symbol} {c.kind.value} requested {_since(c)}" for c in answers]
    exits = by_kind[ControlKind.EXIT]
    lines.append("exit requests  none waiting" if not exits else "exit requests")
    lines += [f"  {c.symbol} pair #{c.pair_id} waiting {_since(c)}" for c in exits]
    if done:
        lines.append("recent exits")
        lines += [
            f"  {c.symbol} pair #{c.pair_id} {c.status.value} at {iso_utc(c.updated_ms)}: {c.note or '-'}" for c in done
        ]
    return lines


def _answered_lines(answered: list[Control]) -> list[str]:
    if not answered:
        return []
    lines = ["recent adopt / close answers"]
    return lines + [
        f"  {c.symbol} {c.kind.value} {c.status.value} at {iso_utc(c.updated_ms)}: {c.note or '-'}" for c in answered
    ]


def register(app: typer.Typer) -> None:
    app.add_typer(control_app, name="control")
