"""Chaos audit of issue 16's "Done when", from outside: the real daemon, killed and faulted, then audited.

``fundbot emulator`` runs in one process (replaying bundled history at ``--speed``, with a scenario whose
funding overrides flip each symbol between strongly positive and negative funding every two simulated
hours and whose +-15 % price shocks push the collateral ratio out of a narrowed band, so entries, exits
and transfers happen all the time); ``fundbot run --live`` runs unmodified in another, on a SQLite ledger.

* kills: N cycles (``--kills``, default 60): start the daemon, wait a seeded random time, wait for the
  cycle's target in flight (an open intent in the ledger: an entry's order, an exit's order or a
  transfer, a third each), SIGKILL it within 0.1 s (or when 8 s pass without one). Orders answer 150 ms
  and transfers 400 ms late in this run, so kills land mid-call. Then one clean run settles.
* faults: one run per kind (``--faults truncate,empty,null,garbage``): the answers of ``--rate`` (0.2) of
  the order, transfer, positionRisk and userTrades/myTrades calls are broken after the venue executed
  them; the faults end after ``--fault-run-s`` wall seconds, the daemon runs on clean for the settle
  phase (3 simulated hours), then stops with SIGTERM. A daemon that exits on its own is started again (a
  supervisor would) and counted.

After each run the audit (benchmarks/chaos_audit.py) compares the ledger with the venue's own log (the
emulator's read-only ``GET /_emulator/journal``) and the table lists what it found. Exit 1 when any run's
audit fails, 2 when the harness itself could not run. About 4 minutes for 60 kills and 1.5 minutes per
fault kind at the default speed (x900) on 2 cores.

Run: .venv/bin/python benchmarks/chaos.py [--kills 60] [--seed 1] [--faults KINDS|none] [--rate 0.2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: benchmarks/ is on the path, the repository is not
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_audit import CATEGORIES, AuditReport, audit, read_ledger  # noqa: E402
from bot.emulator.admin import API_KEY_HEADER, JOURNAL_PATH  # noqa: E402
from bot.emulator.server import EmulatorProcess, start_emulator_subprocess  # noqa: E402
from bot.emulator.weights import DEFAULT_LIMITS  # noqa: E402

SYMBOLS = ("SOL/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT")
START = "2025-07-21"
HOUR_S = 3600
FAULT_KINDS = ("truncate", "empty", "null", "garbage")
# The calls issue 16 names: orders, transfers, positionRisk, userTrades (both markets' trade lists).
FAULTED_ENDPOINTS = (
    "POST /api/v3/order",
    "POST /fapi/v1/order",
    "POST /sapi/v1/asset/transfer",
    "GET /fapi/v*/positionRisk",
    "GET /api/v3/myTrades",
    "GET /fapi/v1/userTrades",
)
JOURNAL_FILE = "journal.json"  # the venue's log as the audit read it, kept in each run's directory
FUNDING_GRACE_MS = 900_000  # the daemon's funding_grace_s: a payment not in the ledger by then is missing
DAEMON_ENV = {
    "FUNDBOT_HTTP__ENABLED": "false",
    "FUNDBOT_LOG_LEVEL": "WARNING",
    "FUNDBOT_ENGINE__SHUTDOWN_TIMEOUT_S": "20",
    "FUNDBOT_ENGINE__SCAN_INTERVAL_S": "600",
    "FUNDBOT_ENGINE__COLLATERAL_INTERVAL_S": "120",
    "FUNDBOT_ENGINE__RECONCILE_INTERVAL_S": "1800",
    "FUNDBOT_ENGINE__SNAPSHOT_INTERVAL_S": "3600",
    # a narrower collateral band than the default 0.35..0.7: transfers on every few percent of price move
    "FUNDBOT_TREASURY__LOW_RATIO": "0.42",
    "FUNDBOT_TREASURY__HIGH_RATIO": "0.6",
}
# Slow mutating calls in the kill run, so a SIGKILL can land while one is in flight (sent, not answered).
SLOW_CALLS = [
    {"endpoint": "POST /api/v3/order", "kind": "latency", "latency_ms": 150},
    {"endpoint": "POST /fapi/v1/order", "kind": "latency", "latency_ms": 150},
    {"endpoint": "POST /sapi/v1/asset/transfer", "kind": "latency", "latency_ms": 400},
]


@dataclass(frozen=True, slots=True)
class Options:
    kills: int = 60
    seed: int = 1
    faults: tuple[str, ...] = FAULT_KINDS
    rate: float = 0.2
    speed: float = 900.0
    fault_run_s: float = 60.0  # wall seconds of faulted trading per fault kind
    settle_s: float = 3 * HOUR_S  # simulated seconds of clean running before the audit
    settle_timeout_s: float = 120.0  # wall seconds the settle phase may take at most
    up_s: tuple[float, float] = (1.0, 5.0)  # wall seconds a daemon runs before the hunt for an action
    hunt_s: float = 8.0  # wall seconds to wait for the cycle's action in flight before killing anyway
    symbols: tuple[str, ...] = SYMBOLS
    period_h: float = 4.0  # a symbol's funding flips sign every period_h / 2 simulated hours
    out: Path | None = None
    reaudit: Path | None = None


@dataclass(slots=True)
class RunResult:
    name: str
    kills: int = 0
    kills_in_flight: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    exits: list[str] = field(default_factory=list)  # daemons that exited on their own: code and last line
    faults: Counter[str] = field(default_factory=Counter)
    report: AuditReport | None = None
    wall_s: float = 0.0
    sim_h: float = 0.0
    directory: Path | None = None
    error: str | None = None
    journal: dict[str, Any] | None = None  # the venue's log the audit read (kept to audit again)
    funding_until_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.report is not None and self.report.ok


# ---- the scenario ------------------------------------------------------------------------------


def build_scenario(opts: Options, sim_hours: float, faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Funding that flips per symbol (entries then exits), +-15 % price shocks (collateral transfers both
    ways), request-weight limits scaled to the speed (as ``fundbot demo`` does) and the given faults."""
    rng = random.Random(opts.seed)
    overrides, shocks = [], []
    n = len(opts.symbols)
    for i, symbol in enumerate(opts.symbols):
        sid = symbol.replace("/", "")
        t = opts.period_h * i / n
        positive = True
        while t < sim_hours:
            rate = "0.0025" if positive else "-0.0025"
            overrides.append({"symbol": sid, "rate": rate, "at": f"+{t * HOUR_S:.0f}s"})
            t += opts.period_h / 2
            positive = not positive
    t, up = 1.5, True
    while t < sim_hours:
        symbol = rng.choice(opts.symbols).replace("/", "")
        shocks.append({"symbol": symbol, "pct": 15 if up else -13, "at": f"+{t * HOUR_S:.0f}s", "duration": "10m"})
        t += rng.uniform(0.5, 2.0)
        up = not up
    limits = {k: int(v * opts.speed) for k, v in DEFAULT_LIMITS.items()}
    return {
        "seed": opts.seed,
        "faults": faults,
        "funding_overrides": overrides,
        "price_shocks": shocks,
        "rate_limits": {"per_minute": limits, "ban_seconds": max(120 / opts.speed, 1)},
    }


def answer_faults(kind: str, rate: float, end_s: float) -> list[dict[str, Any]]:
    """``kind`` answers on ``rate`` of each faulted call, executed first ('after'), until ``end_s``."""
    return [
        {"endpoint": e, "kind": kind, "rate": rate, "after": True, "end": f"+{end_s:.0f}s"} for e in FAULTED_ENDPOINTS
    ]


# ---- processes ---------------------------------------------------------------------------------


class Run:
    """One emulator, one ledger, daemons started one after another."""

    def __init__(self, name: str, opts: Options, root: Path, scenario: dict[str, Any]) -> None:
        self.name, self.opts = name, opts
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "ledger.db"
        (self.dir / "scenario.json").write_text(json.dumps(scenario, indent=1))
        args = ["--speed", str(opts.speed), "--symbols", ",".join(opts.symbols), "--start", START]
        self.emulator: EmulatorProcess = start_emulator_subprocess(
            self.dir / "emulator.json", *args, "--scenario", str(self.dir / "scenario.json"), timeout=120
        )
        self.daemon: subprocess.Popen[bytes] | None = None
        self.result = RunResult(name, directory=self.dir)
        self.log_index = 0

    # venue
    def journal(self) -> dict[str, Any]:
        conn = self.emulator.connection
        req = urllib.request.Request(
            f"http://{conn['host']}:{conn['http_port']}{JOURNAL_PATH}", headers={API_KEY_HEADER: conn["api_key"]}
        )
        with urllib.request.urlopen(req, timeout=60) as answer:
            return json.loads(answer.read())

    def sim_now_ms(self) -> int:
        conn = self.emulator.connection
        return int(conn["sim_start_ms"] + (time.time() * 1000 - conn["wall_start_ms"]) * conn["speed"])

    # daemon
    def start_daemon(self) -> None:
        self.log_index += 1
        env = {
            **os.environ,
            **DAEMON_ENV,
            "FUNDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
            "FUNDBOT_DATA_DIR": str(self.dir),
            "FUNDBOT_SYMBOLS": ",".join(self.opts.symbols),
        }
        log = (self.dir / f"daemon-{self.log_index:03d}.log").open("wb")
        conn = str(self.emulator.connection_file)
        cmd = [sys.executable, "-m", "bot.cli", "run", "--live", "--connection-file", conn]
        self.daemon = subprocess.Popen(cmd, cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.result.starts += 1

    def starts_recorded(self) -> int:
        """How many times the engine wrote its 'engine started' event (after markets, settings and the
        reconciliation at start): the daemon is trading from then on."""
        if not self.db.exists():
            return 0
        try:
            conn = sqlite3.connect(self.db, timeout=5)
            try:
                row = conn.execute("SELECT COUNT(*) FROM events WHERE message LIKE 'engine started%'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:  # the first start may not have created the tables yet
            return 0
        return int(row[0])

    def wait_started(self, before: int, timeout_s: float = 90.0) -> None:
        """Wait until this start's engine is up (or the daemon exited), so a kill's delay is counted from a
        trading daemon, not from a Python still importing on a busy machine."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.starts_recorded() > before or (self.daemon is not None and self.daemon.poll() is not None):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the daemon did not start within {timeout_s:.0f} s (see {self.dir})")

    def daemon_exited(self) -> bool:
        """True (and noted) when the daemon stopped on its own; a supervisor would start it again."""
        if self.daemon is None or self.daemon.poll() is None:
            return False
        lines = (self.dir / f"daemon-{self.log_index:03d}.log").read_text(errors="replace").strip().splitlines()
        self.result.exits.append(f"exit {self.daemon.returncode}: {lines[-1][:200] if lines else '(no output)'}")
        self.daemon = None
        return True

    def kill(self) -> None:
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait(timeout=30)
        self.daemon = None
        self.result.kills += 1

    def stop(self) -> None:
        """SIGTERM and wait for the clean stop (SIGKILL only if it hangs past its shutdown timeout)."""
        if self.daemon is None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            self.result.exits.append("did not stop within 60 s of SIGTERM: killed")
        self.daemon = None

    # ledger
    def in_flight(self) -> dict[str, str]:
        """What the ledger shows open, by client id: 'entry', 'exit', 'rebalance', 'order' (orders, by
        their pair's state), 'transfer' (intents or transfer rows), 'cancel', 'margin'."""
        if not self.db.exists():
            return {}
        try:
            conn = sqlite3.connect(self.db, timeout=5)
            try:
                intents = conn.execute(
                    "SELECT i.client_id, i.kind, p.state FROM intents i LEFT JOIN pairs p ON p.id = i.pair_id "
                    "WHERE i.status IN ('pending', 'sent', 'unknown')"
                ).fetchall()
                transfers = conn.execute("SELECT client_id FROM transfers WHERE status IN ('pending', 'sent')")
                open_transfers = [cid for (cid,) in transfers.fetchall()]
            finally:
                conn.close()
        except sqlite3.Error:  # not migrated yet, or busy
            return {}
        names = {"opening": "entry", "closing": "exit", "rebalancing": "rebalance"}
        out = {cid: "transfer" for cid in open_transfers}
        out.update({cid: names.get(state or "", "order") if kind == "order" else kind for cid, kind, state in intents})
        return out

    def new_in_flight(self, stale: dict[str, str]) -> set[str]:
        """The kinds open now that were not already open (left by an earlier kill) in ``stale``."""
        return {kind for cid, kind in self.in_flight().items() if cid not in stale}

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        self.emulator.stop()

    # the end of a run
    def settle_and_audit(self) -> None:
        """A clean daemon run for ``settle_s`` simulated seconds (and until nothing is in flight), a
        SIGTERM, then the audit."""
        if self.daemon is None or self.daemon.poll() is not None:
            self.daemon_exited()
            started = self.starts_recorded()
            self.start_daemon()
            self.wait_started(started)
        until = self.sim_now_ms() + int(self.opts.settle_s * 1000)
        stale = self.in_flight()  # rows the daemon may never resolve: the audit reports them, no waiting
        deadline = time.monotonic() + self.opts.settle_timeout_s
        while time.monotonic() < deadline:
            if self.daemon_exited():
                self.start_daemon()
            if self.sim_now_ms() >= until and not self.new_in_flight(stale):
                break
            time.sleep(0.2)
        stopped_ms = self.sim_now_ms()  # at speed 900 a wall second is 15 simulated minutes
        self.stop()
        journal = self.journal()
        ledger = read_ledger(self.db)
        self.result.journal, self.result.funding_until_ms = journal, stopped_ms - FUNDING_GRACE_MS
        r = self.result
        r.sim_h = (journal["now"] - self.emulator.connection["sim_start_ms"]) / 3_600_000
        runs = {"kills": r.kills, "kills_in_flight": dict(r.kills_in_flight), "starts": r.starts, "exits": r.exits}
        runs["sim_h"] = r.sim_h
        saved = {"funding_until_ms": r.funding_until_ms, "run": runs, "journal": journal}
        (self.dir / JOURNAL_FILE).write_text(json.dumps(saved))  # `--reaudit` reads it with the ledger
        self.result.report = audit(journal, ledger, funding_until_ms=self.result.funding_until_ms)
        for rule in journal["faults"]:
            self.result.faults[rule["kind"]] += rule["fired"]


def _sim_hours(opts: Options, wall_s: float) -> float:
    return (wall_s + opts.settle_timeout_s + 60) * opts.speed / HOUR_S


def run_kills(opts: Options, root: Path, faults: list[dict[str, Any]] | None = None) -> RunResult:
    """``opts.kills`` SIGKILLs at seeded random instants, each waiting for an action in flight first
    (``faults``: scenario fault rules on top, as the harness's own test uses)."""
    rng = random.Random(opts.seed)
    expected_wall = opts.kills * (sum(opts.up_s) / 2 + opts.hunt_s + 3)
    scenario = build_scenario(opts, _sim_hours(opts, expected_wall), SLOW_CALLS + (faults or []))
    run = Run("kills", opts, root, scenario)
    t0 = time.monotonic()
    try:
        for _ in range(opts.kills):
            # a third of the kills each wait for an entry's order, an exit's order or a transfer in flight
            target = rng.choice(("entry", "exit", "transfer"))
            stale = run.in_flight()  # left open by earlier kills: not this kill's action
            started = run.starts_recorded()
            run.start_daemon()
            run.wait_started(started)
            time.sleep(rng.uniform(*opts.up_s))
            hunt_until = time.monotonic() + opts.hunt_s
            while time.monotonic() < hunt_until:
                if target in run.new_in_flight(stale):
                    break
                if run.daemon_exited():
                    run.start_daemon()
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.1))
            if run.daemon_exited():
                continue
            run.kill()
            for kind in run.new_in_flight(stale) or {"idle"}:
                run.result.kills_in_flight[kind] += 1
        run.settle_and_audit()
    except Exception as err:  # the harness failed, not the bot: say so and keep the other runs
        run.result.error = f"{type(err).__name__}: {err}"
    finally:
        run.close()
    run.result.wall_s = time.monotonic() - t0
    return run.result


def run_faults(kind: str, opts: Options, root: Path) -> RunResult:
    """One daemon trading through ``kind`` answers for ``fault_run_s`` wall seconds, then clean."""
    start_allowance_s = 15  # wall seconds for the emulator to load and the daemon to start
    fault_end_s = (start_allowance_s + opts.fault_run_s) * opts.speed
    faults = answer_faults(kind, opts.rate, fault_end_s)
    run = Run(f"faults-{kind}", opts, root, build_scenario(opts, _sim_hours(opts, opts.fault_run_s + 15), faults))
    t0 = time.monotonic()
    try:
        run.start_daemon()
        end_ms = run.emulator.connection["sim_start_ms"] + int(fault_end_s * 1000)
        while run.sim_now_ms() < end_ms:
            if run.daemon_exited():
                run.start_daemon()
            time.sleep(0.2)
        run.settle_and_audit()
    except Exception as err:
        run.result.error = f"{type(err).__name__}: {err}"
    finally:
        run.close()
    run.result.wall_s = time.monotonic() - t0
    return run.result


# ---- the table ---------------------------------------------------------------------------------


def render(results: list[RunResult]) -> list[str]:
    """One column per run: what was done to it and what the audit found."""
    names = [r.name for r in results]
    width = max(12, *(len(n) for n in names))
    rows: list[tuple[str, list[str]]] = [
        ("wall s / sim h", [f"{r.wall_s:.0f} / {r.sim_h:.1f}" for r in results]),
        ("daemon starts", [str(r.starts) for r in results]),
        ("SIGKILLs", [str(r.kills) for r in results]),
        ("  in flight", [_counter(r.kills_in_flight) for r in results]),
        ("exits on its own", [str(len(r.exits)) for r in results]),
        ("faults injected", [_counter(r.faults) for r in results]),
    ]
    reports = [r.report or AuditReport() for r in results]
    rows += [
        ("venue orders", [str(a.venue_orders) for a in reports]),
        ("venue trades", [str(a.venue_trades) for a in reports]),
        ("venue transfers", [str(a.venue_transfers) for a in reports]),
        ("venue funding pmts", [str(a.venue_funding) for a in reports]),
        ("ledger orders", [str(a.ledger_orders) for a in reports]),
    ]
    for category in CATEGORIES:
        rows.append((category, [str(a.counts().get(category, 0)) for a in reports]))
    rows.append(("largest naked USDT", [_naked(a) for a in reports]))
    rows.append(("spot dust (not failing)", [str(len(a.dust)) for a in reports]))
    rows.append(("spot over short > 1 lot", [str(len(a.beyond_lot)) for a in reports]))
    rows.append(("AUDIT", ["error" if r.error else "PASS" if r.ok else "FAIL" for r in results]))
    label = max(len(k) for k, _ in rows)
    cells = [max(width, *(len(v[i]) for _, v in rows)) for i in range(len(results))]
    out = [" " * label + " | " + " | ".join(n.rjust(cells[i]) for i, n in enumerate(names))]
    out.append("-" * len(out[0]))
    out += [k.ljust(label) + " | " + " | ".join(v[i].rjust(cells[i]) for i in range(len(v))) for k, v in rows]
    return out


def _counter(c: Counter[str]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(c.items())) or "-"


def _naked(report: AuditReport) -> str:
    if not report.naked_usdt:
        return "-"
    symbol, amount = max(report.naked_usdt.items(), key=lambda kv: abs(kv[1]))
    return f"{amount:+,.0f} {symbol}"


def details(results: list[RunResult], limit: int = 12) -> list[str]:
    out = []
    for r in results:
        if r.error:
            out.append(f"{r.name}: harness error: {r.error}")
        for line in r.exits[:limit]:
            out.append(f"{r.name}: daemon {line}")
        if r.report is None:
            continue
        for line in r.report.dust:
            out.append(f"{r.name}: spot dust: {line}")
        by_category: dict[str, list[str]] = {}
        for f in r.report.findings:
            by_category.setdefault(f.category, []).append(f.detail)
        for category, lines in by_category.items():
            for line in lines[:limit]:
                out.append(f"{r.name}: {category}: {line}")
            if len(lines) > limit:
                out.append(f"{r.name}: {category}: ... and {len(lines) - limit} more")
    return out


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kills", type=int, default=60, help="kill/restart cycles (0: no kill run)")
    p.add_argument("--seed", type=int, default=1, help="seed of kill instants, shocks and fault draws")
    p.add_argument("--faults", default=",".join(FAULT_KINDS), help="answer fault kinds, one run each ('none': no run)")
    p.add_argument("--rate", type=float, default=0.2, help="share of faulted calls whose answer is broken (0..1)")
    p.add_argument("--speed", type=float, default=900.0, help="emulator speed (simulated s per wall s)")
    p.add_argument("--fault-run-s", type=float, default=60.0, help="wall seconds of faulted trading per kind")
    p.add_argument("--quick", action="store_true", help="6 kills and 20 s fault runs: a smoke run of the harness")
    p.add_argument("--dir", type=Path, default=None, help="where runs keep ledgers and logs (default: a temp dir)")
    p.add_argument("--reaudit", type=Path, default=None, help="audit again the runs kept in this --dir; run nothing")
    a = p.parse_args(argv)
    kinds = () if a.faults.strip().lower() == "none" else tuple(k.strip() for k in a.faults.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        p.error(f"--faults: unknown kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)} or 'none'")
    if not 0 < a.rate <= 1:
        p.error("--rate must be within (0, 1]")
    if a.kills < 0:
        p.error("--kills must be 0 or more")
    kills, fault_run_s = (min(a.kills, 6), min(a.fault_run_s, 20.0)) if a.quick else (a.kills, a.fault_run_s)
    return Options(
        kills=kills, seed=a.seed, faults=kinds, rate=a.rate, speed=a.speed, fault_run_s=fault_run_s, out=a.dir
    )


def reaudit(root: Path) -> list[RunResult]:
    """The audit again, on each run directory's ledger and kept journal (after a change to the audit)."""
    results = []
    for run_dir in sorted(d for d in root.iterdir() if (d / JOURNAL_FILE).exists()):
        saved = json.loads((run_dir / JOURNAL_FILE).read_text())
        result = RunResult(run_dir.name, directory=run_dir, journal=saved["journal"])
        result.funding_until_ms = saved["funding_until_ms"]
        run = saved.get("run", {})
        result.kills, result.starts, result.exits = run.get("kills", 0), run.get("starts", 0), run.get("exits", [])
        result.kills_in_flight.update(run.get("kills_in_flight", {}))
        result.sim_h = run.get("sim_h", 0.0)
        result.report = audit(
            saved["journal"], read_ledger(run_dir / "ledger.db"), funding_until_ms=result.funding_until_ms
        )
        for rule in saved["journal"]["faults"]:
            result.faults[rule["kind"]] += rule["fired"]
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.reaudit is not None:
        results = reaudit(opts.reaudit)
        if not results:
            print(f"chaos: no run with {JOURNAL_FILE} under {opts.reaudit}", file=sys.stderr)
            return 2
        print("\n".join(render(results)))
        print("\n".join(details(results)))
        return 0 if all(r.ok for r in results) else 1
    root = opts.out or Path(tempfile.mkdtemp(prefix="fundbot-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    import bot

    code = Path(bot.__file__).resolve().parent.parent  # what the child processes import too (same path)
    print(f"chaos: runs in {root}; seed {opts.seed}, speed x{opts.speed:g}; code from {code}", flush=True)
    results = []
    if opts.kills:
        results.append(run_kills(opts, root))
        print(f"chaos: kills done ({results[-1].wall_s:.0f} s)", flush=True)
    for kind in opts.faults:
        results.append(run_faults(kind, opts, root))
        print(f"chaos: {kind} done ({results[-1].wall_s:.0f} s)", flush=True)
    if not results:
        print("chaos: nothing to run (--kills 0 and --faults none)", file=sys.stderr)
        return 2
    print("\n".join(render(results)))
    print("\n".join(details(results)))
    if any(r.error for r in results):
        return 2
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
