"""The universe: which pairs are traded when FUNDBOT_SYMBOLS is empty, and a delisting mid-hold closing
the pair with its reason (the real ccxt against the emulator, the listing changed in the simulator)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

from bot.config import Mode, UniverseConfig, load_settings
from bot.domain import HOUR_MS, PairState
from bot.emulator.server import run_emulator
from bot.engine.daemon import resolve_symbols
from bot.engine.universe import DAY_MS, exit_reason, select
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.sim.listing import NO_DELIVERY_MS, set_listing
from bot.venues.base import MarketListing
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue
from tests.engine.world import START_MS, open_world

NOW = 1_753_056_300_000  # 2025-07-21


def row(symbol: str, volume: str = "1e9", status: str = "TRADING", **kw) -> MarketListing:
    return MarketListing(
        symbol,
        status,
        kw.get("spot_status", "TRADING"),
        kw.get("onboard_ms", NOW - 400 * DAY_MS),
        kw.get("delivery_ms", NO_DELIVERY_MS),
        Decimal(volume),
    )


def test_select_filters_by_status_delivery_age_volume_and_deny_list() -> None:
    listings = {
        r.symbol: r
        for r in [
            row("BTC/USDT", "9e9"),
            row("ETH/USDT", "5e9"),
            row("THIN/USDT", "1e6"),
            row("NEW/USDT", onboard_ms=NOW - 3 * DAY_MS),
            row("SETL/USDT", status="SETTLING"),
            row("GONE/USDT", delivery_ms=NOW + 5 * DAY_MS),
            row("HALT/USDT", spot_status="BREAK"),
            row("BNB/USDT", "2e9"),
        ]
    }
    cfg = UniverseConfig(deny=["BNB/USDT"], max_symbols=2)
    chosen = select(listings, [], cfg, NOW)
    assert chosen.symbols == ["BTC/USDT", "ETH/USDT"]  # by volume
    why = chosen.excluded
    assert "volume" in why["THIN/USDT"] and "listed 3 days ago" in why["NEW/USDT"]
    assert "SETTLING" in why["SETL/USDT"] and "delisting announced" in why["GONE/USDT"]
    assert "BREAK" in why["HALT/USDT"] and "deny-list" in why["BNB/USDT"]
    # the allow-list: only those, through the status filters but not volume or age
    allowed = select(listings, ["THIN/USDT", "NEW/USDT", "SETL/USDT", "NOPE/USDT"], UniverseConfig(), NOW)
    assert allowed.symbols == ["NEW/USDT", "THIN/USDT"]
    assert set(allowed.excluded) == {"SETL/USDT", "NOPE/USDT"}
    assert UniverseConfig(deny="A/USDT, B/USDT").deny == ["A/USDT", "B/USDT"]


def test_exit_reason_in_time_for_a_delisting_and_at_once_for_a_status_change() -> None:
    cfg = UniverseConfig(delist_exit_hours=72)
    assert exit_reason(row("X/USDT"), cfg, NOW) is None
    assert exit_reason(row("X/USDT", delivery_ms=NOW + 100 * HOUR_MS), cfg, NOW) is None  # not yet
    assert "delisting" in exit_reason(row("X/USDT", delivery_ms=NOW + 71 * HOUR_MS), cfg, NOW)
    assert "PRE_DELIVERING" in exit_reason(row("X/USDT", status="PRE_DELIVERING"), cfg, NOW)
    assert "no longer lists" in exit_reason(None, cfg, NOW)


async def test_a_delisting_mid_hold_closes_the_pair_with_its_reason(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        # an emulator scenario: Binance's pre-delisting notice half an hour in, the perpetual to deliver
        # (delist) two days later (deliveryDate moves to that instant)
        notice = {"listings": [{"symbol": "SOL/USDT", "at": "+30m", "delivery": "+50h"}]}
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT", "XRP/USDT"], scenario=notice)
        await w.engine.scan()
        held = {p.symbol for p in await w.pairs(PairState.OPEN)}
        assert {"SOL/USDT", "XRP/USDT"} <= held, "the carry should enter both in a week of strong positive funding"

        await w.advance(HOUR_MS)
        await w.engine.scan()  # an hour later: the listings are read again
        sol = [p for p in await w.ledger.list_pairs(venue=w.venue.name) if p.symbol == "SOL/USDT"]
        assert [p.state for p in sol] == [PairState.CLOSED]
        _spot, perp = await w.position("SOL/USDT")
        assert perp == 0
        decisions = await w.ledger.events(kinds=[EventKind.DECISION], symbol="SOL/USDT")
        exits = [d for d in decisions if (d.details or {}).get("rule") == "delisting"]
        assert exits and "delivers at" in exits[-1].message and exits[-1].details["action"] == "exit"
        # no re-entry while the notice stands
        await w.advance(HOUR_MS)
        await w.engine.scan()
        assert not [p for p in await w.pairs(PairState.OPEN, PairState.OPENING) if p.symbol == "SOL/USDT"]

        # a status change closes at once, whatever the strategy says
        set_listing(w.sim, "XRPUSDT", status="SETTLING")
        w.engine._listings_ms = None  # the next scan re-reads at once
        await w.engine.scan()
        xrp = [p for p in await w.ledger.list_pairs(venue=w.venue.name) if p.symbol == "XRP/USDT"]
        assert xrp[-1].state is PairState.CLOSED
        reasons = [d.message for d in await w.ledger.events(kinds=[EventKind.DECISION], symbol="XRP/USDT")]
        assert any("SETTLING" in m for m in reasons)


async def test_the_universe_is_every_listed_pair_that_passes_the_filters(sqlite_url: str) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "LTCUSDT")
    async with run_emulator(symbols=symbols, clock=ManualClock(START_MS), tick_ms=50) as h:
        set_listing(h.sim, "DOGEUSDT", status="SETTLING")
        set_listing(h.sim, "LTCUSDT", delivery_ms=START_MS + 5 * 24 * 3_600_000)  # a delisting notice
        settings = load_settings(
            mode=Mode.LIVE, database_url=sqlite_url, symbols=[], universe={"deny": "XRP/USDT", "max_symbols": 2}
        )
        venue = CcxtVenue(build_client(h.connection, pro=False, tls=True, rateLimit=1), time_resync_s=0)
        try:
            async with await Ledger.open(sqlite_url, migrate=True) as ledger:
                resolved = await resolve_symbols(settings, venue, ledger)
                [event] = await ledger.events(kinds=[EventKind.INFO], message_prefix="universe")
            allowed = await resolve_symbols(settings.model_copy(update={"symbols": ["SOL/USDT"]}), venue, None)
        finally:
            await venue.close()
    assert sorted(resolved.symbols) == ["BTC/USDT", "ETH/USDT"]  # the two most traded of those left
    why = event.details["excluded"]
    assert "SETTLING" in why["DOGE/USDT"] and "delisting announced" in why["LTC/USDT"]
    assert "deny-list" in why["XRP/USDT"] and "most traded" in why["SOL/USDT"]
    assert allowed.symbols == ["SOL/USDT"]  # an allow-list is taken as given (the engine checks its listings)
