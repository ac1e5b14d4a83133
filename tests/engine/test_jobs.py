"""JobRunner: one job of a name at a time, failures recorded instead of raised, drain on shutdown."""

from __future__ import annotations

import asyncio

from bot.engine.jobs import JobRunner


async def test_a_job_in_flight_is_not_started_twice_and_failures_are_recorded() -> None:
    errors: list[tuple[str, str]] = []

    async def on_error(name: str, exc: BaseException) -> None:
        errors.append((name, str(exc)))

    runner = JobRunner(on_error=on_error)
    release = asyncio.Event()
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await release.wait()

    async def broken() -> None:
        raise RuntimeError("venue said no")

    first = runner.start("scan", slow)
    assert first is not None
    await asyncio.sleep(0)
    assert runner.start("scan", slow) is None and runner.skipped["scan"] == 1
    assert not await runner.drain(0.01)  # still in flight
    release.set()
    assert await runner.drain(1.0)
    assert calls == 1 and runner.runs["scan"] == 1
    await runner.run("funding", broken)  # does not raise
    assert errors == [("funding", "venue said no")]
    assert "funding" not in runner.runs


async def test_each_run_reports_its_duration_and_each_skip() -> None:
    done: list[tuple[str, float]] = []
    skips: list[str] = []
    runner = JobRunner(on_done=lambda name, s: done.append((name, s)), on_skip=skips.append)
    release = asyncio.Event()

    async def slow() -> None:
        await asyncio.sleep(0.05)
        await release.wait()

    async def broken() -> None:
        raise RuntimeError("venue said no")

    runner.start("scan", slow)
    await asyncio.sleep(0)
    runner.start("scan", slow)
    release.set()
    await runner.drain(1.0)
    await runner.run("funding", broken)  # a failed run took time too
    assert [name for name, _ in done] == ["scan", "funding"]
    assert done[0][1] >= 0.05
    assert skips == ["scan"]
