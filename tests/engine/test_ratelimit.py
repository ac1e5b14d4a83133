"""Rate limits: a 429 or a 418 pauses all venue work (recorded once), jobs skip, then work resumes."""

from __future__ import annotations

from contextlib import AsyncExitStack

from bot.engine.jobs import JobRunner
from bot.engine.ratelimit import RateGate
from bot.ledger.models import EventKind
from tests.engine.world import open_world


class WallClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


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
        errors = await w.ledger.events(kinds=[EventKind.ERROR])
        assert len(errors) == 1 and "rate limited (429)" in errors[0].message
        used = limiter.used("fapi"), limiter.used("api"), limiter.used("sapi")
        for job in ("scan", "check_collateral", "sync_funding", "snapshot_balances", "reconcile"):
            await runner.run(job, getattr(w.engine, job))
        assert (limiter.used("fapi"), limiter.used("api"), limiter.used("sapi")) == used, "no calls while paused"
        assert len(await w.ledger.events(kinds=[EventKind.ERROR])) == 1, "the pause is recorded once"
        assert w.engine.skipped_jobs["scan"] == 1

        wall.t += 6  # the backoff is over, but the client keeps meeting the limit: now a 418 ban
        await runner.run("scan", w.engine.scan)
        assert limiter.banned_until > 0
        assert w.engine.gate.until_s == limiter.banned_until / 1000 + w.engine.gate.margin_s
        errors = await w.ledger.events(kinds=[EventKind.ERROR], newest_first=True)
        assert len(errors) == 2 and "IP banned (418)" in errors[0].message

        wall.t = w.engine.gate.until_s + 1  # the ban is over; the venue lifts the limit
        limiter.limits.per_minute = {"api": 10**6, "sapi": 10**6, "fapi": 10**6}
        limiter.banned_until = 0
        targets = await w.engine.scan()
        assert targets and not w.engine.gate.paused() and w.engine.gate.strikes == 0
        assert len(await w.ledger.events(kinds=[EventKind.ERROR])) == 2


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
