"""Rate limits: a 429 or a 418 pauses all venue work (recorded once), jobs skip, then work resumes."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from decimal import Decimal as D

import ccxt
import pytest

from bot.engine.core import Engine
from bot.engine.daemon import assemble_engine
from bot.engine.jobs import JobRunner
from bot.engine.ratelimit import RateGate
from bot.ledger.models import EventKind, TransferStatus
from tests.engine.world import World, open_world


class WallClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.slow
async def test_429_then_418_pause_all_jobs_and_work_resumes_after_the_ban(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"])
        limiter = w.handle.emulator.limiter
        wall = WallClock(limiter._now() / 1000)
        w.engine.gate = RateGate(base_s=5, wall=wall)
        limiter.limits.per_minute = {"api": 1, "sapi": 1, "fapi": 1}
        limiter.limits.ban_after = 1
        runner = JobRunner(on_error=w.engine.on_job_error)  # as the daemon runs jobs: failures recorded

        await runner.run("scan", w.engine.scan)  # 429
        assert w.engine.gate.paused()
        errors = await w.ledger.events(kinds=[EventKind.RATE_LIMIT])
        assert len(errors) == 1 and "rate limited (429)" in errors[0].message
        assert errors[0].details["retry_after_s"] is not None  # the emulator's Retry-After reached the gate
        used = limiter.used("fapi"), limiter.used("api"), limiter.used("sapi")
        for job in ("scan", "check_collateral", "sync_funding", "snapshot_balances", "reconcile"):
            await runner.run(job, getattr(w.engine, job))
        assert (limiter.used("fapi"), limiter.used("api"), limiter.used("sapi")) == used, "no calls while paused"
        assert len(await w.ledger.events(kinds=[EventKind.RATE_LIMIT])) == 1, "the pause is recorded once"
        assert w.engine.skipped_jobs["scan"] == 1

        wall.t = w.engine.gate.until_s  # the pause is over, but the client keeps meeting the limit: a 418 ban
        await runner.run("scan", w.engine.scan)
        assert limiter.banned_until > 0
        assert w.engine.gate.until_s == limiter.banned_until / 1000 + w.engine.gate.margin_s
        errors = await w.ledger.events(kinds=[EventKind.RATE_LIMIT], newest_first=True)
        assert len(errors) == 2 and "IP banned (418)" in errors[0].message

        wall.t = w.engine.gate.until_s + 1  # the ban is over; the venue lifts the limit
        limiter.limits.per_minute = {"api": 10**6, "sapi": 10**6, "fapi": 10**6}
        limiter.banned_until = 0
        targets = await w.engine.scan()
        assert targets and not w.engine.gate.paused() and w.engine.gate.strikes == 0
        assert len(await w.ledger.events(kinds=[EventKind.RATE_LIMIT])) == 2
        assert await w.ledger.events(kinds=[EventKind.ERROR]) == []


def test_a_ban_during_a_429_pause_is_reported_but_a_repeat_is_not() -> None:
    """A 418 that arrived while a 429 pause ran was not recorded: the ledger said "paused for 10s" while
    the venue had banned the IP for minutes."""
    wall = WallClock(1_750_000_000.0)  # epoch seconds: a ban names its end in epoch ms
    gate = RateGate(base_s=5, wall=wall)
    assert gate.trip(RuntimeError("429 Too Many Requests"))
    assert not gate.trip(RuntimeError("429 Too Many Requests"))  # the same pause, longer backoff
    ban = RuntimeError(f"418 Way too many requests; IP banned until {int((wall.t + 120) * 1000)}.")
    assert gate.trip(ban) and gate.remaining_s() > 100
    assert not gate.trip(ban)  # the same ban again: nothing new to say


class FakeTime:
    """The wall clock the emulator's weight windows, the gate and every pause share; sleeping moves it."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def wall(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.t * 1000)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


async def gated_world(stack: AsyncExitStack, url: str, scenario: dict | None = None) -> tuple[World, Engine, FakeTime]:
    """The daemon's wiring (every venue call through one gate) over the emulator, on a fake wall clock."""
    w = await open_world(stack, url, symbols=["SOL/USDT"], scenario=scenario, start=False)
    fake = FakeTime((int(time.time()) // 60) * 60 + 1.0)  # one second into a weight window
    w.handle.emulator.limiter._now = fake.ms
    engine = assemble_engine(w.settings, w.venue, w.ledger, w.now, sleep=fake.sleep, rate_gate=RateGate(wall=fake.wall))
    return w, engine, fake


@pytest.mark.slow
async def test_a_429_on_a_transfer_pauses_every_caller_until_retry_after_and_never_bans(sqlite_url: str) -> None:
    """The treasury used to swallow a 429 and retry at 0.5 s and 1 s: the IP got banned (418)."""
    async with AsyncExitStack() as stack:
        w, engine, fake = await gated_world(stack, sqlite_url)
        limiter = w.handle.emulator.limiter
        limiter.limits.per_minute = {"api": 10**6, "sapi": 1000, "fapi": 10**6}  # one transfer (900) a minute
        limiter.limits.ban_after = 1  # a second 429 in the window is a ban
        await engine.treasury.transfer(D("100"), "spot", "futures", "first")
        with pytest.raises(ccxt.DDoSProtection):
            await engine.treasury.transfer(D("100"), "spot", "futures", "second")
        assert limiter.banned_until == 0 and limiter.used("sapi") == 1800  # never retried into a ban
        assert [t.status for t in await w.ledger.list_transfers()] == [TransferStatus.DONE, TransferStatus.FAILED]
        (event,) = await w.ledger.events(kinds=[EventKind.RATE_LIMIT])
        assert event.details["retry_after_s"] == 59 and "rate limited (429) on transfer" in event.message
        assert engine.gate.until_s == fake.t + 59 + engine.gate.margin_s

        await engine.reconciler.run()  # another caller: it waits out the pause before touching the venue
        assert fake.t >= engine.gate.until_s and sum(fake.slept) >= 59
        assert engine.venue_paused("scan") is False
        await engine.treasury.transfer(D("100"), "spot", "futures", "after the window")
        assert [t.status for t in await w.ledger.list_transfers()][-1] is TransferStatus.DONE
        assert len(w.sim.transfer_history()) == 2 and limiter.banned_until == 0
        assert len(await w.ledger.events(kinds=[EventKind.RATE_LIMIT])) == 1


async def test_a_418_ban_is_waited_out_by_every_caller(sqlite_url: str) -> None:
    until_ms = (int(time.time()) // 60) * 60_000 + 1000 + 300_000
    ban = {
        "endpoint": "GET /fapi/v3/positionRisk",
        "code": -1003,
        "status": 418,
        "count": 1,
        "msg": f"Way too many requests; IP(127.0.0.1) banned until {until_ms}.",
    }
    async with AsyncExitStack() as stack:
        w, engine, fake = await gated_world(stack, sqlite_url, {"faults": [ban]})
        with pytest.raises(ccxt.DDoSProtection):
            await engine.venue.fetch_positions(["SOL/USDT"])
        assert engine.gate.until_s == until_ms / 1000 + engine.gate.margin_s
        (event,) = await w.ledger.events(kinds=[EventKind.RATE_LIMIT])
        assert "IP banned (418) on fetch_positions" in event.message and event.details["banned"] is True
        await engine.venue.fetch_balances()  # any other call waits until the ban is over
        assert fake.t >= until_ms / 1000
