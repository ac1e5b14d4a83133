"""``fundbot run`` and ``fundbot demo`` (``fundbot control`` lives in ``bot.engine.control_cli``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import ccxt
import typer

from bot import early_signals
from bot.config import Mode, load_settings
from bot.engine.control_cli import register as control_register
from bot.engine.daemon import Daemon, build_runtime
from bot.ops.format import iso_utc
from bot.venues.errors import banned_until_ms, safe_error_text


def run_cmd(
    live: bool = typer.Option(False, "--live", help="Trade a real account (or the emulator's). Must be explicit."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Live market data, simulated in-memory account (the default). Each run is a fresh paper account "
        "(paper-<start time> in the dry-run ledger); pairs of earlier runs are closed at start.",
    ),
    connection_file: Path | None = typer.Option(
        None, "--connection-file", help="Run against the emulator described by this file (from `fundbot emulator`)."
    ),
    close_only: bool = typer.Option(
        False,
        "--close-only",
        help="No new pairs; wind the held ones down. Turns the ledger's close-only control on, so it stays on "
        "after this run until `fundbot control close-only off`.",
    ),
) -> None:
    """Run the daemon until SIGTERM or SIGINT (exit 0 after a clean stop)."""
    if live and dry_run:
        raise typer.BadParameter("choose one of --live and --dry-run")
    settings = load_settings()
    mode = Mode.LIVE if live else Mode.DRY_RUN
    if mode is not settings.mode:
        settings = settings.model_copy(update={"mode": mode})
    setup_logging(settings.log_level)
    conn = connection_file or settings.connection_file

    async def main() -> int:
        early = asyncio.Event()  # a SIGTERM while the runtime is built (migrations, markets) stops cleanly too
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, early.set)
        rt = await build_runtime(settings, mode=mode, connection_file=conn, close_only=close_only)
        daemon = Daemon(rt, settings)
        if early.is_set() or early_signals.requested():  # also one that came while modules were imported
            daemon.request_stop()
        return await daemon.run()

    try:
        code = asyncio.run(main())
    except ccxt.DDoSProtection as exc:  # before NetworkError, its parent: the network is fine
        until = banned_until_ms(exc)
        when = f" until {iso_utc(until)}" if until else ""
        typer.echo(
            f"fundbot: the venue is rate limiting this IP (HTTP 429/418){when}; start again after that: "
            f"{safe_error_text(exc)}",
            err=True,
        )
        code = 1
    except ccxt.NetworkError as exc:
        typer.echo(
            f"fundbot: cannot reach the venue at start: {safe_error_text(exc)}\n"
            "Check the network (or run offline: `fundbot demo`, or `fundbot emulator` then `fundbot run "
            "--connection-file var/emulator.json`).",
            err=True,
        )
        code = 1
    except ccxt.AuthenticationError as exc:
        typer.echo(f"fundbot: the venue refused the API key: {safe_error_text(exc)}", err=True)
        code = 1
    except ValueError as exc:  # a start-up precondition (keys for live mode, emulator clock...)
        typer.echo(f"fundbot: {exc}", err=True)
        code = 2
    raise typer.Exit(code)


def setup_logging(level: str | int) -> None:
    """The daemon's log format at ``level``. ccxt logs every request with its headers and signed query
    (the API key among them) at DEBUG, so its loggers never go below INFO: secrets stay out of logs."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when something configured logging before
    root = logging.getLogger().level
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root))  # a line per run otherwise
    logging.getLogger("ccxt").setLevel(max(logging.INFO, root))


def register(app: typer.Typer) -> None:
    from bot.engine.demo import demo_cmd

    app.command("run")(run_cmd)
    control_register(app)
    app.command("demo")(demo_cmd)
