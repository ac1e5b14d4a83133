"""Notifications through Apprise, received by a local HTTP server in Apprise's JSON form (json://), never a
real service: alerts with their severity, entries and exits from the real engine, the daily summary, the
threshold, and the secrets in the URLs kept out of every log line and the ledger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from bot.config import ConfigError, load_settings
from bot.domain import DAY_MS, HOUR_MS, PairState
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.ops.summary import daily_summary
from bot.services.alerts import Alerter
from bot.services.health import HealthState
from bot.services.notify import Notifier, Severity, next_summary_ms, secret_parts, split_urls
from tests.ledger_files import open_ledger
from tests.ops.history import T_END, build_history

PASSWORD = "hunter2-pw-XYZ"
PATH_TOKEN = "tok3n-in-the-path-77"


@dataclass
class Receiver:
    """A local endpoint that takes Apprise's JSON POSTs (or fails them with ``status``)."""

    port: int = 0
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)

    def url(self, *, port: int | None = None) -> str:
        return f"json://fundbot:{PASSWORD}@127.0.0.1:{port or self.port}/hook/{PATH_TOKEN}"

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.auth.append(request.headers.get("Authorization"))
        return web.Response(status=self.status)

    async def wait_for(self, n: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.received) >= n, self.received
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post(f"/hook/{PATH_TOKEN}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def history_ledger(sqlite_url: str) -> AsyncIterator[Ledger]:
    led = await open_ledger(sqlite_url)
    await build_history(led)
    try:
        yield led
    finally:
        await led.close()


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_urls_split_and_every_part_counts_as_secret() -> None:
    assert split_urls("json://a/b?to=x,y, tgram://t/c  ntfy://n/topic") == [
        "json://a/b?to=x,y",
        "tgram://t/c",
        "ntfy://n/topic",
    ]
    parts = secret_parts(f"json://fundbot:{PASSWORD}@127.0.0.1:9/hook/{PATH_TOKEN}?key=v%40lue99")
    assert PASSWORD in parts and PATH_TOKEN in parts and "v@lue99" in parts and "v%40lue99" in parts
    assert next_summary_ms(5 * HOUR_MS, 8) == 8 * HOUR_MS and next_summary_ms(8 * HOUR_MS, 8) == 8 * HOUR_MS + DAY_MS


@pytest.mark.slow
def test_a_bad_url_names_the_entry_not_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as err:
        load_settings(alerts={"notify_urls": f"json://127.0.0.1/x nosuchservice://{PASSWORD}@host/{PATH_TOKEN}"})
    text = str(err.value)
    assert "FUNDBOT_ALERTS__NOTIFY_URLS" in text and "entry 2 (nosuchservice://...)" in text
    assert PASSWORD not in text + caplog.text and PATH_TOKEN not in text + caplog.text
    with pytest.raises(ConfigError, match="FUNDBOT_ALERTS__NOTIFY_LEVEL"):
        load_settings(alerts={"notify_level": "loud"})


@pytest.mark.slow
async def test_alerts_reach_the_endpoint_with_their_severity(receiver: Receiver, history_ledger: Ledger) -> None:
    clock = Clock(T_END)
    notifier = Notifier(
        receiver.url(), summary=daily_summary, ledger=history_ledger, now_fn=clock, follow_interval_s=0.05
    )
    await notifier.begin()  # the history's own alert is older: not sent
    notifier.start()
    try:
        alerter = Alerter(history_ledger, now_fn=clock)
        await alerter.hedge_drift("BTC/USDT", Decimal("0.1"), Decimal("0.09"), Decimal("0.02"), pair_id=1)
        await alerter.pair_quarantined("BTC/USDT", "legs could not be made equal", pair_id=1)
        await history_ledger.add_event(EventKind.ALERT, "transfer tr-9 outcome unknown", ts_ms=T_END)  # no kind
        got = await receiver.wait_for(3)
    finally:
        await notifier.close()
    assert [(m["type"], m["title"]) for m in got] == [
        ("warning", "fundbot alert: hedge drift (BTC/USDT)"),
        ("failure", "fundbot CRITICAL: pair quarantined (BTC/USDT)"),
        ("warning", "fundbot alert: alert"),
    ]
    assert got[1]["message"] == "BTC/USDT quarantined: legs could not be made equal"
    assert receiver.auth[0] is not None and receiver.auth[0].startswith("Basic ")  # the URL's credentials
    assert notifier.sent == 3 and notifier.failed == 0


@pytest.mark.slow
async def test_the_threshold_filters_what_is_sent(receiver: Receiver, history_ledger: Ledger) -> None:
    clock = Clock(T_END)
    notifier = Notifier(
        receiver.url(),
        summary=daily_summary,
        ledger=history_ledger,
        now_fn=clock,
        level="critical",
        follow_interval_s=0.05,
    )
    await notifier.begin()
    notifier.start()
    try:
        alerter = Alerter(history_ledger, now_fn=clock)
        await alerter.hedge_drift("BTC/USDT", Decimal("0.1"), Decimal("0.09"), Decimal("0.02"), pair_id=1)
        await alerter.collateral_below_band(Decimal("0.2"), Decimal("0.35"), Decimal("1200"), Decimal("6000"))
        got = await receiver.wait_for(1)
        await asyncio.sleep(0.3)  # nothing else comes
    finally:
        await notifier.close()
    assert [m["title"] for m in got] == ["fundbot CRITICAL: collateral low"]
    assert not notifier.wants(Severity.WARNING) and notifier.wants(Severity.CRITICAL)


@pytest.mark.slow
async def test_the_daily_summary_at_its_hour(receiver: Receiver, history_ledger: Ledger) -> None:
    clock = Clock(T_END)  # 2024-05-01T08:10Z
    notifier = Notifier(receiver.url(), summary=daily_summary, ledger=history_ledger, now_fn=clock, summary_hour_utc=9)
    await notifier.begin()
    notifier.start()
    try:
        await notifier.poll()
        assert receiver.received == []
        clock.now = T_END + HOUR_MS  # 09:10: the summary is due
        await notifier.poll()
        (got,) = await receiver.wait_for(1)
        await notifier.poll()  # once a day
    finally:
        await notifier.close()
    assert got["title"] == "fundbot daily summary 2024-05-01" and got["type"] == "info"
    lines = got["message"].splitlines()
    assert lines[0] == "equity 9,992.10 USDT (-7.90 in 24 h)"
    assert lines[1] == "funding +0.60, fees -8.40, price and basis -0.10, net -7.90 USDT"
    assert lines[2] == "1 pairs held: BTC/USDT (+0.60)"
    assert len(receiver.received) == 1


async def test_failures_are_counted_and_recorded_and_no_secret_is_ever_logged(
    receiver: Receiver, history_ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the most talkative Apprise and urllib3 get
    receiver.status = 500
    health = HealthState(now_fn=lambda: T_END)
    closed_port = receiver.port + 1 if receiver.port < 65535 else receiver.port - 1
    notifier = Notifier(
        f"{receiver.url()} {receiver.url(port=closed_port)}",
        summary=daily_summary,
        ledger=history_ledger,
        now_fn=lambda: T_END,
        health=health,
    )
    from bot.services.notify import Note

    assert not await notifier.deliver(Note(Severity.WARNING, "t", "b", "alert"))
    assert not await notifier.deliver(Note(Severity.WARNING, "t", "b", "alert"))
    await notifier.close()
    assert notifier.failed == 2 and health.errors["notify"] == 2
    errors = await history_ledger.events(kinds=[EventKind.ERROR])
    assert len(errors) == 1  # at most one event an hour; the rest are counted
    assert "json://127.0.0.1" in errors[0].message
    everything = caplog.text + " ".join(e.message + str(e.details) for e in errors)
    assert "Failed to send JSON" in caplog.text or "error=500" in caplog.text, caplog.text[-2000:]
    assert PASSWORD not in everything and PATH_TOKEN not in everything, caplog.text[-3000:]
    assert notifier.targets == [f"json://127.0.0.1:{receiver.port}", f"json://127.0.0.1:{closed_port}"]


@pytest.mark.slow
async def test_entries_and_exits_of_the_real_engine(receiver: Receiver, sqlite_url: str) -> None:
    """The engine over the real ccxt against the emulator enters, then the operator's exit closes the pair:
    one notification each, with the legs and the reason."""
    from tests.engine.world import open_world

    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"])
        notifier = Notifier(receiver.url(), summary=daily_summary, ledger=w.ledger, now_fn=w.now)
        w.engine.on_trade = notifier.on_trade
        await notifier.begin()
        notifier.start()
        stack.push_async_callback(notifier.close)
        await w.engine.scan()
        (pair,) = await w.pairs(PairState.OPEN)
        (entered,) = await receiver.wait_for(1)
        from bot.ledger.models import ControlKind

        await w.ledger.set_control(
            ControlKind.EXIT, now_ms=w.now(), source="cli", symbol="SOL/USDT", pair_id=pair.id, reason="done here"
        )
        await w.advance(HOUR_MS)
        await w.engine.scan()
        assert (await w.ledger.get_pair(pair.id)).state is PairState.CLOSED
        got = await receiver.wait_for(2)
    assert entered["title"] == "fundbot entered SOL/USDT" and entered["type"] == "success"
    legs = f"long {pair.spot_qty.normalize():f} spot, short {pair.perp_qty.normalize():f} perp"
    assert entered["message"].startswith(legs)
    assert "forecast" in entered["message"] and "APR" in entered["message"]
    assert got[1]["title"] == "fundbot exited SOL/USDT"
    assert got[1]["message"].startswith("operator exit: done here") and "funding earned" in got[1]["message"]
