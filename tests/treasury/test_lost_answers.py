"""Transfers whose answer was lost, settled from the venue's transfer history: the real ccxt 4.5.90 against
the emulator (GET /sapi/v1/asset/transfer), the real treasury, reconciler and ledger.

The answer is lost the way it is on the wire: the emulator holds the request (a latency fault) longer than
ccxt waits, ccxt raises RequestTimeout, and the emulator then executes the transfer anyway."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest
from venues.conftest import PAIRS, VenueEnv, open_env

from bot.config import TreasuryConfig
from bot.ledger.models import TransferStatus
from bot.ledger.repository import Ledger
from bot.reconcile import Reconciler
from bot.treasury import TransferFailed, Treasury
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue
from tests.waiting import wait_until

D = Decimal
HELD_MS = 1500  # the emulator holds the transfer this long before executing it ...
CLIENT_TIMEOUT_MS = 400  # ... while ccxt gives up after this
LOST = {"faults": [{"endpoint": "POST /sapi/v1/asset/transfer", "kind": "latency", "latency_ms": HELD_MS, "count": 1}]}


async def impatient_venue(env: VenueEnv, stack: AsyncExitStack) -> CcxtVenue:
    client = build_client(env.handle.connection, pro=True, tls=True, rateLimit=1, timeout=CLIENT_TIMEOUT_MS)
    venue = CcxtVenue(client, time_resync_s=0)
    stack.push_async_callback(venue.close)
    return venue


def treasury(venue: CcxtVenue, ledger: Ledger, env: VenueEnv) -> Treasury:
    config = TreasuryConfig(backoff_s=0.5, lookup_attempts=5, min_transfer=D("10"))
    return Treasury(venue, ledger, config, env.clock.now_ms)


@pytest.mark.slow
async def test_fetch_transfers_reads_every_page_of_both_directions() -> None:
    async with AsyncExitStack() as stack:
        env = await open_env("ccxt", stack)
        start = env.clock.now_ms()
        ids = [env.sim.transfer("USDT", "1", "MAIN_UMFUTURE") for _ in range(150)]  # two pages of 100
        back = env.sim.transfer("USDT", "5", "UMFUTURE_MAIN")
        env.sim.transfer("USDT", "2", "MAIN_CMFUTURE")  # coin-M: not a wallet the bot uses
        rows = await env.venue.fetch_transfers(start)
        assert [r.tran_id for r in rows] == [str(i) for i in [*ids, back]]
        assert {(r.from_wallet, r.to_wallet, r.status) for r in rows[:-1]} == {("spot", "futures", "done")}
        assert (rows[-1].from_wallet, rows[-1].to_wallet, rows[-1].amount) == ("futures", "spot", D("5"))
        assert await env.venue.fetch_transfers(start - 10, start - 1) == []


@pytest.mark.slow
async def test_transfer_answer_lost_is_done_with_the_venue_tran_id(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        ledger = await Ledger.open(sqlite_url)
        stack.push_async_callback(ledger.close)
        env = await open_env("ccxt", stack, scenario=LOST)
        venue = await impatient_venue(env, stack)
        result = await treasury(venue, ledger, env).transfer(D("100"), "spot", "futures", "lost answer")
        (venue_row,) = env.sim.transfer_history()
        assert result.tran_id == str(venue_row.tran_id)
        (row,) = await ledger.list_transfers()
        assert (row.status, row.venue_tran_id, row.attempts) == (TransferStatus.DONE, str(venue_row.tran_id), 1)
        assert await ledger.open_intents() == []


@pytest.mark.slow
async def test_crash_with_a_transfer_in_flight_is_done_after_restart(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        ledger = await Ledger.open(sqlite_url)
        stack.push_async_callback(ledger.close)
        env = await open_env("ccxt", stack, scenario=LOST)
        venue = await impatient_venue(env, stack)
        task = asyncio.ensure_future(treasury(venue, ledger, env).transfer(D("100"), "spot", "futures", "crash"))
        held = env.handle.emulator.faults.rules[0]
        await wait_until(lambda: held.fired, "the emulator to hold the transfer request")
        task.cancel()  # the process dies here: nothing after the send runs
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(env.sim.transfer_history, "the held transfer to reach the venue")
        (venue_row,) = env.sim.transfer_history()
        assert [r.status for r in await ledger.list_transfers()] == [TransferStatus.SENT]
        restarted = Reconciler(env.venue, ledger, env.clock.now_ms, symbols=PAIRS)
        report = await restarted.run()
        (row,) = await ledger.list_transfers()
        assert (row.status, row.venue_tran_id) == (TransferStatus.DONE, str(venue_row.tran_id))
        assert report.alerts == [] and await ledger.open_intents() == []


async def test_retries_are_counted_and_a_transfer_left_sent_is_alerted_as_stuck(sqlite_url: str) -> None:
    """The daemon's wiring (assemble_engine with health and alerter): a refused-before-execution transfer
    (-1008) is retried and counted in fundbot_transfer_retries_total; the retry's answer is lost (408) and
    the history never shows it, so it stays "sent"; a later collateral check alerts transfer_stuck."""
    from engine.world import engine_settings
    from services.test_health import parse_metrics

    from bot.emulator.server import run_emulator
    from bot.engine.daemon import assemble_engine
    from bot.ledger.models import EventKind
    from bot.services.alerts import Alerter, AlertKind
    from bot.services.health import HealthState
    from bot.services.metrics import render_metrics
    from bot.sim.clock import ManualClock
    from bot.treasury.service import STUCK_WINDOWS

    endpoint = "POST /sapi/v1/asset/transfer"
    faults = [
        {"endpoint": endpoint, "code": -1008, "count": 1},
        {"endpoint": endpoint, "kind": "timeout", "hang_ms": 50, "count": 1},  # the 408 after a hang, not 1 s
    ]
    async with AsyncExitStack() as stack:
        clock = ManualClock(1_753_056_300_000)
        handle = await stack.enter_async_context(
            run_emulator(symbols=PAIRS, clock=clock, scenario={"faults": faults}, tick_ms=50)
        )
        venue = CcxtVenue(build_client(handle.connection, pro=True, tls=True, rateLimit=1), time_resync_s=0)
        stack.push_async_callback(venue.close)
        ledger = await Ledger.open(sqlite_url)
        stack.push_async_callback(ledger.close)
        settings = engine_settings(sqlite_url, PAIRS)
        health = HealthState(now_fn=clock.now_ms)
        alerter = Alerter(ledger, None, now_fn=clock.now_ms, health=health)

        async def no_sleep(_: float) -> None:
            await asyncio.sleep(0)

        engine = assemble_engine(settings, venue, ledger, clock.now_ms, health=health, alerter=alerter, sleep=no_sleep)
        with pytest.raises(TransferFailed, match="outcome unknown"):
            await engine.treasury.transfer(D("100"), "spot", "futures", "top up")
        assert parse_metrics(render_metrics(health, clock.now_ms()))["fundbot_transfer_retries_total"] == 1
        assert [r.status for r in await ledger.list_transfers()] == [TransferStatus.FAILED, TransferStatus.SENT]

        await engine.check_collateral()  # young: reconciliation may still settle it
        stuck = lambda evs: [e for e in evs if e.details and e.details.get("alert") == AlertKind.TRANSFER_STUCK]  # noqa: E731
        assert stuck(await ledger.events(kinds=[EventKind.ALERT])) == []
        clock.advance(STUCK_WINDOWS * engine.treasury.transfer_window_ms)
        await engine.check_collateral()
        (alert,) = stuck(await ledger.events(kinds=[EventKind.ALERT]))
        sent = (await ledger.list_transfers())[-1]
        assert (alert.details["client_id"], alert.details["attempts"]) == (sent.client_id, 1)
        assert health.alerts[AlertKind.TRANSFER_STUCK] == 1
