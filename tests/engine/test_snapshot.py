"""SnapshotBuilder: funding interval from history when the venue gives none; symbols without data skipped."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from bot.domain import HOUR_MS
from bot.engine.snapshot import interval_from_history
from bot.ledger.models import EventKind
from bot.venues.base import FundingSettlement
from strategies.base import Limits
from tests.engine.world import START_MS, open_world


def settlements(*hours_apart: int, interval: int | None = None) -> list[FundingSettlement]:
    t = START_MS
    out = [FundingSettlement("SOL/USDT", t, Decimal("0.0001"), interval)]
    for h in hours_apart:
        t += h * HOUR_MS
        out.append(FundingSettlement("SOL/USDT", t, Decimal("0.0001"), interval))
    return out


def test_interval_from_the_spacing_of_settlements_when_the_venue_gives_none() -> None:
    assert interval_from_history(settlements(8, 8), None) == 8
    assert interval_from_history(settlements(8, 4), None) == 4  # the newest spacing: the interval changed
    assert interval_from_history(settlements(8, interval=1), 8) == 1  # the venue's own figure wins
    assert interval_from_history(settlements(), 8) == 8  # one settlement: the market's figure
    assert interval_from_history(settlements(), None) is None


def test_interval_from_spacing_tolerates_binance_late_stamps() -> None:
    """Binance stamps settlements a few ms late; the old exact-hour test fell back to the market's figure."""
    late = settlements(8)
    late[-1] = FundingSettlement("SOL/USDT", late[-1].funding_time_ms + 3, Decimal("0.0001"), None)
    assert interval_from_history(late, 4) == 8


@pytest.mark.slow
async def test_symbol_without_data_is_reported_as_skipped(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"], start=False)
        w.engine.symbols.append("NOPE/USDT")
        w.engine.builder.symbols.append("NOPE/USDT")
        await w.engine.start()
        assert "NOPE/USDT" in w.engine.builder.skipped
        snapshot, _funding = await w.engine.builder.build(w.now(), (), Decimal(10_000), Limits())
        assert [m.symbol for m in snapshot.markets] == ["SOL/USDT"]
        sol = snapshot.markets[0]
        assert sol.interval_hours == 8 and sol.history, "interval and history from the venue"
        assert all(p.interval_hours == 8 for p in sol.history[1:])
        infos = await w.ledger.events(kinds=[EventKind.INFO])
        assert any(e.symbol == "NOPE/USDT" and "not traded" in e.message for e in infos)
        await w.engine.scan()
        decisions = await w.ledger.events(kinds=[EventKind.DECISION])
        assert any(e.symbol == "NOPE/USDT" and (e.details or {}).get("rule") == "unavailable" for e in decisions)


def test_demo_scales_the_emulator_rate_limits_to_its_speed(tmp_path) -> None:
    import json

    from bot.emulator.weights import DEFAULT_LIMITS
    from bot.engine.demo import demo_scenario

    plain = demo_scenario(None, START_MS, 3600)
    assert plain.rate_limits.per_minute == {k: v * 3600 for k, v in DEFAULT_LIMITS.items()}
    assert plain.rate_limits.ban_ms == 1000
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"faults": [{"endpoint": "GET /api/v3/depth", "kind": "503", "count": 1}]}))
    with_file = demo_scenario(path, START_MS, 10)
    assert len(with_file.faults) == 1 and with_file.rate_limits.per_minute["fapi"] == 24_000
