"""The long-lived daemon: builds the parts from settings, schedules the engine's jobs on APScheduler's
AsyncIOScheduler, follows mark prices, serves /healthz and /metrics (and the operator API and dashboard
when ``http.api_token`` is set), follows the account's user-data stream in live runs (fills, liquidations
and ADL as they happen, ``bot.engine.user_stream``), and stops cleanly on SIGTERM/SIGINT.

Clock: against the real venue it is the wall clock; against the emulator it is the emulator's simulated
clock (from the connection file), and job periods are divided by the emulator's speed, so a replay at
3600x runs the same schedule an hour per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Mode, Settings
from bot.engine.core import Engine
from bot.engine.jobs import JobRunner
from bot.engine.ratelimit import GatedVenue, RateGate
from bot.execution.executor import Executor
from bot.ledger import db
from bot.ledger.models import EventKind, Transfer
from bot.ledger.recorder import Recorder
from bot.ledger.repository import Ledger
from bot.reconcile import Reconciler
from bot.services.alerts import Alerter
from bot.services.health import HealthState, HealthThresholds, bound_port, start_health_server
from bot.treasury.evidence import window_ms as transfer_window_ms
from bot.treasury.service import Treasury
from bot.venues.base import Venue
from strategies.funding_carry import FundingCarry

if TYPE_CHECKING:  # imported where used: every command line imports this module, only `run` needs them
    from bot.engine.user_stream import UserStreamHandler
    from bot.ops.api import ApiService
    from bot.services.notify import Notifier

log = logging.getLogger(__name__)

RECV_WINDOW_MS = 10_000  # ccxt's binance recvWindow: the venue rejects a signed request older than this


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Runtime:
    """Everything one daemon run owns, closed together by ``close``."""

    engine: Engine
    venue: Venue
    ledger: Ledger
    health: HealthState
    alerter: Alerter
    now: Callable[[], int]
    time_scale: float = 1.0
    mode: str = "dry-run"
    notifier: Notifier | None = None

    async def close(self) -> None:
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                await self.notifier.close()
        with contextlib.suppress(Exception):
            await self.alerter.close()
        with contextlib.suppress(Exception):
            await self.venue.close()
        await self.ledger.close()


def assemble_engine(
    settings: Settings,
    venue: Venue,
    ledger: Recorder,
    now: Callable[[], int],
    *,
    health: HealthState | None = None,
    alerter: Alerter | None = None,
    close_only: bool = False,
    strategy: Any = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
    time_scale: float = 1.0,
    rate_gate: RateGate | None = None,
) -> Engine:
    """Wire strategy, executor, treasury and reconciler over one venue and ledger (daemon and backtest).

    ``time_scale``: venue seconds per real second (an emulator at speed N). An order request can still
    execute until its recvWindow (real time) has passed, so reconciliation waits that long, in venue time,
    before it calls an unanswered order intent "never received" (or a transfer absent from the history).

    ``rate_gate``: put every venue call of every part through it (``GatedVenue``), as the daemon does; a
    backtest's simulated venue has no rate limits and runs without one.
    """
    gated = GatedVenue(venue, rate_gate, sleep=sleep) if rate_gate is not None else None
    if gated is not None:
        venue = gated
    window = transfer_window_ms(time_scale, RECV_WINDOW_MS)

    async def transfer_stuck(t: Transfer, age_ms: int) -> None:
        if alerter is not None:
            await alerter.transfer_stuck(
                t.client_id, t.asset, t.amount, t.from_wallet, t.to_wallet, age_ms, t.attempts, t.last_error
            )

    treasury = Treasury(
        venue,
        ledger,
        settings.treasury,
        now,
        sleep=sleep,
        margin_mode=settings.engine.margin_mode,
        transfer_window_ms=window,
        on_stuck=transfer_stuck if alerter is not None else None,
        on_retry=health.inc_transfer_retry if health is not None else None,
    )
    executor = Executor(venue, ledger, now, settings.execution, funder=treasury, sleep=sleep)
    treasury.reducer = executor
    reconciler = Reconciler(
        venue,
        ledger,
        now,
        symbols=list(settings.symbols),
        min_intent_age_ms=max(int(settings.execution.order_timeout_s * 2000), int(RECV_WINDOW_MS * time_scale)),
        config=settings.execution,
        sleep=sleep,
        transfer_window_ms=window,
    )
    engine = Engine(
        venue=venue,
        ledger=ledger,
        strategy=strategy or FundingCarry(settings.strategy),
        executor=executor,
        treasury=treasury,
        reconciler=reconciler,
        symbols=list(settings.symbols),
        now=now,
        config=settings.engine,
        universe=settings.universe,
        health=health,
        alerter=alerter,
        close_only=close_only,
        gate=rate_gate or RateGate(),
    )
    if gated is not None:
        gated.on_limit = engine.record_rate_limit
    return engine


async def open_venue(
    settings: Settings, mode: Mode, connection_file: Path | None, *, ledger: Ledger | None = None, fresh: bool = False
) -> tuple[Venue, Callable[[], int], float, bool, Settings]:
    """The venue, the clock, the time scale for a run, whether its account is a new paper account, and
    ``settings`` with the symbols to trade (the universe when FUNDBOT_SYMBOLS is empty: ``resolve_symbols``).

    live + connection file: trade the emulator's account through ccxt. dry-run: market data from the
    venue (emulator or real Binance public API), account simulated in-process (``PaperVenue``): the
    ledger's paper account carried on, or a new one (``fresh``, or none in the ledger yet).
    """
    from bot.venues.ccxt_factory import build_client, build_live_client
    from bot.venues.ccxt_venue import CcxtVenue

    if connection_file is not None:
        from bot.emulator.connection import read_connection_file

        conn = read_connection_file(connection_file)
        speed = float(conn.get("speed") or 0)
        if speed <= 0:
            raise ValueError(f"{connection_file}: the emulator runs on a manual clock; start it with --speed N")

        def now() -> int:
            return int(conn["sim_start_ms"]) + int((wall_ms() - int(conn["wall_start_ms"])) * speed)

        client = build_client(conn, pro=True, tls=True, rateLimit=1)
        market = CcxtVenue(client, account="emulator", wall_ms=wall_ms, time_resync_s=None)
        market.now_ms = _async_now(now)  # type: ignore[method-assign]  # the emulator's clock, not the wall's
        scale = speed
    else:
        if mode is Mode.LIVE and not (settings.api_key.get_secret_value() and settings.api_secret.get_secret_value()):
            raise ValueError("live mode needs FUNDBOT_API_KEY and FUNDBOT_API_SECRET")
        client = build_live_client(settings, pro=True)
        market = CcxtVenue(client, account="main")
        now = wall_ms
        scale = 1.0
    try:
        settings = await resolve_symbols(settings, market, ledger)
    except BaseException:
        await market.close()
        raise
    if mode is Mode.LIVE:
        return market, now, scale, False, settings
    from bot.venues.paper_venue import open_paper_account

    if ledger is None:
        raise ValueError("a dry run keeps its paper account in the ledger: open_venue needs it")
    try:
        paper, new = await open_paper_account(
            market,
            ledger,
            list(settings.symbols),
            fresh=fresh,
            leverage=settings.engine.leverage,
            margin_mode=settings.engine.margin_mode,
        )
    except BaseException:
        await market.close()  # never leave the ccxt session open behind a failed start
        raise
    return paper, now, scale, new, settings


async def resolve_symbols(settings: Settings, venue: Venue, ledger: Ledger | None) -> Settings:
    """``settings`` with ``symbols`` set: FUNDBOT_SYMBOLS as given (an allow-list; the engine checks each
    pair's listing), or the universe (``bot.engine.universe.select``) from ``venue``'s public market data
    (exchangeInfo, 24 h tickers). Pairs the ledger still holds stay in, whatever the filters say, so they
    can be closed. The choice and every pair left out are written to the ledger. The reads are retried
    while the venue answers transiently, for ``engine.start_retry_s``, as the engine's start reads are."""
    from bot.domain import PairState
    from bot.engine.universe import select
    from bot.ledger.models import EventKind

    if settings.symbols:  # an allow-list: the engine checks each pair's listing at start and every hour
        return settings
    now, listings = await _start_read(settings, lambda: _listings(venue))
    chosen = select(listings, [], settings.universe, now)
    pairs = await ledger.list_pairs() if ledger is not None else []
    held = sorted({p.symbol for p in pairs if p.state is not PairState.CLOSED} - set(chosen.symbols))
    symbols = chosen.symbols + [s for s in held if s in listings]
    if not symbols:
        raise ValueError(
            "no pair to trade: "
            + ("; ".join(f"{s}: {why}" for s, why in sorted(chosen.excluded.items())[:5]) or "the venue lists none")
        )
    if ledger is not None:
        await ledger.add_event(
            EventKind.INFO,
            f"universe: {len(symbols)} pairs traded ({', '.join(symbols[:12])}"
            f"{', ...' if len(symbols) > 12 else ''}), {len(chosen.excluded)} left out",
            ts_ms=now,
            details={"symbols": symbols, "excluded": chosen.excluded, "held": held},
        )
    return settings.model_copy(update={"symbols": symbols})


async def _listings(venue: Venue) -> tuple[int, dict[str, Any]]:
    return await venue.now_ms(), await venue.fetch_listings(None)


async def _start_read(settings: Settings, read: Callable[[], Awaitable[Any]]) -> Any:
    """``read()`` under the engine's start retry rule (``bot.engine.core.retry_at_start``)."""
    from bot.engine.core import retry_at_start

    return await retry_at_start(read, settings.engine.start_retry_s, "universe read")


def _async_now(now: Callable[[], int]) -> Callable[[], Any]:
    async def venue_now() -> int:
        return now()

    return venue_now


async def build_runtime(
    settings: Settings, *, mode: Mode, connection_file: Path | None, close_only: bool = False, fresh: bool = False
) -> Runtime:
    """``fresh``: a dry run opens a new paper account instead of carrying on the ledger's newest one."""
    ledger = await Ledger.open(settings.resolved_database_url(), migrate=True)
    try:
        venue, now, scale, new_account, settings = await open_venue(
            settings, mode, connection_file, ledger=ledger, fresh=fresh
        )
    except BaseException:
        await ledger.close()
        raise
    ledger.outages.clock = now  # a write outage is timed on the run's clock, like every event
    health = HealthState(now_fn=now, thresholds=_scaled_thresholds(settings, scale))
    alerter = Alerter.from_settings(ledger, settings, now_fn=now, health=health, cooldown_ms=3600_000)
    engine = assemble_engine(
        settings,
        venue,
        ledger,
        now,
        health=health,
        alerter=alerter,
        close_only=close_only,
        time_scale=scale,
        rate_gate=RateGate(),
    )
    engine.fresh_account = new_account  # a new paper account: earlier ones' pairs and intents are closed
    from bot.ops.summary import daily_summary
    from bot.services.notify import Notifier

    notifier = Notifier.from_settings(settings, ledger, now, health=health, summary=daily_summary)
    if notifier is not None:
        engine.on_trade = notifier.on_trade
    return Runtime(engine, venue, ledger, health, alerter, now, scale, mode.value, notifier)


def _scaled_thresholds(settings: Settings, scale: float) -> HealthThresholds:
    """Health ages are measured on the run's clock; against a fast emulator they stretch with its speed."""
    base = HealthThresholds.from_config(settings.http)
    if scale == 1.0:
        return base
    return HealthThresholds(
        scheduler_max_age_ms=int(base.scheduler_max_age_ms * scale),
        venue_max_age_ms=int(base.venue_max_age_ms * scale),
        scan_max_age_ms=int(base.scan_max_age_ms * scale),
    )


@dataclass
class Daemon:
    """Schedules the engine's jobs until stopped; ``run`` returns the process exit code."""

    rt: Runtime
    settings: Settings
    health_server: bool = True
    runner: JobRunner = field(init=False)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    _last_funding_sync: int = 0
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _rescan: asyncio.Task | None = None
    _rescan_wanted: bool = False
    http_port: int | None = None  # the port the HTTP server listens on once ``run`` started it
    user_stream: UserStreamHandler | None = None  # live runs: set once the user-data stream is followed

    def __post_init__(self) -> None:
        health = self.rt.health
        self.runner = JobRunner(
            on_error=self.rt.engine.on_job_error, on_done=health.observe_job, on_skip=health.skip_job
        )

    def request_stop(self) -> None:
        self.rt.engine.stop_entries()
        self.stop_event.set()

    def _period(self, seconds: float) -> float:
        return max(seconds / self.rt.time_scale, 0.05)

    async def _funding_due(self) -> None:
        """Sync funding income once each settlement (plus the delay) has passed, and at least every scan."""
        eng = self.rt.engine
        now = self.rt.now()
        delay = int(eng.config.funding_sync_delay_s * 1000)
        due = [f.next_funding_ms + delay for f in eng.last_funding.values() if f.next_funding_ms + delay <= now]
        stale = now - self._last_funding_sync >= eng.config.scan_interval_s * 1000
        if (due and max(due) > self._last_funding_sync) or stale:
            self._last_funding_sync = now
            await eng.sync_funding()

    def _jobs(self) -> dict[str, tuple[Callable[[], Any], float]]:
        eng, cfg = self.rt.engine, self.rt.engine.config
        return {
            "scan": (eng.scan, cfg.scan_interval_s),
            "collateral": (eng.check_collateral, cfg.collateral_interval_s),
            "funding": (self._funding_due, cfg.collateral_interval_s),
            "snapshot": (eng.snapshot_balances, cfg.snapshot_interval_s),
            "reconcile": (eng.reconcile, cfg.reconcile_interval_s),
        }

    def controls_changed(self) -> None:
        """The operator changed a control through the API: scan now (after the scan in flight, whose
        controls were read before the change), so an exit from the dashboard is not left for the next
        scheduled scan."""
        if self.stop_event.is_set():
            return
        self._rescan_wanted = True
        if self._rescan is None or self._rescan.done():
            self._rescan = asyncio.ensure_future(self._scan_after_current())

    async def _scan_after_current(self) -> None:
        while self._rescan_wanted and not self.stop_event.is_set():  # a change during that scan: once more
            await self.runner.idle("scan")
            self._rescan_wanted = False
            await self.runner.run("scan", self.rt.engine.scan)

    def api_service(self) -> ApiService:
        """The operator API over this run's ledger (off when no token is set)."""
        from bot.ops.api import ApiService

        s, rt = self.settings, self.rt
        band = (s.treasury.low_ratio, s.treasury.target_ratio, s.treasury.high_ratio)
        return ApiService(
            rt.ledger,
            token=s.http.api_token,
            now_fn=rt.now,
            health=rt.health,
            symbols=list(rt.engine.symbols),
            band=band,
            mode=rt.mode,
            venue=rt.venue.name,
            where=db.safe_url(s.resolved_database_url()),
            on_control=self.controls_changed,
        )

    async def _start_http(self) -> Any:
        from bot.ops.api import API_OFF

        http = self.settings.http
        api = self.api_service()
        runner = await start_health_server(self.rt.health, http.host, http.port, api=api)
        self.http_port = bound_port(runner)
        where = f"http://{http.host}:{self.http_port}"
        if api.enabled:
            log.info("operator API and dashboard on %s/ (bearer token required; /healthz, /metrics open)", where)
            if http.host not in ("127.0.0.1", "localhost", "::1"):
                log.warning(
                    "the API listens on %s over plain HTTP: the token crosses the network in clear unless a TLS "
                    "proxy (or a loopback-only port mapping, as in docker-compose.yml) stands in front",
                    http.host,
                )
        else:
            log.warning("%s; /healthz and /metrics are on %s", API_OFF, where)
        return runner

    async def _follow_marks(self) -> None:
        """Mark-price stream: a large move runs the collateral check at once (the poll is the fallback)."""
        eng = self.rt.engine
        while not self.stop_event.is_set():
            try:
                async for upd in self.rt.venue.watch_marks(list(eng.builder.markets) or eng.symbols):
                    if self.stop_event.is_set():
                        return
                    if await eng.on_mark(upd.symbol, upd.mark_price):
                        self.runner.start("collateral", eng.check_collateral)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await eng.on_job_error("mark_stream", exc)
                await asyncio.sleep(self._period(eng.config.collateral_interval_s))

    async def _follow_user_stream(self) -> None:
        """Live only (a dry run's account is simulated in-process): the account's user-data stream, so
        fills, liquidations and ADL arrive as they happen, and the listenKey keepalive ccxt does not do.
        Polling (order follow-up, reconciliation) stays the fallback while the stream is down."""
        venue = self.rt.venue
        watch = getattr(venue, "watch_user_events", None)
        if self.rt.mode != Mode.LIVE.value or watch is None:
            return
        from bot.engine.user_stream import UserStreamHandler

        every_s = self.settings.engine.listen_key_keepalive_s  # wall time, as Binance expires a listenKey
        venue.start_user_stream_keepalive(every_s)  # type: ignore[attr-defined]  # a CcxtVenue: it has watch_user_events
        self.user_stream = UserStreamHandler(self.rt.engine)
        await self.rt.ledger.add_event(
            EventKind.INFO,
            f"user-data stream on: fills, liquidations and ADL as they happen (polling stays the fallback); "
            f"listenKey keepalive every {every_s:.0f}s",
            ts_ms=self.rt.now(),
            details={"listen_key_keepalive_s": every_s},
        )
        await self.user_stream.follow(watch())

    async def run(self) -> int:
        eng = self.rt.engine
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        if self.stop_event.is_set():  # stopped while the runtime was being built: nothing ran yet
            await self.rt.close()
            return 0
        http_runner = None
        if self.health_server and self.settings.http.enabled:
            http_runner = await self._start_http()
        notifier = self.rt.notifier
        try:
            if notifier is not None:
                await notifier.begin()  # alerts of the start (reconciliation) are sent too
                notifier.start()
                log.info(
                    "notifications (%s and above) to %s; daily summary at %02d:00 UTC",
                    notifier.level.name.lower(),
                    ", ".join(notifier.targets),
                    notifier.summary_hour_utc,
                )
            await eng.start()
        except BaseException:  # cannot start (venue down, bad keys): release everything, then fail loudly
            if http_runner is not None:
                await http_runner.cleanup()
            await self.rt.close()
            raise
        self._tasks.append(asyncio.ensure_future(self._follow_user_stream()))  # before the first scan trades
        await self.runner.run("snapshot", eng.snapshot_balances)
        await self.runner.run("scan", eng.scan)
        scheduler = AsyncIOScheduler(timezone="UTC")
        for name, (fn, seconds) in self._jobs().items():
            scheduler.add_job(  # the scheduler only starts a job; the runner skips it while one is in flight
                self._start_job,
                IntervalTrigger(seconds=self._period(seconds)),
                args=[name, fn],
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        scheduler.add_job(self._heartbeat, IntervalTrigger(seconds=1), id="heartbeat", max_instances=1, coalesce=True)
        self._heartbeat()
        scheduler.start()
        self._tasks.append(asyncio.ensure_future(self._follow_marks()))
        log.info("fundbot running (%s, time scale %sx)", self.rt.mode, self.rt.time_scale)
        try:
            await self.stop_event.wait()
        finally:
            await self._shutdown(scheduler, http_runner)
        return 0

    async def _start_job(self, name: str, fn: Callable[[], Any]) -> None:
        self.runner.start(name, fn)

    def _heartbeat(self) -> None:
        self.rt.health.mark_scheduler_alive(self.rt.now())

    async def _shutdown(self, scheduler: AsyncIOScheduler, http_runner: Any) -> None:
        """Stop new entries, let in-flight jobs finish (bounded), sync funding and flush a last snapshot (so
        the ledger's payments explain its closing balances), close everything."""
        eng = self.rt.engine
        eng.stop_entries()
        scheduler.shutdown(wait=False)
        if self._rescan is not None:
            self._tasks.append(self._rescan)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        finished = await self.runner.drain(eng.config.shutdown_timeout_s)
        with contextlib.suppress(Exception):  # payments the last snapshot's balances already hold
            await eng.sync_funding()
        with contextlib.suppress(Exception):
            await eng.snapshot_balances()
        with contextlib.suppress(Exception):
            await self.rt.ledger.add_event(
                EventKind.INFO,
                "engine stopped"
                + ("" if finished else " (some work was still in flight; reconciliation will finish it)"),
                ts_ms=self.rt.now(),
            )
        if http_runner is not None:
            await http_runner.cleanup()
        await self.rt.close()
