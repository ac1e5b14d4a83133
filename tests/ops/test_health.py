"""/healthz turns 503 when a check goes stale (time driven by an injected clock); /metrics parses."""

from __future__ import annotations

import math
from decimal import Decimal

import aiohttp

from bot.config import HttpConfig
from bot.ops.health import HealthState, HealthThresholds, bound_port, start_health_server
from bot.ops.metrics import render_metrics

START = 1_714_521_600_000


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}; checks every family has HELP and TYPE."""
    values: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"gauge", "counter"}
            typed.add(name)
        elif line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            assert key.split("{")[0] in typed, key
            values[key] = float(value)
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
