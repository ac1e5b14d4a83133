"""Market-stream payloads (miniTicker, ticker, bookTicker, markPrice) built from the simulation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.emulator import formats

if TYPE_CHECKING:
    from bot.emulator.app import Emulator


def _mini(t: Any, now: int) -> dict[str, Any]:
    return {
        "e": "24hrMiniTicker",
        "E": now,
        "s": t.symbol,
        "c": formats.fmt(t.last),
        "o": formats.fmt(t.open),
        "h": formats.fmt(t.high),
        "l": formats.fmt(t.low),
        "v": formats.qty8(t.volume),
        "q": formats.qty8(t.quote_volume),
    }


def _full(t: Any, now: int, spot: bool) -> dict[str, Any]:
    row = formats.ticker_24hr(t, spot)
    out: dict[str, Any] = {
        "e": "24hrTicker",
        "E": now,
        "s": t.symbol,
        "p": row["priceChange"],
        "P": row["priceChangePercent"],
        "w": row["weightedAvgPrice"],
    }
    if spot:
        out["x"] = row["prevClosePrice"]
    out.update({"c": row["lastPrice"], "Q": "0"})
    if spot:
        out.update({"b": row["bidPrice"], "B": row["bidQty"], "a": row["askPrice"], "A": row["askQty"]})
    out.update(
        {
            "o": row["openPrice"],
            "h": row["highPrice"],
            "l": row["lowPrice"],
            "v": row["volume"],
            "q": row["quoteVolume"],
            "O": t.open_ms,
            "C": t.close_ms,
            "F": 1,
            "L": 1,
            "n": 1,
        }
    )
    return out


def _book(t: Any, now: int, spot: bool) -> dict[str, Any]:
    body = {
        "u": now,
        "s": t.symbol,
        "b": formats.fmt(t.bid),
        "B": formats.fmt(t.bid_qty),
        "a": formats.fmt(t.ask),
        "A": formats.fmt(t.ask_qty),
    }
    if spot:
        return body  # spot bookTicker rows carry no "e"
    return {"e": "bookTicker", "u": now, "E": now, "T": now, **{k: v for k, v in body.items() if k != "u"}}


def _mark(p: Any, now: int) -> dict[str, Any]:
    return {
        "e": "markPriceUpdate",
        "E": now,
        "s": p.symbol,
        "p": formats.fmt(p.mark_price),
        "i": formats.fmt(p.index_price),
        "P": formats.fmt(p.estimated_settle_price),
        "r": formats.fmt(p.last_funding_rate),
        "T": p.next_funding_time,
    }


def market_event(emu: Emulator, market: str, stream: str) -> Any:
    """The payload for one subscribed stream name, or None for streams without a snapshot-style push."""
    sim, now, spot = emu.sim, emu.now_ms(), market == "spot"
    symbols = list(emu.symbols)
    head, _, channel = stream.partition("@")
    channel = channel.split("@")[0]
    if head.startswith("!"):
        name = head[1:]
        if name == "markPrice" and not spot:
            return [_mark(sim.premium_index(s), now) for s in symbols]
        if name == "miniTicker":
            return [_mini(sim.ticker(market, s), now) for s in symbols]
        if name == "ticker":
            return [_full(sim.ticker(market, s), now, spot) for s in symbols]
        if name == "bookTicker":
            return None
        return None
    symbol = head.upper()
    if symbol not in emu.symbols:
        return None
    if channel == "miniTicker":
        return _mini(sim.ticker(market, symbol), now)
    if channel == "ticker":
        return _full(sim.ticker(market, symbol), now, spot)
    if channel == "bookTicker":
        return _book(sim.ticker(market, symbol), now, spot)
    if channel == "markPrice" and not spot:
        return _mark(sim.premium_index(symbol), now)
    return None
