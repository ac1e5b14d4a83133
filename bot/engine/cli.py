"""``fundbot run`` and ``fundbot demo`` (``fundbot control`` lives in ``bot.engine.control_cli``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import ccxt
import typer

from bot import early_signals
from bot.config import ConfigError, Mode, load_settings
from bot.engine.control_cli import register as control_register
from bot.engine.core import StartFailed
from bot.engine.daemon import Daemon, build_runtime
from bot.format import iso_utc
from bot.venues.errors import banned_until_ms, safe_error_text

CONNECTION_WAIT_S = 60.0  # an emulator started alongside (docker compose) loads its data first


def run_cmd(
    live: bool = typer.Option(False, "--live", help="Trade a real account (or the emulator's). Must be explicit."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Live market data, simulated account (the default). A start carries on the dry-run ledger's paper "
        "account (rebuilt from the ledger: balances, positions, orders); see --fresh.",
    ),
    fresh: bool = typer.Option(
        False,
        "--fresh",
        help="Dry run only: open a new paper account (paper-<start time>, 100000 USDT); the earlier one's pairs "
        "are closed in the ledger, its history stays.",
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
    wait_for_emulator: float = typer.Option(
        CONNECTION_WAIT_S,
        "--wait-for-emulator",
        min=0,
        help="Seconds to wait for the connection file to name a listening emulator (0: fail at once).",
    ),
) -> None:
    """Run the daemon until SIGTERM or SIGINT (exit 0 after a clean stop)."""
    if live and dry_run:
        raise typer.BadParameter("choose one of --live and --dry-run")
    if live and fresh:
        raise typer.BadParameter("a live account is the venue's: --fresh applies to --dry-run", param_hint="--fresh")
    settings = load_settings()
    mode = Mode.LIVE if live else Mode.DRY_RUN
    if mode is not settings.mode:
        settings = settings.model_copy(update={"mode": mode})
    setup_logging(settings.log_level)
    conn = connection_path(connection_file, settings.connection_file, wait_for_emulator)

    async def main() -> int:
        early = asyncio.Event()  # a SIGTERM while the runtime is built (migrations, markets) stops cleanly too
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, early.set)
        rt = await build_runtime(settings, mode=mode, connection_file=conn, close_only=close_only, fresh=fresh)
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
    except StartFailed as exc:  # transient venue errors for longer than engine.start_retry_s
        hint = ""
        if isinstance(exc.__cause__, ccxt.NetworkError):
            hint = "\nCheck the network (or run offline: `fundbot demo`)."
        typer.echo(f"fundbot: cannot reach the venue at start: {exc}{hint}", err=True)
        code = 1
    except ccxt.BaseError as exc:  # any other venue answer at start: one line, never a traceback
        typer.echo(f"fundbot: the venue refused the start: {safe_error_text(exc)}", err=True)
        code = 1
    except ValueError as exc:  # a start-up precondition (keys for live mode, emulator clock...)
        typer.echo(f"fundbot: {exc}", err=True)
        code = 2
    raise typer.Exit(code)


def connection_path(flag: Path | None, setting: Path | None, wait_s: float = CONNECTION_WAIT_S) -> Path | None:
    """The emulator connection file to run against (the flag wins), checked before anything starts so
    that a folder, a missing file or one left by an earlier run is named with the option or variable it
    came from. A file that is missing or names an emulator not listening yet is waited for (``wait_s``):
    an emulator starting next to the daemon rewrites it once it listens."""
    path, name = (flag, "--connection-file") if flag is not None else (setting, "FUNDBOT_CONNECTION_FILE")
    if path is None:
        return None
    if path.is_dir():
        raise ConfigError(
            f"{name}: {path} is a directory, not a connection file: give the JSON file `fundbot emulator` "
            "writes (e.g. var/emulator.json)" + ("" if flag is not None else ", or leave it empty for the real venue")
        )
    from bot.emulator.connection import emulator_listening

    deadline = time.monotonic() + wait_s
    why = emulator_listening(path)
    if why is not None and wait_s > 0:
        typer.echo(f"fundbot: waiting up to {wait_s:g} s for the emulator: {why}", err=True)
    while why is not None and time.monotonic() < deadline and not early_signals.requested():
        time.sleep(0.25)
        why = emulator_listening(path)
    if why is not None and early_signals.requested():
        raise typer.Exit(0)  # stopped while waiting: nothing ran
    if why is not None:
        raise ConfigError(
            f"{name}: {why}; start `fundbot emulator --connection-file {path}` first (it writes the file once it "
            "listens)"
        )
    return path


def setup_logging(level: str | int) -> None:
    """The daemon's log format at ``level``. ccxt logs every request with its headers and signed query
    (the API key among them) at DEBUG, so its loggers never go below INFO: secrets stay out of logs."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when something configured logging before
    root = logging.getLogger().level
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root))  # a line per run otherwise
    logging.getLogger("apprise").setLevel(max(logging.WARNING, root))  # "Sent ... notification." each time
    logging.getLogger("ccxt").setLevel(max(logging.INFO, root))


def register(app: typer.Typer) -> None:
    from bot.engine.demo import demo_cmd

    app.command("run")(run_cmd)
    control_register(app)
    app.command("demo")(demo_cmd)
