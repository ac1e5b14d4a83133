"""/metrics through ``prometheus_client``: the ``HealthState`` gauges and counters under their stable names,
plus a latency histogram per daemon job.

The gauges are read from the state at scrape time by a collector (the engine only updates plain fields),
so nothing can drift between /healthz and /metrics. Every ``HealthState`` has a registry of its own:
tests and the backtest build many, and the process-wide default registry would mix them.

Series (names unchanged from the hand-written exporter, so dashboards keep working):
``fundbot_up``, ``fundbot_pairs_open``, ``fundbot_notional_usdt``, ``fundbot_collateral_ratio``,
``fundbot_funding_earned_usdt``, ``fundbot_errors_total{kind}``, ``fundbot_alerts_total{kind}``,
``fundbot_transfer_retries_total``, ``fundbot_last_scan_age_seconds``, ``fundbot_last_venue_ok_age_seconds``,
``fundbot_scheduler_heartbeat_age_seconds``; new: ``fundbot_job_duration_seconds{job}`` (histogram of
real seconds per job run) and ``fundbot_job_skipped_total{job}`` (runs not started because the previous
one of that job was still running: a job slower than its period).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest

if TYPE_CHECKING:
    from bot.services.health import HealthState

# Real seconds: a scan against Binance takes ~1-10 s (books of every symbol), a collateral check well under 1 s.
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
JOB_HISTOGRAM = "fundbot_job_duration_seconds"
JOB_SKIPPED = "fundbot_job_skipped_total"

disable_created_metrics()  # no ``*_created`` timestamp series beside each histogram: noise on every dashboard


def _num(value: Decimal | int | float | None) -> float:
    """Prometheus samples are floats; an unknown value is NaN, never a misleading 0."""
    return float("nan") if value is None else float(value)


def _age_s(marked_ms: int | None, now_ms: int) -> float | None:
    return None if marked_ms is None else (now_ms - marked_ms) / 1000


def _gauge(name: str, help_text: str, value: Decimal | int | float | None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, help_text)
    g.add_metric([], _num(value))
    return g


def _by_kind(name: str, help_text: str, counts: dict[str, int], label: str = "kind") -> CounterMetricFamily:
    """A counter per kind; ``{kind="none"} 0`` when nothing was counted, so the series exists from the start."""
    c = CounterMetricFamily(name, help_text, labels=[label])
    for kind, value in sorted(counts.items()) or [("none", 0)]:
        c.add_metric([kind], float(value))
    return c


class StateCollector:
    """Reads a ``HealthState`` at every scrape. ``now_ms`` pins the scrape instant (tests, a fixed render)."""

    def __init__(self, state: HealthState) -> None:
        self.state = state
        self.now_ms: int | None = None

    def collect(self) -> Iterator[Metric]:
        st = self.state
        now = st.now_fn() if self.now_ms is None else self.now_ms
        yield _gauge("fundbot_up", "1 when /healthz is ok, 0 when not", 1 if st.healthy(now) else 0)
        yield _gauge("fundbot_pairs_open", "pairs not closed", st.pairs_open)
        yield _gauge("fundbot_notional_usdt", "total short notional of open pairs", st.notional_usdt)
        yield _gauge("fundbot_collateral_ratio", "futures margin balance / total short notional", st.collateral_ratio)
        yield _gauge(
            "fundbot_funding_earned_usdt", "funding received minus paid since the ledger began", st.funding_earned_usdt
        )
        yield _by_kind("fundbot_errors_total", "errors by kind since start", dict(st.errors))
        yield _by_kind("fundbot_alerts_total", "alerts by kind since start", dict(st.alerts))
        retries = CounterMetricFamily("fundbot_transfer_retries_total", "wallet transfer retries since start")
        retries.add_metric([], float(st.transfer_retries))
        yield retries
        yield _gauge(
            "fundbot_last_scan_age_seconds", "age of the last successful funding scan", _age_s(st.scan_ok_ms, now)
        )
        yield _gauge(
            "fundbot_last_venue_ok_age_seconds", "age of the last successful venue call", _age_s(st.venue_ok_ms, now)
        )
        yield _gauge(
            "fundbot_scheduler_heartbeat_age_seconds",
            "age of the last scheduler heartbeat",
            _age_s(st.scheduler_ms, now),
        )
        yield _by_kind(
            JOB_SKIPPED, "job runs skipped because the previous run was still in flight", dict(st.job_skips), "job"
        )


def new_registry(state: HealthState) -> tuple[CollectorRegistry, StateCollector, Histogram]:
    """The registry of one ``HealthState``: its collector and the job latency histogram."""
    registry = CollectorRegistry(auto_describe=False)
    collector = StateCollector(state)
    registry.register(collector)
    jobs = Histogram(
        JOB_HISTOGRAM,
        "real seconds one run of a daemon job took (scan, collateral, funding, snapshot, reconcile)",
        ["job"],
        registry=registry,
        buckets=JOB_BUCKETS,
    )
    return registry, collector, jobs


def render_metrics(state: HealthState, now_ms: int | None = None) -> str:
    """All fundbot series as Prometheus text (format 0.0.4), as of ``now_ms`` (default: the state's clock)."""
    state.collector.now_ms = now_ms
    try:
        return generate_latest(state.registry).decode("utf-8")
    finally:
        state.collector.now_ms = None


def exposition(state: HealthState, accept: str | None) -> tuple[bytes, str]:
    """The /metrics body and content type for the scraper's Accept header (OpenMetrics when it asks)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(state.registry), content_type
