"""Liveness for the daemon: a small mutable ``HealthState`` the engine updates, served as /healthz and /metrics
(on the same server as the operator API and the dashboard, ``bot.ops.api``, when a token is set).

The engine owns the clock, so ``HealthState`` never reads the wall clock on its own unless no clock was
injected; tests drive time through ``now_fn``. /healthz answers 200 when every check is within its
threshold and 503 otherwise, with the ages in the JSON body so an operator sees which check failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

from bot.services.metrics import StateCollector, exposition, new_registry


class HttpMount(Protocol):
    """What the health server mounts beside /healthz and /metrics (the operator API, ``bot.ops.api``): a
    protocol, so this runtime service never imports the views it serves."""

    def middlewares(self) -> list[Callable[..., Awaitable[web.StreamResponse]]]: ...

    def install(self, app: web.Application) -> None: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Maximum ages (ms) before a check fails. Defaults match ``HttpConfig``."""

    scheduler_max_age_ms: int = 180_000
    venue_max_age_ms: int = 300_000
    scan_max_age_ms: int = 7_200_000

    @classmethod
    def from_config(cls, http: Any) -> HealthThresholds:
        """From ``settings.http`` (seconds) to milliseconds."""
        return cls(
            scheduler_max_age_ms=int(http.scheduler_max_age_s * 1000),
            venue_max_age_ms=int(http.venue_max_age_s * 1000),
            scan_max_age_ms=int(http.scan_max_age_s * 1000),
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    age_ms: int | None  # None: never marked
    max_age_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "age_s": None if self.age_ms is None else round(self.age_ms / 1000, 3),
            "max_age_s": self.max_age_ms / 1000,
        }


@dataclass
class HealthState:
    """What the engine reports about itself; read by /healthz and /metrics.

    A check that has never been marked counts its age from ``started_ms``: a fresh process is healthy
    until the threshold passes without the first success, then it is not.
    """

    now_fn: Callable[[], int] = wall_clock_ms
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    started_ms: int | None = None
    scheduler_ms: int | None = None
    venue_ok_ms: int | None = None
    scan_ok_ms: int | None = None
    errors: Counter[str] = field(default_factory=Counter)
    transfer_retries: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    pairs_open: int = 0
    notional_usdt: Decimal = Decimal(0)
    collateral_ratio: Decimal | None = None
    funding_earned_usdt: Decimal = Decimal(0)
    job_skips: Counter[str] = field(default_factory=Counter)
    registry: CollectorRegistry = field(init=False, repr=False)
    collector: StateCollector = field(init=False, repr=False)
    job_seconds: Histogram = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.started_ms is None:
            self.started_ms = self.now_fn()
        self.registry, self.collector, self.job_seconds = new_registry(self)

    # -- updates from the engine -------------------------------------------------------------------
    def mark_scheduler_alive(self, now_ms: int) -> None:
        """Called by a scheduler heartbeat job: proves the job loop still runs."""
        self.scheduler_ms = now_ms

    def mark_venue_ok(self, now_ms: int) -> None:
        """Called after any successful venue call."""
        self.venue_ok_ms = now_ms

    def mark_scan_ok(self, now_ms: int) -> None:
        """Called when a funding scan (rates for all symbols) completed."""
        self.scan_ok_ms = now_ms

    def inc_error(self, kind: str) -> None:
        """Count an error by kind (e.g. 'venue', 'order', 'transfer', 'webhook')."""
        self.errors[kind] += 1

    def inc_transfer_retry(self) -> None:
        self.transfer_retries += 1

    def inc_alert(self, kind: str) -> None:
        self.alerts[kind] += 1

    def observe_job(self, job: str, seconds: float) -> None:
        """One run of a daemon job took ``seconds`` of real time (``fundbot_job_duration_seconds``)."""
        self.job_seconds.labels(job).observe(seconds)

    def skip_job(self, job: str) -> None:
        """A run of ``job`` was not started: the previous one was still in flight."""
        self.job_skips[job] += 1

    def set_portfolio(
        self,
        *,
        pairs_open: int,
        notional_usdt: Decimal,
        collateral_ratio: Decimal | None,
        funding_earned_usdt: Decimal,
    ) -> None:
        """The gauges from the latest portfolio view (the engine calls this after each cycle)."""
        self.pairs_open = pairs_open
        self.notional_usdt = notional_usdt
        self.collateral_ratio = collateral_ratio
        self.funding_earned_usdt = funding_earned_usdt

    # -- reads -------------------------------------------------------------------------------------
    def _age(self, marked_ms: int | None, now_ms: int) -> tuple[int | None, int]:
        """(age since the mark or None, age used for the check)."""
        assert self.started_ms is not None
        if marked_ms is None:
            return None, now_ms - self.started_ms
        return now_ms - marked_ms, now_ms - marked_ms

    def checks(self, now_ms: int | None = None) -> list[CheckResult]:
        now = self.now_fn() if now_ms is None else now_ms
        out = []
        for name, marked, limit in (
            ("scheduler", self.scheduler_ms, self.thresholds.scheduler_max_age_ms),
            ("venue", self.venue_ok_ms, self.thresholds.venue_max_age_ms),
            ("funding_scan", self.scan_ok_ms, self.thresholds.scan_max_age_ms),
        ):
            shown, effective = self._age(marked, now)
            out.append(CheckResult(name=name, ok=effective <= limit, age_ms=shown, max_age_ms=limit))
        return out

    def age_ms(self, marked_ms: int | None, now_ms: int | None = None) -> int | None:
        if marked_ms is None:
            return None
        return (self.now_fn() if now_ms is None else now_ms) - marked_ms

    def health(self, now_ms: int | None = None) -> dict[str, Any]:
        """The /healthz body: overall status plus each check's age and threshold."""
        now = self.now_fn() if now_ms is None else now_ms
        checks = self.checks(now)
        return {
            "status": "ok" if all(c.ok for c in checks) else "unhealthy",
            "now_ms": now,
            "checks": {c.name: c.to_dict() for c in checks},
        }

    def healthy(self, now_ms: int | None = None) -> bool:
        return all(c.ok for c in self.checks(now_ms))


StateProvider = HealthState | Callable[[], HealthState]


def _resolve(provider: StateProvider) -> HealthState:
    return provider if isinstance(provider, HealthState) else provider()


def build_health_app(state_provider: StateProvider, api: HttpMount | None = None) -> web.Application:
    """aiohttp app with GET /healthz (JSON, 200 or 503) and GET /metrics (Prometheus text; OpenMetrics when the
    scraper asks for it), both open; with ``api``, also the operator API and the dashboard (token required).

    ``state_provider`` is the engine's ``HealthState`` or a zero-argument callable returning it.
    """

    async def healthz(_request: web.Request) -> web.Response:
        state = _resolve(state_provider)
        now = state.now_fn()
        body = state.health(now)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition(_resolve(state_provider), request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(middlewares=api.middlewares() if api is not None else ())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if api is not None:
        api.install(app)
    return app


async def start_health_server(
    state: StateProvider, host: str = "127.0.0.1", port: int = 8787, api: HttpMount | None = None
) -> web.AppRunner:
    """Serve the health app (and ``api`` when given); returns the runner (``await runner.cleanup()`` stops it).

    Port 0 picks a free port; ``bound_port(runner)`` tells which.
    """
    runner = web.AppRunner(build_health_app(state, api), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port the runner listens on (useful after binding port 0)."""
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    raise RuntimeError("health server is not listening")
