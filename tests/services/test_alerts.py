"""Alerts land in the ledger, reach a webhook on loopback, and a failing webhook never raises."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web
from pydantic import SecretStr

from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.services.alerts import Alerter, AlertKind, scrub
from bot.services.health import HealthState

NOW = 1_714_521_600_000
D = Decimal


async def _webhook_server(status: int = 200) -> tuple[web.AppRunner, str, list[dict]]:
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook/T0KEN", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook/T0KEN", received


async def test_alert_posts_and_records(ledger: Ledger) -> None:
    runner, url, received = await _webhook_server()
    alerter = Alerter(ledger, SecretStr(url), now_fn=lambda: NOW)
    try:
        event_id = await alerter.collateral_below_band(D("0.31"), D("0.35"), D("1860"), D("6000"))
        await alerter.alert("custom", "with a secret", details={"api_secret": "s3cr3t", "nested": {"token": "x"}})
    finally:
        await alerter.close()
        await runner.cleanup()
    assert len(received) == 2
    first = received[0]
    assert first["kind"] == "collateral_low" and first["event_id"] == event_id and first["ts_ms"] == NOW
    assert first["details"]["ratio"] == "0.31"
    assert "below the band's low 0.35" in first["message"]
    assert received[1]["details"] == {"api_secret": "**********", "nested": {"token": "**********"}}
    [ev, ev2] = await ledger.events(kinds=[EventKind.ALERT])
    assert ev.id == event_id and ev.details["alert"] == "collateral_low"
    assert "s3cr3t" not in str(ev2.details)


async def test_failing_webhooks_do_not_raise(ledger: Ledger, caplog) -> None:
    health = HealthState(now_fn=lambda: NOW)
    runner, url, received = await _webhook_server(status=500)
    alerter = Alerter(ledger, url, now_fn=lambda: NOW, health=health)
    try:
        assert await alerter.pair_quarantined("ETH/USDT", "leg missing after 3 retries") is not None
    finally:
        await alerter.close()
        await runner.cleanup()
    assert len(received) == 1
    # Nothing listens there any more: connection refused, still no exception.
    dead = Alerter(ledger, url, now_fn=lambda: NOW, health=health, timeout_s=2)
    try:
        assert await dead.funding_missing("BTC/USDT", NOW - 60_000, D("0.1"), D("0.0001")) is not None
    finally:
        await dead.close()
    errors = await ledger.events(kinds=[EventKind.ERROR])
    assert [e.message for e in errors] == [
        "alert webhook failed (HTTP 500) for pair_quarantined",
        "alert webhook failed (ClientConnectorError) for funding_missing",
    ]
    assert health.errors["webhook"] == 2
    assert health.alerts == {"pair_quarantined": 1, "funding_missing": 1}
    assert "T0KEN" not in caplog.text and "T0KEN" not in str([e.details for e in errors])


async def test_specific_alerts_and_cooldown(ledger: Ledger) -> None:
    clock = [NOW]
    alerter = Alerter(ledger, now_fn=lambda: clock[0], cooldown_ms=600_000)
    first = await alerter.hedge_drift("BTC/USDT", D("0.0999"), D("0.1"), D("0.0005"))
    assert first is not None
    assert await alerter.hedge_drift("BTC/USDT", D("0.0998"), D("0.1"), D("0.0005")) is None  # inside cooldown
    await alerter.transfer_stuck("tr-9", "USDT", D("250"), "spot", "futures", 900_000, 4, "insufficient balance")
    clock[0] += 600_000
    assert await alerter.hedge_drift("BTC/USDT", D("0.0998"), D("0.1"), D("0.0005")) is not None
    evs = await ledger.events(kinds=[EventKind.ALERT])
    assert [e.details["alert"] for e in evs] == [AlertKind.HEDGE_DRIFT, AlertKind.TRANSFER_STUCK, AlertKind.HEDGE_DRIFT]
    assert evs[0].message == "BTC/USDT hedge drift -0.0001 (-0.10%): spot 0.0999, perp short 0.1, tolerance 0.05%"
    assert evs[1].message == "transfer tr-9 of 250 USDT spot->futures not done after 900s and 4 attempts"
    assert evs[0].symbol == "BTC/USDT"


def test_scrub() -> None:
    assert scrub({"apiKey": "k", "password": SecretStr("p"), "list": [{"Signature": "x"}], "ok": 1}) == {
        "apiKey": "**********",
        "password": "**********",
        "list": [{"Signature": "**********"}],
        "ok": 1,
    }
