"""tail, status and report on ledgers written by real runs, checked line by line against the ledger's rows.

Two ledgers are built once per module:

- an emulator run: the daemon's engine (``assemble_engine``) over the real ccxt against the in-process
  emulator on a ManualClock, two simulated days from 2025-07-21 (strong positive funding) on BTC and ETH,
  the jobs called at their configured periods. A copy of the ledger is taken with both pairs open; then
  the engine restarts in close-only mode and winds the pairs down, so the final ledger ends flat.
- a backtest: ``fundbot backtest`` on three days of the bundled data.

The health check: the daemon's ``HealthState`` fed by the engine's own venue calls, the emulator stopped,
/healthz turns 503 once the venue age passes its threshold (time from an injected clock, no sleeps).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import typer
from typer.testing import CliRunner, Result

from bot.config import HttpConfig, Mode, Settings, load_settings
from bot.domain import HOUR_MS, MINUTE_MS, PairState
from bot.engine.daemon import assemble_engine
from bot.engine.jobs import JobRunner
from bot.format import fmt_dec, fmt_qty, iso_utc
from bot.ledger.models import BalanceSnapshot, Event, Fill, FundingPayment, Pair
from bot.ledger.reads import all_balance_snapshots, all_fills, select_events
from bot.ledger.repository import Ledger
from bot.ops.cli import register
from bot.services.health import HealthState, HealthThresholds, bound_port, start_health_server
from bot.sim.clock import ManualClock

# Every test here reads the module's real runs (a backtest and a daemon against the emulator, about 20 s
# to build on a busy machine), so the module is in the slow tier as a whole.
pytestmark = pytest.mark.slow

START_MS = int(datetime(2025, 7, 21, 0, 5, tzinfo=UTC).timestamp() * 1000)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
BALANCE = Decimal(50_000)
RUN_MS = 2 * 24 * HOUR_MS
# Two days compressed into seconds of wall time would trip Binance's per-minute weight limits (counted on
# the wall clock), which is not what these tests are about.
NO_WEIGHT_LIMIT = {"rate_limits": {"per_minute": {"api": 10**9, "sapi": 10**9, "fapi": 10**9}}}
SCHEDULE = {"scan_interval_s": 3600, "collateral_interval_s": 900, "snapshot_interval_s": 3600}


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def run_settings(url: str, symbols: list[str] = SYMBOLS) -> Settings:
    return load_settings(
        mode=Mode.LIVE,
        database_url=url,
        symbols=symbols,
        execution={"order_timeout_s": 0.2, "poll_interval_s": 0.02, "retry_backoff_s": 0},
        treasury={"backoff_s": 0},
        http={"enabled": False},
        engine={**SCHEDULE, "reconcile_interval_s": 6 * 3600},
    )


# -- the ledgers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """Everything the checks compare against, read straight from the ledger."""

    url: str
    events: list[tuple[Event, str | None]]
    pairs: list[Pair]
    fills: list[Fill]
    payments: list[FundingPayment]
    snapshots: list[BalanceSnapshot]

    def latest_wallets(self) -> dict[tuple[str, str], tuple[int, dict[str, BalanceSnapshot]]]:
        out: dict[tuple[str, str], tuple[int, dict[str, BalanceSnapshot]]] = {}
        for s in self.snapshots:  # oldest first
            key = (s.venue, s.wallet.value)
            if key not in out or s.ts_ms > out[key][0]:
                out[key] = (s.ts_ms, {})
            if s.ts_ms == out[key][0]:
                out[key][1][s.asset] = s
        return out

    def open_pairs(self) -> list[Pair]:
        return [p for p in self.pairs if p.state is not PairState.CLOSED]

    def funding_of(self, symbol: str) -> Decimal:
        return sum((p.amount for p in self.payments if p.symbol.split(":")[0] == symbol), Decimal(0))

    def fees_of(self, symbol: str) -> Decimal:
        """Fees in USDT: quote fees as they are, fees paid in the coin at the fill price."""
        return sum(
            (f.fee if f.fee_asset.upper() == "USDT" else f.fee * f.price)
            for f in self.fills
            if f.symbol.split(":")[0] == symbol
        )


async def read_rows(url: str) -> Rows:
    ledger = await Ledger.open(url, migrate=False)
    try:
        return Rows(
            url=url,
            events=await select_events(ledger),
            pairs=await ledger.list_pairs(),
            fills=await all_fills(ledger),
            payments=await ledger.list_funding_payments(),
            snapshots=await all_balance_snapshots(ledger),
        )
    finally:
        await ledger.close()


async def emulator_run(db: Path, open_copy: Path) -> None:
    """Two simulated days of the daemon's jobs at their periods, then a close-only restart that winds down."""
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    url = f"sqlite+aiosqlite:///{db}"
    settings = run_settings(url)
    clock = ManualClock(START_MS)
    async with run_emulator(
        symbols=SYMBOLS, clock=clock, balance=BALANCE, scenario=NO_WEIGHT_LIMIT, tick_ms=50
    ) as handle:
        venue = CcxtVenue(build_client(handle.connection, pro=True, tls=True, rateLimit=1), time_resync_s=0)
        try:
            ledger = await Ledger.open(url, migrate=True)
            engine = assemble_engine(settings, venue, ledger, clock.now_ms, sleep=no_sleep)
            cfg = engine.config
            await engine.start()  # then, as Daemon.run: a snapshot and a scan before the schedule starts
            await engine.snapshot_balances()
            await engine.scan()
            due = {"scan": START_MS, "snapshot": START_MS, "reconcile": START_MS}
            periods = {
                "scan": cfg.scan_interval_s * 1000,
                "snapshot": cfg.snapshot_interval_s * 1000,
                "reconcile": cfg.reconcile_interval_s * 1000,
            }
            while clock.now_ms() < START_MS + RUN_MS:
                clock.advance(int(cfg.collateral_interval_s * 1000))
                await handle.tick()
                now = clock.now_ms()
                await engine.check_collateral()
                for job, period in periods.items():
                    if now - due[job] < period:
                        continue
                    due[job] = now
                    if job == "scan":
                        await engine.sync_funding()  # settlements are on the hour; scans at :05 follow them
                        await engine.scan()
                    elif job == "snapshot":
                        await engine.snapshot_balances()
                    else:
                        await engine.reconcile()
            await ledger.close()
            shutil.copyfile(db, open_copy)  # both pairs held: what status shows mid-run

            # The operator restarts the daemon with --close-only: the held pairs are wound down.
            ledger = await Ledger.open(url, migrate=True)
            engine = assemble_engine(settings, venue, ledger, clock.now_ms, sleep=no_sleep, close_only=True)
            await engine.start()
            await engine.scan()
            clock.advance(15 * MINUTE_MS)
            await handle.tick()
            await engine.check_collateral()
            await engine.sync_funding()
            await engine.snapshot_balances()
            await ledger.close()
        finally:
            await venue.close()


@dataclass(frozen=True)
class EmulatorLedgers:
    held: Rows  # after two days, both pairs open
    wound_down: Rows  # the same ledger after the close-only restart


@pytest.fixture(scope="module")
def emulator_ledgers(tmp_path_factory: pytest.TempPathFactory) -> EmulatorLedgers:
    d = tmp_path_factory.mktemp("emulator-run")
    db, held = d / "ledger.db", d / "held.db"
    asyncio.run(emulator_run(db, held))
    return EmulatorLedgers(
        held=asyncio.run(read_rows(f"sqlite+aiosqlite:///{held}")),
        wound_down=asyncio.run(read_rows(f"sqlite+aiosqlite:///{db}")),
    )


@dataclass(frozen=True)
class BacktestLedger:
    rows: Rows
    summary: dict[str, Any]
    out_dir: Path


@pytest.fixture(scope="module")
def backtest_ledger(tmp_path_factory: pytest.TempPathFactory) -> BacktestLedger:
    from bot.backtest.cli import register as register_backtest

    app = typer.Typer()
    register_backtest(app)
    app.command("noop", hidden=True)(lambda: None)  # two commands: typer keeps "backtest" as a subcommand
    out = tmp_path_factory.mktemp("backtest-run")
    args = ["backtest", "--symbols", ",".join(SYMBOLS), "--start", "2025-07-21", "--end", "2025-07-24"]
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--no-baselines", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout.strip().splitlines()[-1])
    return BacktestLedger(asyncio.run(read_rows(result["ledger_url"])), result["summary"], Path(result["out_dir"]))


@pytest.fixture(scope="module")
def cli() -> Callable[..., Result]:
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        res = runner.invoke(app, list(args))
        assert res.exit_code == 0, res.output
        return res

    return invoke


def all_ledgers(emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger) -> dict[str, Rows]:
    return {
        "emulator-held": emulator_ledgers.held,
        "emulator-wound-down": emulator_ledgers.wound_down,
        "backtest": backtest_ledger.rows,
    }


D = Decimal


# -- the runs wrote what an operator needs to see -----------------------------------------------------------


@pytest.mark.timeout(300)  # 30 s on a loaded 2-core machine
def test_the_runs_traded_earned_and_recorded(
    emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    for name, rows in (("emulator", emulator_ledgers.held), ("backtest", backtest_ledger.rows)):
        assert {p.symbol for p in rows.open_pairs()} == set(SYMBOLS), name
        assert {f.market.value for f in rows.fills} == {"spot", "perp"}, name
        assert rows.payments and all(p.amount > 0 for p in rows.payments), name  # the short is paid
        assert {s.wallet.value for s in rows.snapshots} == {"spot", "futures"}, name
        kinds = {ev.kind.value for ev, _ in rows.events}
        assert {"decision", "order", "fill", "funding" if name == "emulator" else "transfer"} <= kinds, (name, kinds)
    wound = emulator_ledgers.wound_down
    assert wound.open_pairs() == [] and len(wound.fills) > len(emulator_ledgers.held.fills)


# -- tail -------------------------------------------------------------------------------------------------

LINE = re.compile(r"^(\S+) #(\d+)\s+([A-Z]+)\s+(\S+)\s+(.*)$")


def test_tail_json_every_event_once_in_order(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    for name, rows in all_ledgers(emulator_ledgers, backtest_ledger).items():
        lines = cli("tail", "--url", rows.url, "--json", "-n", "100000").stdout.splitlines()
        assert len(lines) == len(rows.events), name
        for line, (ev, symbol) in zip(lines, rows.events, strict=True):
            got = json.loads(line)
            assert (got["id"], got["ts_ms"], got["kind"]) == (ev.id, ev.ts_ms, ev.kind.value), name
            assert got["symbol"] == symbol and got["message"] == ev.message and got["pair_id"] == ev.pair_id
            assert got["time"] == iso_utc(ev.ts_ms)
            if ev.kind.value in ("decision", "fill", "order", "funding"):
                assert symbol in SYMBOLS or symbol.split(":")[0] in SYMBOLS, (name, got)


def test_tail_human_lines_carry_kind_symbol_and_why(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    for name, rows in all_ledgers(emulator_ledgers, backtest_ledger).items():
        lines = cli("tail", "--url", rows.url, "-n", "100000").stdout.splitlines()
        assert len(lines) == len(rows.events), name
        decisions = 0
        for line, (ev, symbol) in zip(lines, rows.events, strict=True):
            m = LINE.match(line)
            assert m, line
            assert m.group(1) == iso_utc(ev.ts_ms) and int(m.group(2)) == ev.id, line
            assert m.group(3) == ev.kind.value.upper() and m.group(4) == (symbol or "-"), line
            assert m.group(5).startswith(ev.message), line
            if ev.kind.value != "decision":
                continue
            details = ev.details or {}
            econ = (details.get("target", {}).get("reason") or details).get("economics")
            rule = (details.get("target", {}).get("reason") or details).get("rule")
            assert f"rule={rule}" in line, line
            if econ:  # every trading decision carries its economics: score and break-even on the line
                decisions += 1
                assert f"score={fmt_dec(D(econ['score']))}" in line, line
                be = econ.get("break_even_hours")
                assert (f"break-even={fmt_dec(D(be), 1)}h" if be is not None else "break-even=never") in line, line
        assert decisions >= 2, name  # at least the two entries


def test_tail_filters_by_pair_and_kind(cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers) -> None:
    rows = emulator_ledgers.wound_down
    lines = cli("tail", "--url", rows.url, "--json", "-n", "100000", "--pair", "ETH/USDT", "--kind", "funding,fill")
    got = [json.loads(x)["id"] for x in lines.stdout.splitlines()]
    want = [ev.id for ev, sym in rows.events if sym == "ETH/USDT" and ev.kind.value in ("funding", "fill")]
    assert got == want and len(want) > 4


# -- status -----------------------------------------------------------------------------------------------


def test_status_json_pairs_and_wallets_match_the_ledger(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    for name, rows in all_ledgers(emulator_ledgers, backtest_ledger).items():
        st = json.loads(cli("status", "--url", rows.url, "--json").stdout)
        by_id = {p["id"]: p for p in st["pairs"]}
        assert set(by_id) == {p.id for p in rows.open_pairs()}, name
        for p in rows.open_pairs():
            got = by_id[p.id]
            assert (got["symbol"], got["state"]) == (p.symbol, p.state.value)
            assert D(got["spot_qty"]) == p.spot_qty and D(got["perp_qty"]) == p.perp_qty, (name, got)
            # funding earned on the pair row is the sum of its own funding payments
            paid = sum((f.amount for f in rows.payments if f.pair_id == p.id), D(0))
            assert D(got["funding_earned"]) == p.funding_earned == paid, (name, got["funding_earned"], paid)
            assert paid > 0
        latest = rows.latest_wallets()
        assert {(w["venue"], w["wallet"]) for w in st["wallets"]} == set(latest), name
        for w in st["wallets"]:
            ts, assets = latest[(w["venue"], w["wallet"])]
            assert w["ts_ms"] == ts
            assert {a: D(v["total"]) for a, v in w["assets"].items()} == {a: s.total for a, s in assets.items()}
            assert {a: D(v["free"]) for a, v in w["assets"].items()} == {a: s.free for a, s in assets.items()}
        futures = next(assets for (_, wallet), (_, assets) in latest.items() if wallet == "futures")
        assert D(st["collateral"]["margin_balance"]) == futures["USDT"].total, name
        if rows.open_pairs():
            assert D(st["collateral"]["ratio"]) == D(st["collateral"]["margin_balance"]) / D(
                st["collateral"]["short_notional"]
            )


def test_status_human_lines(cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers) -> None:
    rows = emulator_ledgers.held
    lines = cli("status", "--url", rows.url).stdout.splitlines()
    # an emulator run ends on simulated time, long before now: status reads it as of its last event
    assert lines[0].startswith("status as of 2025-") and "the ledger's last event is at" in lines[1]
    assert lines[2] == f"pairs ({len(rows.open_pairs())} not closed)"
    pair_lines = lines[3 : 3 + len(rows.open_pairs())]
    for p in rows.open_pairs():
        (line,) = [x for x in pair_lines if x.split()[0] == p.symbol]
        assert f"spot {fmt_qty(p.spot_qty)} / perp -{fmt_qty(p.perp_qty)}" in line, line
        assert f"funding earned {fmt_dec(p.funding_earned, 4, signed=True)} USDT" in line, line
        assert "next funding" in line and "liquidation" in line, line  # the engine recorded both
    wallets = lines[lines.index("wallets (latest snapshot)") + 1 :][:2]
    for (venue, wallet), (ts, assets) in rows.latest_wallets().items():
        (line,) = [x for x in wallets if x.split()[0] == f"{venue}/{wallet}"]
        for asset, s in assets.items():
            assert f"{asset} {fmt_qty(s.total)} (free {fmt_qty(s.free)})" in line, line
        assert f"at {iso_utc(ts)}" in line
    assert "open intents (0)" in lines and "last errors and alerts (0)" in lines


# -- report -----------------------------------------------------------------------------------------------


def test_report_funding_and_fees_equal_the_ledger_rows(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    for name, rows in all_ledgers(emulator_ledgers, backtest_ledger).items():
        rep = json.loads(cli("report", "--url", rows.url, "--json").stdout)
        by_symbol = {p["symbol"]: p for p in rep["pairs"]}
        assert set(by_symbol) == set(SYMBOLS), name
        for sym, got in by_symbol.items():
            assert D(got["funding"]) == rows.funding_of(sym), (name, sym)
            assert got["funding_payments"] == sum(1 for p in rows.payments if p.symbol.split(":")[0] == sym)
            assert D(got["fees"]) == -rows.fees_of(sym), (name, sym)
            assert got["fills"] == sum(1 for f in rows.fills if f.symbol.split(":")[0] == sym)
        assert D(rep["total"]["funding"]) == sum(p.amount for p in rows.payments)
        assert rep["transfers"]["pnl"] == "0"
        text = cli("report", "--url", rows.url).stdout
        for sym in SYMBOLS:
            (line,) = [x for x in text.splitlines() if x.split()[0] == sym]
            assert f"funding {fmt_dec(rows.funding_of(sym), 4, signed=True):>12}" in line, line
            assert f"fees {fmt_dec(-rows.fees_of(sym), 4, signed=True):>12}" in line, line


def test_report_agrees_with_the_backtest_summary(cli: Callable[..., Result], backtest_ledger: BacktestLedger) -> None:
    """Two readers of one ledger: the backtest's own metrics and the operator's report (floats: 1e-6)."""
    rep = json.loads(cli("report", "--url", backtest_ledger.rows.url, "--json").stdout)
    assert float(rep["total"]["funding"]) == pytest.approx(backtest_ledger.summary["funding_income"], abs=1e-6)
    assert -float(rep["total"]["fees"]) == pytest.approx(backtest_ledger.summary["fees"], abs=1e-6)


def test_one_attribution_summary_html_and_report_agree_to_the_cent(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers, backtest_ledger: BacktestLedger
) -> None:
    """summary.json, the HTML report and `fundbot report` price fills and payments with one module
    (bot.ledger.attribution): funding, fees and slippage agree to the cent on the backtest's ledger and on
    the daemon's against the emulator, and every executor fill carries the reference price its order
    intent recorded (summary.json said 6.68 USDT of slippage where the report said 18.07: two definitions)."""
    from bot.backtest.metrics import read_facts
    from bot.backtest.report import _fmt

    s = backtest_ledger.summary
    rep = json.loads(cli("report", "--url", backtest_ledger.rows.url, "--json").stdout)
    total = rep["total"]
    assert s["slippage"] != 0 and not any("no reference price" in n for n in rep["notes"]), rep["notes"]
    for summary_key, report_value in (
        ("funding_income", D(total["funding"])),
        ("fees", -D(total["fees"])),
        ("slippage", D(total["slippage_cost"])),
    ):
        assert abs(D(str(s[summary_key])) - report_value) < D("0.005"), (summary_key, s[summary_key], report_value)
    page = (backtest_ledger.out_dir / "report.html").read_text()
    for label, key in (
        ("Funding income (USDT)", "funding_income"),
        ("Fees (USDT)", "fees"),
        ("Slippage vs the decision mid (USDT)", "slippage"),
    ):
        assert f"<td>{label}</td><td>{_fmt(s[key], 'usd')}</td>" in page, label
    assert _fmt(s["slippage"], "usd") == f"{D(total['slippage_cost']):,.2f}"

    async def daemon_costs(url: str) -> Any:
        ledger = await Ledger.open(url, migrate=False)
        try:
            return (await read_facts(ledger)).attribution.total()
        finally:
            await ledger.close()

    rows = emulator_ledgers.wound_down
    rep = json.loads(cli("report", "--url", rows.url, "--json").stdout)
    costs = asyncio.run(daemon_costs(rows.url))
    assert costs.unreferenced_fills == 0 and costs.fills == len(rows.fills) and costs.slippage != 0
    assert (costs.funding, -costs.fees, costs.slippage) == (
        D(rep["total"]["funding"]),
        D(rep["total"]["fees"]),
        D(rep["total"]["slippage_cost"]),
    )


def test_report_reconciles_a_wound_down_run_with_wallet_equity(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers
) -> None:
    """Start to finish of the emulator run, flat at both ends: explained PnL = equity change within a cent.

    Tolerance 0.01 USDT. Once flat, the equity change is an accounting identity over ledger rows: the
    first snapshot precedes the first trade (all USDT), the last one follows the exits (USDT, plus spot fee
    dust the report marks at the exit fills' prices, which is also how the spot leg's MTM marks it), and
    the futures margin holds no unrealised PnL. Only the venue's 8-decimal balance rounding is left
    (currently the residual is exactly 0). A cent still catches any missing fill fee (> 4 USDT each here)
    or funding payment (> 0.85 USDT each).
    """
    rows = emulator_ledgers.wound_down
    rep = json.loads(cli("report", "--url", rows.url, "--json").stdout)
    eq = rep["equity"]
    assert eq["first_ms"] == START_MS and D(eq["first"]) == BALANCE  # the snapshot before the first trade
    assert eq["last_ms"] == max(s.ts_ms for s in rows.snapshots)
    assert eq["price_age_ms"] <= HOUR_MS
    residual = D(rep["residual"])
    assert abs(residual) < D("0.01"), rep
    text = cli("report", "--url", rows.url).stdout
    assert f"unexplained residual {fmt_dec(residual, 4, signed=True)}" in text


def test_report_flags_equity_valued_with_stale_prices(
    cli: Callable[..., Result], backtest_ledger: BacktestLedger, tmp_path: Path
) -> None:
    """A ledger with pairs held and no price newer than the last decision or fill (here: the backtest's,
    with its snapshot price records removed) values the coins at old prices while the futures margin
    carries the current mark; the report must say so instead of presenting the residual as PnL."""
    src = Path(backtest_ledger.rows.url.split("///", 1)[1])
    copy = tmp_path / "stale.db"
    shutil.copy(src, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DELETE FROM events WHERE message LIKE 'prices:%'")
    url = f"sqlite+aiosqlite:///{copy}"
    rep = json.loads(cli("report", "--url", url, "--json").stdout)
    assert rep["equity"]["price_age_ms"] > HOUR_MS
    assert any("valued at prices observed up to" in n for n in rep["notes"]), rep["notes"]
    fresh = json.loads(cli("report", "--url", backtest_ledger.rows.url, "--json").stdout)
    assert fresh["equity"]["price_age_ms"] <= HOUR_MS  # the backtest records its snapshots' prices


def test_daemon_records_snapshot_prices_so_held_equity_reconciles(
    cli: Callable[..., Result], emulator_ledgers: EmulatorLedgers
) -> None:
    """The daemon writes the prices of each balance snapshot while pairs are held, so the report values
    the coins at the snapshot's own prices: no stale-price note, and the residual is only the spread
    between the last scan's spot mid and the futures mark (a few USDT on ~50k of hedged notional)."""
    rep = json.loads(cli("report", "--url", emulator_ledgers.held.url, "--json").stdout)
    assert rep["equity"]["price_age_ms"] <= HOUR_MS
    assert not any("valued at prices observed up to" in n for n in rep["notes"]), rep["notes"]
    assert abs(D(rep["residual"])) < D(10), rep["residual"]  # was -203 USDT before prices were recorded


# -- health -----------------------------------------------------------------------------------------------


async def test_healthz_goes_503_when_the_venue_stops_answering(sqlite_url: str) -> None:
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    clock = ManualClock(START_MS)
    thresholds = HealthThresholds.from_config(HttpConfig())
    health = HealthState(now_fn=clock.now_ms, thresholds=thresholds)
    ledger = await Ledger.open(sqlite_url, migrate=True)
    server = await start_health_server(health, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{bound_port(server)}"

    async def healthz() -> tuple[int, dict[str, Any]]:
        async with http.get(f"{base}/healthz") as r:
            return r.status, await r.json()

    venue: CcxtVenue | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async with run_emulator(symbols=SYMBOLS[:1], clock=clock, tick_ms=50) as handle:
                venue = CcxtVenue(build_client(handle.connection, pro=True, tls=True, rateLimit=1), time_resync_s=0)
                settings = run_settings(sqlite_url, SYMBOLS[:1])
                engine = assemble_engine(settings, venue, ledger, clock.now_ms, health=health, sleep=no_sleep)
                jobs = JobRunner(on_error=engine.on_job_error)
                await engine.start()
                await jobs.run("snapshot", engine.snapshot_balances)
                assert health.venue_ok_ms == START_MS  # marked by the successful venue call
            # The emulator is gone. Scheduler and scan checks stay fresh; only the venue goes quiet.
            step = 60_000
            for _ in range(thresholds.venue_max_age_ms // step):
                clock.advance(step)
                health.mark_scheduler_alive(clock.now_ms())
                health.mark_scan_ok(clock.now_ms())
                await jobs.run("snapshot", engine.snapshot_balances)  # fails, recorded, never raised
                status, body = await healthz()
                assert status == 200 and body["checks"]["venue"]["ok"], body  # within the threshold
            assert health.venue_ok_ms == START_MS
            assert health.errors["snapshot"] == thresholds.venue_max_age_ms // step
            clock.advance(1)
            status, body = await healthz()
            assert status == 503 and body["status"] == "unhealthy"
            assert body["checks"]["venue"] == {
                "ok": False,
                "age_s": thresholds.venue_max_age_ms / 1000 + 0.001,
                "max_age_s": thresholds.venue_max_age_ms / 1000,
            }
            assert body["checks"]["scheduler"]["ok"] and body["checks"]["funding_scan"]["ok"]
            errors = await ledger.events(kinds=["error"])
            assert len(errors) == health.errors["snapshot"]
            assert all(e.message.startswith("snapshot failed") for e in errors)
    finally:
        if venue is not None:
            await venue.close()
        await server.cleanup()
        await ledger.close()


def test_price_book_reads_the_engines_position_marks(emulator_ledgers: EmulatorLedgers) -> None:
    """The engine's ``positions`` records carry each perp's mark price; the report marks perp legs with it."""
    from bot.ledger.reads import build_price_book

    rows = emulator_ledgers.held
    records = [ev for ev, _ in rows.events if isinstance((ev.details or {}).get("positions"), dict)]
    assert records, "the engine records positions with their liquidation prices"

    async def book() -> Any:
        ledger = await Ledger.open(rows.url, migrate=False)
        try:
            return await build_price_book(ledger, include_fills=False)
        finally:
            await ledger.close()

    prices = asyncio.run(book())
    for ev in records:
        for symbol, pos in ev.details["positions"].items():
            perp = f"{symbol.split(':')[0]}:USDT"
            seen = {px for ts, px in prices._sorted(perp) if ts == ev.ts_ms}
            assert D(pos["mark_price"]) in seen, (perp, seen)
