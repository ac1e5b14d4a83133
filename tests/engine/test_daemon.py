"""``fundbot run`` as a process against ``fundbot emulator`` (speed 600): SIGTERM, and SIGKILL mid-entry.

The emulator's request-weight limits are scaled to its speed (a simulated minute's work happens every
0.1 real seconds), as ``fundbot demo`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Leg, PairState
from bot.emulator.server import EmulatorProcess, start_emulator_subprocess
from bot.emulator.weights import DEFAULT_LIMITS
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger

pytestmark = pytest.mark.slow  # every test here is over ~2 s

SPEED = 600
SYMBOLS = "SOL/USDT,XRP/USDT"
DEADLINE_S = 40.0


def scenario(tmp_path: Path, faults: list[dict[str, Any]] | None = None, seed: int = 0) -> Path:
    path = tmp_path / "scenario.json"
    limits = {"per_minute": {k: v * SPEED for k, v in DEFAULT_LIMITS.items()}}
    path.write_text(json.dumps({"seed": seed, "rate_limits": limits, "faults": faults or []}))
    return path


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    started: list[EmulatorProcess] = []

    def start(faults: list[dict[str, Any]] | None = None, seed: int = 0) -> EmulatorProcess:
        args = ["--speed", str(SPEED), "--symbols", SYMBOLS, "--start", "2025-07-21"]
        emu = start_emulator_subprocess(
            tmp_path / "emulator.json", *args, "--scenario", str(scenario(tmp_path, faults, seed))
        )
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def start_daemon(
    tmp_path: Path, db: str | None, conn: Path, name: str, mode: str = "--live", *extra: str
) -> subprocess.Popen:
    env = {
        **os.environ,
        "FUNDBOT_DATABASE_URL": db or "",
        "FUNDBOT_DATA_DIR": str(tmp_path),
        "FUNDBOT_SYMBOLS": SYMBOLS,
        "FUNDBOT_HTTP__ENABLED": "false",
        "FUNDBOT_LOG_LEVEL": "WARNING",
        "FUNDBOT_ENGINE__SHUTDOWN_TIMEOUT_S": "10",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    cmd = [sys.executable, "-m", "bot.cli", "run", mode, *extra, "--connection-file", str(conn)]
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_for(check: Callable[[], Any], proc: subprocess.Popen, what: str, log: Path) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) before {what}: {log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-2000:]}")


async def test_sigterm_stops_cleanly_with_exit_0(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emu = emulator_factory()
    db = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with await Ledger.open(db, migrate=True) as ledger:
        proc = start_daemon(tmp_path, db, emu.connection_file, "daemon")
        try:

            async def opened() -> bool:
                return bool(await ledger.list_pairs([PairState.OPEN]))

            await wait_for(opened, proc, "a pair opened", tmp_path / "daemon.log")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
        infos = await ledger.events(kinds=[EventKind.INFO], newest_first=True, limit=20)
        assert any(e.message.startswith("engine stopped") for e in infos)
        errors = await ledger.events(kinds=[EventKind.ERROR])
        assert not errors, [e.message for e in errors]
        # a live run follows the user-data stream: the entry's fills came (some first) from it
        infos = await ledger.events(kinds=[EventKind.INFO])
        assert any(e.message.startswith("user-data stream on") for e in infos)
        assert await ledger.events(kinds=[EventKind.FILL])  # the entries' fills are recorded
        # Which path records an entry's fills first (the stream or the poll) is a race; the stream's own
        # delivery is asserted deterministically in tests/engine/test_user_stream.py.


async def test_restart_after_sigkill_mid_entry_reconciles_without_duplicate_orders(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    slow_perp = [{"endpoint": "POST /fapi/v1/order", "kind": "latency", "latency_ms": 3000, "count": 1}]
    emu = emulator_factory(slow_perp)
    db = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with await Ledger.open(db, migrate=True) as ledger:
        first = start_daemon(tmp_path, db, emu.connection_file, "first")
        try:

            async def perp_order_in_flight() -> bool:
                """The spot leg is filled and recorded, the perp order is sent and not answered yet."""
                spot_done = any(o.leg is Leg.SPOT for o in await ledger.list_orders())
                perp_open = any(i.client_id.endswith("-p") for i in await ledger.open_intents())
                return spot_done and perp_open

            await wait_for(perp_order_in_flight, first, "the perp leg in flight", tmp_path / "first.log")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        in_flight = [i.client_id for i in await ledger.open_intents()]
        assert in_flight, "the kill landed between the legs"
        second = start_daemon(tmp_path, db, emu.connection_file, "second")
        try:

            async def settled() -> bool:
                """Reconciled, nothing in flight, and no pair left mid-action (finishing it is part of it)."""
                pairs = await ledger.list_pairs([PairState.OPENING, PairState.OPEN, PairState.QUARANTINED])
                midway = await ledger.list_pairs([PairState.OPENING, PairState.REBALANCING, PairState.CLOSING])
                reconciled = await ledger.events(kinds=[EventKind.RECONCILE])
                return bool(pairs) and bool(reconciled) and not midway and not await ledger.open_intents()

            await wait_for(settled, second, "reconciliation after the restart", tmp_path / "second.log")
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        finally:
            if second.poll() is None:
                second.kill()
        await assert_no_duplicates_and_no_silent_naked_leg(ledger, emu)
        for cid in in_flight:  # the perp order that was in flight is now known, once, to the ledger
            intent = await ledger.get_intent(cid)
            assert intent is not None and intent.status in ("done", "failed")


async def assert_no_duplicates_and_no_silent_naked_leg(ledger: Ledger, emu: EmulatorProcess) -> None:
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    venue = CcxtVenue(build_client(emu.connection, pro=True, tls=True, rateLimit=1), account="check")
    try:
        orders = await ledger.list_orders()
        by_venue_id = {o.venue_order_id for o in orders if o.venue_order_id}
        assert len(by_venue_id) == len([o for o in orders if o.venue_order_id]), "one venue order per client id"
        for symbol in SYMBOLS.split(","):
            for leg in (Leg.SPOT, Leg.PERP):
                traded = {f.venue_order_id for f in await venue.fetch_fills(symbol, leg)}
                assert traded <= by_venue_id, f"{symbol} {leg}: the venue executed orders the ledger never knew"
                for o in [o for o in orders if o.symbol == symbol and o.leg is leg]:
                    state = await venue.fetch_order(symbol, leg, o.client_order_id)
                    if state is not None:
                        assert state.venue_order_id == o.venue_order_id
            pairs = [p for p in await ledger.list_pairs() if p.symbol == symbol]
            balances = await venue.fetch_balances()
            spot = sum(
                (b.total for b in balances if b.wallet == "spot" and b.asset == symbol.split("/")[0]), Decimal(0)
            )
            positions = await venue.fetch_positions([symbol])
            perp = -positions[symbol].qty if symbol in positions else Decimal(0)
            markets = (await venue.load_markets([symbol]))[symbol]
            step = max(markets.spot.step_size, markets.perp.step_size)
            active = [p for p in pairs if p.state is not PairState.CLOSED]
            assert perp == sum((p.perp_qty for p in active), Decimal(0)), "the venue's short is the ledger's"
            dust = step + perp * Decimal("0.0001")  # fee gross-up rounding left in the wallet by each entry
            if abs(spot - perp) >= dust:  # a naked leg is only acceptable when quarantined with an alert
                assert any(p.state is PairState.QUARANTINED for p in pairs), (symbol, spot, perp)
                alerts = await ledger.events(kinds=[EventKind.ALERT])
                assert any(a.symbol == symbol for a in alerts)
    finally:
        await venue.close()


async def test_a_restarted_dry_run_carries_on_its_paper_account_and_fresh_starts_a_new_one(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    """A dry run that restarted (a container restart, an upgrade) started a new paper account and closed
    the earlier paper pairs: weeks of paper trading were lost at the first restart."""
    emu = emulator_factory()
    db = f"sqlite+aiosqlite:///{tmp_path / 'fundbot-dryrun.db'}"  # the dry-run default in DATA_DIR
    runs = (("first", ()), ("second", ()), ("third", ("--fresh",)))
    for run, extra in runs:
        proc = start_daemon(tmp_path, None, emu.connection_file, run, "--dry-run", *extra)
        log = tmp_path / f"{run}.log"
        try:
            async with await Ledger.open(db, migrate=True) as ledger:

                async def settled(ledger: Ledger = ledger, run: str = run) -> bool:
                    pairs = await ledger.list_pairs()
                    started = [e for e in await ledger.events(kinds=[EventKind.INFO]) if "engine started" in e.message]
                    want = {"first": 1, "second": 2, "third": 3}[run]
                    open_now = [p for p in pairs if p.state is PairState.OPEN]
                    return len(started) == want and len(open_now) == 2 and len(pairs) == (4 if run == "third" else 2)

                await wait_for(settled, proc, f"the {run} run holding its pairs", log)
                if run == "first":
                    held = {p.id for p in await ledger.list_pairs()}
                    name = (await ledger.list_pairs())[0].venue
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
        if run == "second":  # the same account and pairs, nothing reset
            async with await Ledger.open(db, migrate=True) as ledger:
                pairs = await ledger.list_pairs()
                assert {p.id for p in pairs} == held and {p.venue for p in pairs} == {name}
                assert all(p.state is PairState.OPEN and p.funding_earned >= 0 for p in pairs)
    async with await Ledger.open(db, migrate=True) as ledger:
        pairs = await ledger.list_pairs()
        assert sorted(p.state.value for p in pairs if p.id in held) == ["closed", "closed"]
        assert len({p.venue for p in pairs}) == 2 and all(p.venue.startswith("paper-") for p in pairs)
        infos = [e.message for e in await ledger.events(kinds=[EventKind.INFO])]
        assert sum(m.startswith(f"paper account {name} resumed") for m in infos) == 1
        assert sum(m.startswith("paper account") and "opened with 100000 USDT" in m for m in infos) == 2
        assert sum("paper account reset" in m for m in infos) == 2  # --fresh closed the two earlier pairs
        assert sum(m.startswith("engine stopped") for m in infos) == 3
        assert not await ledger.list_pairs([PairState.QUARANTINED])
        assert not await ledger.events(kinds=[EventKind.ALERT, EventKind.ERROR])


def test_sigterm_while_the_command_line_still_imports_is_a_clean_stop(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    """Python's default handler ended a daemon stopped in its first seconds with 143 (a `docker compose
    stop` right after `up` looked like a crash); the signal is now recorded and the daemon stops with 0."""
    emu = emulator_factory()
    db = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    proc = start_daemon(tmp_path, db, emu.connection_file, "early")
    wait_for_sigterm_handler(proc.pid)  # bot.cli's first act; its imports (about a second) follow
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=60) == 0, (tmp_path / "early.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_tail_follow_stops_with_0_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    asyncio.run(_empty_ledger(f"sqlite+aiosqlite:///{db}"))
    cmd = [sys.executable, "-m", "bot.cli", "tail", "--follow", "--url", f"sqlite+aiosqlite:///{db}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_sigterm_handler(proc.pid)  # from its first act on, a SIGTERM stops tail --follow with 0
    wait_for_open_file(proc.pid, db)  # and once it reads the ledger, following it
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0, proc.stdout.read().decode()[-2000:] if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()


def wait_for_sigterm_handler(pid: int, timeout_s: float = 60.0) -> None:
    """Until the process catches SIGTERM (Linux: bit 15 of SigCgt in /proc/<pid>/status): a fixed sleep
    raced the interpreter's start-up on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} installed no SIGTERM handler within {timeout_s}s")


def wait_for_open_file(pid: int, path: Path, timeout_s: float = 60.0) -> None:
    """Until the process holds ``path`` open (Linux: a link in /proc/<pid>/fd)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if fd.readlink() == path:
                    return
            except FileNotFoundError:  # closed while listed
                continue
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not open {path} within {timeout_s}s")


async def _empty_ledger(url: str) -> None:
    async with await Ledger.open(url):
        pass


def test_a_ban_at_start_says_so_not_check_the_network(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    until = int(time.time() * 1000) + 600_000
    ban = {"endpoint": "*", "code": -1003, "status": 418, "msg": f"Way too many requests; IP banned until {until}."}
    emu = emulator_factory([ban])
    proc = start_daemon(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", emu.connection_file, "ban")
    assert proc.wait(timeout=60) == 1
    log = (tmp_path / "ban.log").read_text()
    assert "rate limiting this IP (HTTP 429/418) until" in log and "Check the network" not in log, log[-2000:]
    assert "Traceback" not in log


async def test_a_5xx_burst_at_start_is_retried_and_the_daemon_starts(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    """15% of every REST call answers 503 (-1008) or an empty 502 while the daemon starts (seed 57: the
    first two calls fail, as a start without retries would not survive)."""
    burst = [{"endpoint": "*", "kind": "503", "rate": 0.08}, {"endpoint": "*", "kind": "502", "rate": 0.08}]
    emu = emulator_factory(burst, seed=57)
    db = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await _empty_ledger(db)
    async with await Ledger.open(db, migrate=False) as ledger:
        proc = start_daemon(tmp_path, db, emu.connection_file, "burst")
        try:

            async def started() -> bool:
                infos = await ledger.events(kinds=[EventKind.INFO], message_prefix="engine started")
                return bool(infos)

            await wait_for(started, proc, "the engine started", tmp_path / "burst.log")
        finally:
            proc.kill()
            proc.wait(timeout=30)
    log = (tmp_path / "burst.log").read_text()
    assert "start attempt 1 failed" in log and "Traceback" not in log, log[-2000:]
