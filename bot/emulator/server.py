"""Start the emulator: in-process (``run_emulator``) or as a ``fundbot emulator`` subprocess.

It listens on plain HTTP and on TLS (a fresh certificate per run), writes the connection file and
runs the stepper until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.domain import exchange_id
from bot.emulator.app import Emulator
from bot.emulator.auth import Credentials
from bot.emulator.connection import ConnectionInfo, read_connection_file, write_connection_file
from bot.emulator.faults import Scenario, load_scenario, scenario_from_dict
from bot.emulator.stepper import Stepper
from bot.emulator.tls import generate_tls_files
from bot.sim.clock import Clock, ManualClock, ScaledClock

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
DEFAULT_BALANCE = Decimal("100000")


@dataclass(slots=True)
class EmulatorHandle:
    """What an in-process caller gets: connection info (as the file holds it), the sim and the clock."""

    connection: dict[str, Any]
    info: ConnectionInfo
    emulator: Emulator
    stepper: Stepper
    connection_file: Path | None

    @property
    def sim(self) -> Any:
        return self.emulator.sim

    @property
    def clock(self) -> Clock:
        return self.emulator.clock

    async def tick(self) -> None:
        """Step the simulation now and push the results (use after advancing a ManualClock)."""
        await self.stepper.tick()


def exchange_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    """'BTC/USDT', 'BTC/USDT:USDT' or 'BTCUSDT' -> 'BTCUSDT'."""
    return tuple(exchange_id(s) for s in symbols)


def data_symbols(data_dir: Path | None) -> tuple[str, ...]:
    """Every pair the history holds (funding, perp and spot klines): what the emulator serves by default."""
    from bot.sim.history import available_symbols, bundled_data_dir, kline_path

    root = data_dir or bundled_data_dir()
    return tuple(s for s in available_symbols(root) if kline_path(root, "spot", s).exists())


@functools.lru_cache(maxsize=8)
def _source(data_dir: Path | None, symbols: tuple[str, ...], random_walk: bool, seed: int, start_ms: int | None) -> Any:
    """Market data sources are read-only, so one loaded copy serves every emulator in the process."""
    from bot.sim.history import bundled_data_dir
    from bot.sim.source import HistoryReplay, RandomWalk

    if random_walk:
        kwargs: dict[str, Any] = {"seed": seed, "symbols": symbols}
        if start_ms is not None:
            kwargs["start_ms"] = start_ms
        return RandomWalk(**kwargs)
    return HistoryReplay(data_dir or bundled_data_dir(), list(symbols))


def build_sim(
    clock: Clock,
    symbols: Sequence[str],
    data_dir: Path | None,
    start_ms: int | None,
    random_walk: bool,
    seed: int,
    balance: Decimal,
) -> Any:
    """A SimExchange over the bundled history (default), another data dir, or a seeded random walk."""
    from bot.sim.exchange import SimExchange

    source = _source(data_dir, tuple(symbols), random_walk, seed, start_ms if random_walk else None)
    return SimExchange(source, clock, symbols=list(symbols), balances={"USDT": balance})


def default_start_ms(symbols: Sequence[str], data_dir: Path | None, random_walk: bool, seed: int) -> int:
    """The first hour of data (so a run without --start has prices at once)."""
    return int(_source(data_dir, tuple(symbols), random_walk, seed, None).start_ms)


def _resolve_scenario(scenario: Scenario | Path | str | dict[str, Any] | None, sim_start_ms: int) -> Scenario:
    if scenario is None:
        return Scenario()
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return scenario_from_dict(scenario, sim_start_ms)
    return load_scenario(Path(scenario), sim_start_ms)


@contextlib.asynccontextmanager
async def run_emulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls_port: int = 0,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    data_dir: Path | None = None,
    start_ms: int | None = None,
    speed: float = 1.0,
    clock: Clock | None = None,
    scenario: Scenario | Path | str | dict[str, Any] | None = None,
    seed: int = 0,
    balance: Decimal = DEFAULT_BALANCE,
    random_walk: bool = False,
    api_key: str | None = None,
    secret: str | None = None,
    connection_file: Path | None = None,
    state_dir: Path | None = None,
    tick_ms: int = 200,
    sim: Any = None,
) -> AsyncIterator[EmulatorHandle]:
    """Serve the emulator on ``host`` until the block exits.

    ``clock`` defaults to a ``ScaledClock`` at ``speed`` from ``start_ms`` (default: the first hour of
    data). Pass a ``ManualClock`` and call ``handle.tick()`` for deterministic tests.
    """
    if connection_file is not None:  # an earlier run's file names ports and keys that are gone: never
        Path(connection_file).unlink(missing_ok=True)  # leave it readable while this run loads its data
    syms = exchange_symbols(symbols) or (DEFAULT_SYMBOLS if random_walk else data_symbols(data_dir))
    if clock is None:
        start = start_ms if start_ms is not None else default_start_ms(syms, data_dir, random_walk, seed)
        clock = ScaledClock(start, speed)
    sim_start = clock.now_ms()
    wall_start = int(time.time() * 1000)
    effective_speed = (
        clock.speed if isinstance(clock, ScaledClock) else 0.0 if isinstance(clock, ManualClock) else speed
    )
    sc = _resolve_scenario(scenario, sim_start)
    if sc.seed == 0 and seed:
        sc.seed = seed
    if sim is None:
        source = _source(data_dir, syms, random_walk, sc.seed, sim_start if random_walk else None)
        if not source.start_ms <= sim_start < source.end_ms:
            raise ValueError(
                f"start {sim_start} ms is outside the data ({source.start_ms} .. {source.end_ms} ms); "
                "pick a --start inside it"
            )
        sim = build_sim(clock, syms, data_dir, sim_start, random_walk, sc.seed, balance)
    creds = Credentials(api_key or secrets.token_hex(32), secret or secrets.token_hex(32))
    emu = Emulator(sim, clock, creds, sc, tick_ms=tick_ms)
    from bot.emulator.user_events import attach_user_events

    attach_user_events(emu)
    app = emu.build_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fundbot-emulator-")
        state_dir = Path(tmp.name)
    tls_files = generate_tls_files(Path(state_dir) / "tls")
    http_site = web.TCPSite(runner, host, port)
    https_site = web.TCPSite(runner, host, tls_port, ssl_context=tls_files.server_context())
    stepper = Stepper(emu)
    try:
        await http_site.start()
        await https_site.start()
        info = ConnectionInfo(
            host=host,
            http_port=_bound_port(http_site),
            https_port=_bound_port(https_site),
            api_key=creds.api_key,
            secret=creds.secret,
            ca_file=str(tls_files.ca_cert),
            sim_start_ms=sim_start,
            wall_start_ms=wall_start,
            speed=effective_speed,
            symbols=syms,
            pid=os.getpid(),
        )
        if connection_file is not None:
            write_connection_file(info, Path(connection_file))
        stepper.start()
        yield EmulatorHandle(info.as_dict(), info, emu, stepper, connection_file)
    finally:
        await stepper.stop()
        await emu.hub.disconnect_all()
        await runner.cleanup()
        if tmp is not None:
            tmp.cleanup()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; the public API has no bound port
    sockets = getattr(server, "sockets", None)  # asyncio's and uvloop's servers have it; AbstractServer omits it
    assert sockets
    return int(sockets[0].getsockname()[1])


async def serve_forever(*, clock_file: Path | None = None, **kwargs: Any) -> EmulatorHandle | None:
    """Run until SIGTERM or SIGINT (``fundbot emulator``). ``clock_file``: see ``resume_clock``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    announce = kwargs.pop("announce", None)
    if clock_file is not None:
        kwargs["start_ms"] = resume_clock(Path(clock_file), kwargs.get("start_ms"), float(kwargs.get("speed", 1.0)))
    try:
        async with run_emulator(**kwargs) as handle:
            if clock_file is not None:
                save_clock(Path(clock_file), handle.info)
            if announce is not None:
                announce(handle)
            await stop.wait()
    except ValueError as err:
        if clock_file is not None and "outside the data" in str(err):
            raise ValueError(f"{err}; {clock_file} continues an earlier replay: delete it to start over") from None
        raise
    return None


def resume_clock(path: Path, start_ms: int | None, speed: float) -> int | None:
    """The replay's start when it carries on an earlier one: the instant the earlier replay's clock has
    reached by now, as if the emulator had never stopped (a daemon's paper account written at that clock
    must not find the market back in its past after a restart). No file: ``start_ms``."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        sim_ms, wall_ms, old_speed = int(saved["sim_start_ms"]), int(saved["wall_start_ms"]), float(saved["speed"])
    except FileNotFoundError:
        return start_ms
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a clock file written by `fundbot emulator --clock-file` ({err})") from None
    return sim_ms + int((time.time() * 1000 - wall_ms) * old_speed)


def save_clock(path: Path, info: ConnectionInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    clock = {"sim_start_ms": info.sim_start_ms, "wall_start_ms": info.wall_start_ms, "speed": info.speed}
    tmp.write_text(json.dumps(clock), encoding="utf-8")
    os.replace(tmp, path)


@dataclass(slots=True)
class EmulatorProcess:
    """A ``fundbot emulator`` child process and its connection file."""

    process: subprocess.Popen[bytes]
    connection_file: Path
    connection: dict[str, Any]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, and return the exit code (kills only if it does not exit in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return int(self.process.returncode)


def start_emulator_subprocess(
    connection_file: Path, *args: str, timeout: float = 30.0, python: str | None = None
) -> EmulatorProcess:
    """Run ``fundbot emulator --connection-file FILE *args`` and wait until it has written the file."""
    connection_file = Path(connection_file)
    connection_file.unlink(missing_ok=True)
    cmd = [python or sys.executable, "-m", "bot.cli", "emulator", "--connection-file", str(connection_file), *args]
    log_path = connection_file.with_name(connection_file.name + ".log")
    with log_path.open("wb") as log_file:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not connection_file.exists():
        if proc.poll() is not None:
            out = log_path.read_text(errors="replace")
            raise RuntimeError(f"fundbot emulator exited with {proc.returncode}: {out[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"fundbot emulator did not write {connection_file} within {timeout}s")
        time.sleep(0.05)
    return EmulatorProcess(proc, connection_file, read_connection_file(connection_file))
