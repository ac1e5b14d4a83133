"""/healthz turns 503 when a check goes stale (time driven by an injected clock); /metrics parses."""

from __future__ import annotations

import math
from decimal import Decimal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config import HttpConfig
from bot.services.health import HealthState, HealthThresholds, bound_port, start_health_server
from bot.services.metrics import render_metrics

START = 1_714_521_600_000


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}, parsed by prometheus_client's own parser (which checks
    the format); histogram samples keep their suffixes (_bucket, _count, _sum)."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            values[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return values


def fresh_state(clock: FakeClock) -> HealthState:
    st = HealthState(now_fn=clock, thresholds=HealthThresholds.from_config(HttpConfig()))
    st.mark_scheduler_alive(clock.now)
    st.mark_venue_ok(clock.now)
    st.mark_scan_ok(clock.now)
    return st


def test_thresholds_from_settings() -> None:
    t = HealthThresholds.from_config(HttpConfig(venue_max_age_s=60))
    assert t.venue_max_age_ms == 60_000 and t.scheduler_max_age_ms == 180_000


def test_unmarked_checks_get_a_grace_period_from_start() -> None:
    clock = FakeClock(START)
    st = HealthState(now_fn=clock)
    assert st.healthy()
    clock.now += 181_000  # the scheduler never beat within its 180 s
    body = st.health()
    assert body["status"] == "unhealthy"
    assert body["checks"]["scheduler"] == {"ok": False, "age_s": None, "max_age_s": 180.0}


def test_metrics_text() -> None:
    clock = FakeClock(START)
    st = fresh_state(clock)
    st.inc_error("venue")
    st.inc_error("venue")
    st.inc_error("order")
    st.inc_transfer_retry()
    st.set_portfolio(
        pairs_open=2,
        notional_usdt=Decimal("12000.5"),
        collateral_ratio=Decimal("0.48"),
        funding_earned_usdt=Decimal("3.2"),
    )
    clock.now += 42_000
    m = parse_metrics(render_metrics(st, clock.now))
    assert m["fundbot_up"] == 1
    assert m["fundbot_pairs_open"] == 2
    assert m["fundbot_notional_usdt"] == 12000.5
    assert m["fundbot_collateral_ratio"] == 0.48
    assert m["fundbot_funding_earned_usdt"] == 3.2
    assert m['fundbot_errors_total{kind="venue"}'] == 2
    assert m['fundbot_errors_total{kind="order"}'] == 1
    assert m["fundbot_transfer_retries_total"] == 1
    assert m["fundbot_last_scan_age_seconds"] == 42
    empty = parse_metrics(render_metrics(HealthState(now_fn=clock), clock.now))
    assert math.isnan(empty["fundbot_last_scan_age_seconds"]) and math.isnan(empty["fundbot_collateral_ratio"])


async def test_endpoint_200_then_503_when_venue_goes_quiet() -> None:
    clock = FakeClock(START)
    st = fresh_state(clock)
    runner = await start_health_server(st, "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{bound_port(runner)}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
                assert (await r.json())["status"] == "ok"
            # Scheduler and scans keep going; the venue stops answering for 301 s (> 300 s).
            clock.now += 301_000
            st.mark_scheduler_alive(clock.now)
            st.mark_scan_ok(clock.now)
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 503
                body = await r.json()
                assert body["checks"]["venue"] == {"ok": False, "age_s": 301.0, "max_age_s": 300.0}
                assert body["checks"]["scheduler"]["ok"] and body["checks"]["funding_scan"]["ok"]
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                m = parse_metrics(await r.text())
                assert m["fundbot_up"] == 0 and m["fundbot_last_venue_ok_age_seconds"] == 301
            st.mark_venue_ok(clock.now)
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


def test_job_latency_histograms_and_skips() -> None:
    clock = FakeClock(START)
    st = fresh_state(clock)
    for seconds in (0.004, 0.3, 7.0):
        st.observe_job("scan", seconds)
    st.observe_job("collateral", 0.02)
    st.skip_job("scan")
    m = parse_metrics(render_metrics(st, clock.now))
    assert m['fundbot_job_duration_seconds_count{job="scan"}'] == 3
    assert m['fundbot_job_duration_seconds_sum{job="scan"}'] == 7.304
    assert m['fundbot_job_duration_seconds_bucket{job="scan",le="0.01"}'] == 1
    assert m['fundbot_job_duration_seconds_bucket{job="scan",le="0.5"}'] == 2
    assert m['fundbot_job_duration_seconds_bucket{job="scan",le="10.0"}'] == 3
    assert m['fundbot_job_duration_seconds_count{job="collateral"}'] == 1
    assert m['fundbot_job_skipped_total{job="scan"}'] == 1
    other = parse_metrics(render_metrics(fresh_state(clock), clock.now))  # one registry per state
    assert 'fundbot_job_duration_seconds_count{job="scan"}' not in other


async def test_metrics_in_openmetrics_when_the_scraper_asks() -> None:
    clock = FakeClock(START)
    st = fresh_state(clock)
    st.observe_job("scan", 0.2)
    runner = await start_health_server(st, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
        async with aiohttp.ClientSession() as http:
            accept = "application/openmetrics-text; version=1.0.0"
            async with http.get(url, headers={"Accept": accept}) as r:
                assert r.headers["Content-Type"].startswith("application/openmetrics-text")
                text = await r.text()
        assert text.rstrip().endswith("# EOF")
        assert 'fundbot_job_duration_seconds_count{job="scan"} 1' in text
    finally:
        await runner.cleanup()
