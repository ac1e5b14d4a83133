"""``fundbot demo``: the whole product offline in one command.

It starts the Binance emulator in-process, replaying the bundled real history at high speed, runs the
daemon against it through the real ccxt (REST and WebSocket, TLS on loopback), prints the ledger's
event tail as it goes, and ends with the status summary. The daemon serves its dashboard on loopback
while the demo runs (a link with a token made for this run is printed; with FUNDBOT_HTTP__API_TOKEN set,
that token is used and not printed). Everything lands in ``--dir`` (default
``./var/demo``), so ``fundbot tail/status/report --url sqlite+aiosqlite:///var/demo/fundbot-demo.db``
work on it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from bot.config import Mode, load_settings
from bot.domain import DAY_MS, HOUR_MS
from bot.engine.daemon import Daemon, build_runtime
from bot.ledger.repository import Ledger
from bot.ops.status import collect_status, render_status
from bot.ops.tail import tail_events

DEMO_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "LTC/USDT", "ADA/USDT", "BNB/USDT"]
DEMO_START = "2025-07-21"  # a week of strong, broad positive funding in the bundled history


def demo_scenario(path: Path | None, start_ms: int, speed: float):
    """The emulator scenario for a compressed-time demo: request-weight limits scaled to the speed.

    Binance counts weight per real minute; at ``speed``x the daemon does a simulated minute's work every
    1/speed real minutes, so the limits (and the ban length) scale with it. The demo stays as polite per
    simulated minute as the bot is live. ``fundbot emulator`` keeps Binance's real limits.
    """
    from bot.emulator.faults import Scenario, load_scenario

    sc = load_scenario(path, start_ms) if path is not None else Scenario()
    limits = sc.rate_limits
    limits.per_minute = {family: int(w * speed) for family, w in limits.per_minute.items()}
    limits.ban_ms = max(int(limits.ban_ms / speed), 1000)
    return sc


def _ms(day: str) -> int:
    try:
        return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        raise typer.BadParameter(f"{day!r} is not a date like 2025-07-21") from None


def _free_port(port: int) -> int:
    """``port`` when it can be bound on loopback, else 0 (any free one): a daemon already on 8787 must not
    stop the demo."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


async def run_demo(
    out: Path,
    start_ms: int,
    days: float,
    speed: float,
    console: Console,
    scenario: Path | None = None,
    http_port: int | None = 8787,
) -> dict:
    """Emulator + daemon for ``days`` simulated days; returns the final status (plain data).
    ``http_port`` None: no dashboard."""
    from bot.emulator.server import run_emulator

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    db = f"sqlite+aiosqlite:///{(out / 'fundbot-demo.db').as_posix()}"
    own_token = load_settings().http.api_token.get_secret_value()
    token = own_token or secrets.token_urlsafe(24)
    port = _free_port(http_port) if http_port else 0
    settings = load_settings(
        mode=Mode.LIVE,
        data_dir=out,
        database_url=db,
        symbols=DEMO_SYMBOLS,
        engine={
            "scan_interval_s": 3600,
            "collateral_interval_s": 900,
            "snapshot_interval_s": 3600,
            "reconcile_interval_s": 6 * 3600,
            "funding_sync_delay_s": 60,
        },
        http={"enabled": http_port is not None, "host": "127.0.0.1", "port": port, "api_token": token},
    )
    conn_file = out / "emulator.json"
    end_ms = start_ms + int(days * DAY_MS)
    async with run_emulator(
        symbols=DEMO_SYMBOLS,
        start_ms=start_ms,
        speed=speed,
        connection_file=conn_file,
        state_dir=out / "emulator",
        scenario=demo_scenario(scenario, start_ms, speed),
    ) as handle:
        console.print(
            f"[bold]emulator[/bold] on https://127.0.0.1:{handle.info.https_port} replaying bundled Binance "
            f"history from {DEMO_START if start_ms == _ms(DEMO_START) else start_ms} at {speed:g}x; "
            f"ledger {out / 'fundbot-demo.db'}"
        )
        rt = await build_runtime(settings, mode=Mode.LIVE, connection_file=conn_file)
        daemon = Daemon(rt, settings)
        daemon_task = asyncio.ensure_future(daemon.run())
        reader = await Ledger.open(db, migrate=False)
        tail_task = asyncio.ensure_future(tail_events(reader, console.print, follow=True, interval_s=0.25, backlog=0))
        shown = http_port is None
        try:
            while rt.now() < end_ms and not daemon_task.done():
                if not shown and daemon.http_port is not None:
                    shown = True
                    _show_dashboard(console, daemon.http_port, http_port, None if own_token else token)
                await asyncio.sleep(0.25)
        finally:
            daemon.request_stop()
            code = await daemon_task
            stopped_ms = rt.now()
            await asyncio.sleep(0.5)  # let the tail show the last events
            tail_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail_task
        status = await collect_status(reader, max(end_ms, stopped_ms))
        await reader.close()
        if code != 0:
            raise RuntimeError(f"the daemon exited with {code}")
        return status


def _show_dashboard(console: Console, port: int, asked: int, token: str | None) -> None:
    url = f"http://127.0.0.1:{port}/"
    moved = f" (port {asked} was taken)" if asked and port != asked else ""
    if token is None:
        console.print(f"[bold]dashboard[/bold] {url}{moved}: sign in with your FUNDBOT_HTTP__API_TOKEN")
    else:  # a token made for this run: the fragment stays in the browser, never sent to the server
        console.print(f"[bold]dashboard[/bold] {url}#token={token}{moved} (open it while the demo runs)")


def demo_cmd(
    days: float = typer.Option(7.0, "--days", min=0.1, help="Simulated days to run."),
    speed: float = typer.Option(
        4320.0, "--speed", min=1.0, help="Simulated seconds per real second (4320: a simulated day in 20 s)."
    ),
    start: str = typer.Option(DEMO_START, "--start", help="First day of the replay (UTC, YYYY-MM-DD)."),
    out: Path = typer.Option(Path("var/demo"), "--dir", help="Where the demo's ledger and files go (replaced)."),
    scenario: Path | None = typer.Option(None, "--scenario", help="Emulator fault/shock scenario file."),
    http_port: int = typer.Option(
        8787, "--http-port", min=0, max=65535, help="Loopback port of the dashboard (0: any free port)."
    ),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Serve the dashboard while it runs."),
) -> None:
    """Offline end-to-end run: emulator replaying real history, the daemon trading it through ccxt."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    start_ms = _ms(start)
    status = asyncio.run(run_demo(out, start_ms, days, speed, console, scenario, http_port if dashboard else None))
    console.rule(f"status after {days:g} simulated days ({(days * DAY_MS) // HOUR_MS} h)")
    for line in render_status(status):
        console.print(line)
