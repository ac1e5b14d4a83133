"""Public market data through the real ccxt: markets, funding, tickers, books, klines."""

from __future__ import annotations

import itertools

import pytest

from bot.domain import DAY_MS


async def test_load_markets_spot_and_swap_with_filters(ex) -> None:
    markets = await ex.load_markets()
    spot, perp = markets["BTC/USDT"], markets["BTC/USDT:USDT"]
    assert spot["spot"] and spot["type"] == "spot"
    assert perp["swap"] and perp["linear"] and perp["settle"] == "USDT" and perp["contractSize"] == 1
    assert spot["precision"]["amount"] == 1e-05 and spot["precision"]["price"] == 0.01
    assert perp["precision"]["amount"] == 0.001 and perp["precision"]["price"] == 0.1
    assert spot["limits"]["cost"]["min"] == 5.0 and perp["limits"]["cost"]["min"] == 100.0  # Binance BTCUSDT
    assert perp["limits"]["amount"]["min"] == 0.001
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"}


async def test_funding_rate_and_rates(ex, emu) -> None:
    fr = await ex.fetch_funding_rate("BTC/USDT:USDT")
    now = emu.clock.now_ms()
    assert fr["timestamp"] == now and fr["fundingTimestamp"] > now
    assert fr["markPrice"] > 0 and fr["fundingRate"] is not None
    rates = await ex.fetch_funding_rates(["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert set(rates) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}


async def test_funding_rate_history_is_settled_and_ordered(ex, emu) -> None:
    now = emu.clock.now_ms()
    rows = await ex.fetch_funding_rate_history("BTC/USDT:USDT", since=now - 3 * DAY_MS, limit=50)
    assert len(rows) >= 9  # 8 h settlements over three days
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times) and times[-1] <= now
    assert all(r["symbol"] == "BTC/USDT:USDT" for r in rows)


async def test_tickers_bids_asks(ex) -> None:
    t = await ex.fetch_ticker("BTC/USDT")
    assert t["bid"] < t["ask"] and t["last"] > 0 and t["bidVolume"] > 0
    tp = await ex.fetch_ticker("BTC/USDT:USDT")
    assert tp["symbol"] == "BTC/USDT:USDT" and tp["bid"] is None and tp["last"] > 0
    spot = await ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(spot) == {"BTC/USDT", "ETH/USDT"}
    perps = await ex.fetch_tickers(["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert set(perps) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    ba = await ex.fetch_bids_asks(["BTC/USDT:USDT"])
    assert ba["BTC/USDT:USDT"]["bid"] < ba["BTC/USDT:USDT"]["ask"]
    ba_spot = await ex.fetch_bids_asks(["BTC/USDT", "ETH/USDT"])
    assert set(ba_spot) == {"BTC/USDT", "ETH/USDT"}


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USDT:USDT"])
async def test_order_book(ex, symbol: str) -> None:
    book = await ex.fetch_order_book(symbol, 5)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0] and isinstance(book["nonce"], int)


async def test_ohlcv_hourly_and_mark(ex, emu) -> None:
    rows = await ex.fetch_ohlcv("BTC/USDT", "1h", limit=24)
    assert len(rows) == 24 and rows[-1][0] <= emu.clock.now_ms()
    assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(rows))
    daily = await ex.fetch_ohlcv("BTC/USDT:USDT", "1d", limit=3)
    assert len(daily) == 3 and all(r[0] % DAY_MS == 0 for r in daily)
    mark = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=5, params={"price": "mark"})
    assert len(mark) == 5 and mark[-1][5] == 0


async def test_server_time_is_simulated(ex, emu) -> None:
    assert await ex.fetch_time() == emu.clock.now_ms()


@pytest.mark.slow
async def test_premium_index_carries_nothing_of_the_coming_settlement(tmp_path) -> None:
    """Two emulators on the same prices, the coming settlements' rates different: every premiumIndex
    quote before them is the same (the old quote let next = prev + (pred - prev) / frac recover it)."""
    import gzip

    import pandas as pd

    from bot.domain import HOUR_MS
    from bot.emulator.server import run_emulator
    from bot.sim.clock import ManualClock
    from bot.sim.history import bundled_data_dir
    from bot.venues.ccxt_factory import build_client

    start, end = 1_740_787_200_000, 1_741_392_000_000
    t = start + 5 * 8 * HOUR_MS + 2 * HOUR_MS  # two hours into an interval
    for name, factor in (("a", 1.0), ("b", -3.0)):
        for sub, fname in [("funding", "binance_BTCUSDT.csv.gz")] + [
            ("klines", f"binance_{k}_BTCUSDT_1h.csv.gz") for k in ("spot", "perp", "mark")
        ]:
            df = pd.read_csv(bundled_data_dir() / sub / fname)
            df = df[(df.ts_ms >= start) & (df.ts_ms < end)].copy()
            if sub == "funding":
                df.loc[df.ts_ms > t, "funding_rate"] *= factor
            (tmp_path / name / sub).mkdir(parents=True, exist_ok=True)
            with gzip.open(tmp_path / name / sub / fname, "wt") as fh:
                df.to_csv(fh, index=False)
    quotes = []
    for name in ("a", "b"):
        clock = ManualClock(start + HOUR_MS)
        async with run_emulator(symbols=("BTCUSDT",), data_dir=tmp_path / name, clock=clock, tick_ms=50) as h:
            ex = build_client(h.connection, pro=True, tls=True, rateLimit=1)
            try:
                seen = []
                while clock.now_ms() <= t:
                    await h.tick()
                    seen.append((await ex.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"}))["lastFundingRate"])
                    clock.set(clock.now_ms() + 97 * 60_000)
                settled = await ex.fapiPublicGetFundingRate({"symbol": "BTCUSDT", "limit": 1000})
            finally:
                await ex.close()
        quotes.append((seen, [r["fundingRate"] for r in settled]))
    (a_seen, a_settled), (b_seen, b_settled) = quotes
    assert a_seen == b_seen and len(a_seen) > 20
    assert a_settled == b_settled  # nothing after t had settled yet in either
