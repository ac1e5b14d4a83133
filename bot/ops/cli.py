"""``fundbot tail``, ``fundbot status`` and ``fundbot report``: the operator's view, read from the ledger.

All three take ``--url`` (default: the settings' ledger URL) so a live ledger, a dry-run ledger and a
backtest ledger are inspected the same way, and ``--json`` for machine-readable output.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from bot import early_signals
from bot.config import load_settings
from bot.domain import parse_pair_symbol
from bot.format import fmt_age, iso_utc, parse_kinds, parse_since
from bot.ledger.models import EventKind
from bot.ledger.reads import LedgerNotFound, ledger_clock, open_ledger
from bot.ledger.repository import Ledger
from bot.ops.report import collect_report, render_report, report_json
from bot.ops.status import collect_status, render_status, status_json
from bot.ops.tail import DEFAULT_BACKLOG, tail_events

T = TypeVar("T")

URL_OPTION = typer.Option(None, "--url", help="ledger URL (default: from settings, FUNDBOT_DATABASE_URL)")
LIVE_OPTION = typer.Option(
    None,
    "--live/--dry-run",
    help="without --url or FUNDBOT_DATABASE_URL: the ledger of a `run --live` (fundbot.db) or of a dry-run "
    "daemon (fundbot-dryrun.db); default: FUNDBOT_MODE",
)
LEDGER_HINT = "a daemon started with `fundbot run --live` keeps fundbot.db: add --live, or give --url"
JSON_OPTION = typer.Option(False, "--json", help="machine-readable JSON instead of coloured text")
SINCE_HELP = "only from this time: a span back from now (30m, 1h, 2d) or an ISO date/time (UTC)"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _url(url: str | None, live: bool | None = None) -> str:
    return url or load_settings().resolved_database_url(live)


def _since(text: str | None, now_ms: int) -> int | None:
    if not text:
        return None
    try:
        return parse_since(text, now_ms)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--since") from None


def _with_ledger(url: str, work: Callable[[Ledger], Awaitable[T]], hint: bool = False) -> T:
    """``work(ledger)`` on the existing ledger at ``url``; a missing one is a message (with where the live
    daemon's ledger is when ``hint``: the URL came from the mode, not from the user)."""

    async def run() -> T:
        ledger = await open_ledger(url)
        try:
            return await work(ledger)
        finally:
            await ledger.close()

    try:
        return asyncio.run(run())
    except LedgerNotFound as err:
        extra = f" ({LEDGER_HINT})" if hint else ""
        Console(stderr=True).print(f"[red]{escape(str(err))}[/red]{extra}", highlight=False)
        raise typer.Exit(2) from None


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _emit_lines(lines: list[Text]) -> None:
    console = _console()
    for line in lines:
        console.print(line)


def _echo_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _ended_note(ended_ms: int, wall_ms: int) -> str:
    return (
        f"the ledger's last event is at {iso_utc(ended_ms)}, {fmt_age(wall_ms - ended_ms)} before now (a backtest, "
        "a demo or a stopped daemon): times and ages count from it"
    )


def _pair(text: str | None) -> str | None:
    """--pair as the ledger stores it (BTC/USDT), from any form the other commands accept."""
    if text is None:
        return None
    try:
        return parse_pair_symbol(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--pair") from None


# not inline in tail_cmd's defaults: mypy misreads a comprehension there (python/mypy#9346)
_KINDS_HELP = f"comma-separated kinds: {','.join(k.value for k in EventKind)}"


def tail_cmd(
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events (Ctrl-C to stop)"),
    pair: str | None = typer.Option(None, "--pair", help="only this pair, e.g. BTC/USDT"),
    kind: str | None = typer.Option(None, "--kind", help=_KINDS_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    lines: int = typer.Option(DEFAULT_BACKLOG, "--lines", "-n", help="events shown when --since is not given"),
    interval: float = typer.Option(1.0, "--interval", help="seconds between polls with --follow"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    url: str | None = URL_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """Print the ledger's events, one line each; decisions say why (rule, score, break-even)."""
    pair = _pair(pair)
    kinds = parse_kinds(kind)
    known = {k.value for k in EventKind}
    for k in kinds or []:
        if k not in known:
            raise typer.BadParameter(f"unknown kind {k!r}; use {', '.join(sorted(known))}", param_hint="--kind")
    wall = _now_ms()
    _since(since, wall)  # a malformed --since is refused before the ledger is opened
    console = _console()

    def emit(item: Text | str) -> None:
        if isinstance(item, str):
            typer.echo(item)
        else:
            console.print(item)

    async def work(ledger: Ledger) -> int:
        now, ended = await ledger_clock(ledger, wall)
        if ended is not None and since and not as_json:
            emit(Text(_ended_note(ended, wall), style="dim"))
        return await tail_events(
            ledger,
            emit,
            as_json=as_json,
            since_ms=_since(since, now),
            kinds=kinds,
            pair_symbol=pair,
            backlog=lines,
            follow=follow,
            interval_s=interval,
        )

    if follow:  # `docker compose stop` / kill: a clean stop like Ctrl-C (exit 0), not death by signal
        signal.signal(signal.SIGTERM, _interrupt)
        if early_signals.requested():  # the signal came while the command line was still importing
            raise typer.Exit(0)
    try:
        _with_ledger(_url(url, live), work, hint=url is None and live is None)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def status_cmd(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION, live: bool | None = LIVE_OPTION) -> None:
    """Pairs, wallets, collateral ratio, open intents and the last errors, from the ledger."""
    wall = _now_ms()

    async def work(ledger: Ledger) -> dict[str, Any]:
        now, ended = await ledger_clock(ledger, wall)
        st = await collect_status(ledger, now)
        st["clock_note"] = _ended_note(ended, wall) if ended is not None else None
        return st

    st = _with_ledger(_url(url, live), work, hint=url is None and live is None)
    if as_json:
        _echo_json(status_json(st))
    else:
        _emit_lines(render_status(st))


def report_cmd(
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    pair: str | None = typer.Option(None, "--pair", help="only this pair, e.g. BTC/USDT"),
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
    live: bool | None = LIVE_OPTION,
) -> None:
    """PnL attribution (funding, price, basis, fees; slippage memo; transfers) reconciled with equity."""
    wall = _now_ms()
    since_ms = _since(since, wall)
    if since_ms is not None and since_ms > wall:
        raise typer.BadParameter(f"{iso_utc(since_ms)} is in the future", param_hint="--since")
    pair = _pair(pair)

    async def work(ledger: Ledger) -> dict[str, Any]:
        now, ended = await ledger_clock(ledger, wall)
        rep = await collect_report(ledger, now, since_ms=_since(since, now), pair_symbol=pair)
        if ended is not None:
            rep["notes"].append(_ended_note(ended, wall))
        return rep

    rep = _with_ledger(_url(url, live), work, hint=url is None and live is None)
    if as_json:
        _echo_json(report_json(rep))
    else:
        _emit_lines(render_report(rep))


def register(app: typer.Typer) -> None:
    app.command("tail")(tail_cmd)
    app.command("status")(status_cmd)
    app.command("report")(report_cmd)
