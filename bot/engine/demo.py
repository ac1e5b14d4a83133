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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from bot.config import Mode, load_settings
from bot.domain import DAY_MS, HOUR_MS, exchange_id
from bot.engine.daemon import Daemon, build_runtime
from bot.ledger.repository import Ledger
from bot.ops.status import collect_status, render_status
from bot.ops.tail import tail_events


def bundled_pairs() -> list[str]:
    """Every pair of the bundled history (funding, perp and spot klines): what the demo replays."""
    from bot.sim.history import available_symbols, bundled_data_dir, kline_path

    root = bundled_data_dir()
    return [f"{s.removesuffix('USDT')}/USDT" for s in available_symbols(root) if kline_path(root, "spot", s).exists()]


_demo_symbols: list[str] = []


def __getattr__(name: str) -> list[str]:
    """``DEMO_SYMBOLS``, read from the bundled data on first use: at import it cost every command line
    start (``fundbot run``, ``status``) about a second of pandas and a scan of the data directory."""
    if name == "DEMO_SYMBOLS":
        if not _demo_symbols:
            _demo_symbols.extend(bundled_pairs())
        return list(_demo_symbols)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _when(ts_ms: int) -> str:
    """A day, with the hour when it is not midnight (data ends mid-day)."""
    text = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return text.removesuffix(" 00:00") + ("" if text.endswith(" 00:00") else " UTC")


def symbol_coverage(symbols: list[str], data_dir: Path | None = None) -> dict[str, tuple[int, int]]:
    """Per symbol, the span ``[first, end)`` in which the bundled history prices every leg: spot, perp and
    mark candles (the perp stands in for a missing mark file, as the replay does) and funding. A symbol
    with no file for a leg is left out."""
    from bot.sim.history import bundled_data_dir, load_funding, load_klines

    data = data_dir or bundled_data_dir()
    out: dict[str, tuple[int, int]] = {}
    for symbol in symbols:
        sid = exchange_id(symbol)
        frames = {kind: load_klines(data, kind, sid) for kind in ("spot", "perp", "mark")}
        if frames["mark"] is None or frames["mark"].empty:
            frames["mark"] = frames["perp"]
        if any(df is None or df.empty for df in frames.values()):
            continue
        try:
            funding = load_funding(data, sid)
        except FileNotFoundError:
            continue
        if funding.empty:
            continue
        loaded = [df for df in frames.values() if df is not None]  # all of them (checked above)
        first = max([int(df["ts_ms"].iloc[0]) for df in loaded] + [int(funding["ts_ms"].iloc[0])])
        end = min(int(df["ts_ms"].iloc[-1]) + HOUR_MS for df in loaded)
        if end > first:
            out[symbol] = (first, end)
    return out


@dataclass(frozen=True)
class DemoWindow:
    """The symbols a demo replays over ``[start_ms, end_ms)`` and why the others were left out."""

    start_ms: int
    end_ms: int
    symbols: list[str]
    notes: list[str]


def demo_window(start_ms: int, days: float, symbols: list[str] | None = None) -> DemoWindow:
    """Keep the symbols (default ``DEMO_SYMBOLS``) whose bundled history covers the whole window; refuse a
    window none covers, with the dates a demo of that length can start on (a start past a symbol's data
    gave a traceback)."""
    symbols = __getattr__("DEMO_SYMBOLS") if symbols is None else symbols
    end_ms = start_ms + int(days * DAY_MS)
    coverage = symbol_coverage(symbols)
    kept = [s for s in symbols if s in coverage and coverage[s][0] <= start_ms and end_ms <= coverage[s][1]]
    if not kept:
        first = min(c[0] for c in coverage.values())
        last = max(c[1] for c in coverage.values())
        latest = (last - int(days * DAY_MS)) // DAY_MS * DAY_MS
        span = f"the bundled data runs from {_when(first)} to {_when(last)}"
        if latest < first:
            raise typer.BadParameter(f"{span}: --days {days:g} is longer than that", param_hint="--days")
        raise typer.BadParameter(
            f"{_day(start_ms)} + {days:g} days is outside the bundled data: {span}, so a {days:g}-day demo "
            f"can start from {_day(-(-first // DAY_MS) * DAY_MS)} to {_day(latest)}",
            param_hint="--start",
        )
    notes = []
    for s in symbols:
        if s in kept:
            continue
        if s not in coverage:
            notes.append(f"{s} left out: no bundled history for it")
            continue
        first, end = coverage[s]
        why = f"its bundled data ends {_when(end)}" if end < end_ms else f"its bundled data starts {_when(first)}"
        notes.append(f"{s} left out: {why}")
    return DemoWindow(start_ms, end_ms, kept, notes)


@dataclass(frozen=True)
class DemoResult:
    """What the demo ran: the status as of the instant the daemon stopped, and how far it got."""

    status: dict
    ran_ms: int
    planned_ms: int
    interrupted: bool

    def headline(self) -> str:
        hours = self.ran_ms / HOUR_MS
        ran = f"{hours / 24:.1f} simulated days ({hours:.0f} h)"
        if not self.interrupted:
            return f"status after {ran}"
        return f"stopped early: status after {ran} of the {self.planned_ms / DAY_MS:g} planned"


async def run_demo(
    out: Path,
    window: DemoWindow,
    speed: float,
    console: Console,
    scenario: Path | None = None,
    http_port: int | None = 8787,
) -> DemoResult:
    """Emulator + daemon over the window (until then, or until Ctrl-C / SIGTERM stops the daemon).
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
        symbols=window.symbols,
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
    start_ms, end_ms = window.start_ms, window.end_ms
    async with run_emulator(
        symbols=window.symbols,
        start_ms=start_ms,
        speed=speed,
        connection_file=conn_file,
        state_dir=out / "emulator",
        scenario=demo_scenario(scenario, start_ms, speed),
    ) as handle:
        console.print(
            f"[bold]emulator[/bold] on https://127.0.0.1:{handle.info.https_port} replaying bundled Binance "
            f"history from {_day(start_ms)} at {speed:g}x; ledger {out / 'fundbot-demo.db'}"
        )
        for note in window.notes:
            console.print(f"[yellow]{note}[/yellow]")
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
            interrupted = rt.now() < end_ms  # the daemon stopped on a signal (Ctrl-C) before the end
            daemon.request_stop()
            code = await daemon_task
            stopped_ms = rt.now()
            await asyncio.sleep(0.5)  # let the tail show the last events
            tail_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail_task
        status = await collect_status(reader, stopped_ms)
        await reader.close()
        if code != 0:
            raise RuntimeError(f"the daemon exited with {code}")
        ran = min(stopped_ms, end_ms) - start_ms if interrupted else end_ms - start_ms
        return DemoResult(status, ran, end_ms - start_ms, interrupted)


def _show_dashboard(console: Console, port: int, asked: int | None, token: str | None) -> None:
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
    start: str = typer.Option(
        DEMO_START,
        "--start",
        help="First day of the replay (UTC, YYYY-MM-DD): any day the bundled history covers for --days.",
    ),
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
    window = demo_window(_ms(start), days)
    result = asyncio.run(run_demo(out, window, speed, console, scenario, http_port if dashboard else None))
    console.rule(result.headline())
    for line in render_status(result.status):
        console.print(line)
