"""The universe: every USDT-margined perpetual with a spot market, filtered, instead of a fixed list.

At start (``select``): each pair the venue lists (``Venue.fetch_listings``) is kept when its perpetual
and its spot market are ``TRADING``, no delivery (a delisting) is announced, it was listed at least
``min_listing_days`` ago, its perpetual traded ``min_quote_volume_usdt`` in the last 24 h, and it is not
on the deny-list. ``FUNDBOT_SYMBOLS``, when set, is an allow-list: only those are considered (through
the same filters, except volume and age, which the operator chose to override by naming them).

While a pair is held (``exit_reason``): a status other than TRADING (settling, delivering, pre-delisting,
a spot halt) or a delivery instant within ``delist_exit_hours`` closes it, with the reason in its decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from bot.config import UniverseConfig
from bot.venues.base import MarketListing

TRADING = "TRADING"
DAY_MS = 24 * 3_600_000
HOUR_MS = 3_600_000
FAR_MS = 10 * 365 * DAY_MS  # a delivery further away than this is Binance's "none" (2100-12-25)


@dataclass
class Selection:
    symbols: list[str]
    excluded: dict[str, str] = field(default_factory=dict)  # symbol -> why it is not traded


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def delivery_due(listing: MarketListing, now_ms: int) -> bool:
    """A delivery (delisting) instant is announced: not Binance's far-future 'none'."""
    return listing.delivery_ms is not None and listing.delivery_ms - now_ms < FAR_MS


def status_problem(listing: MarketListing, now_ms: int) -> str | None:
    """Why the pair's listing stops it from being traded, or None."""
    if listing.status != TRADING:
        return f"perpetual status {listing.status}"
    if listing.spot_status != TRADING:
        return f"spot status {listing.spot_status}"
    if delivery_due(listing, now_ms):
        return f"delisting announced: the perpetual delivers at {_day(listing.delivery_ms or 0)}"
    return None


def select(listings: dict[str, MarketListing], allow: list[str], cfg: UniverseConfig, now_ms: int) -> Selection:
    """The symbols to trade, by descending 24 h quote volume, and why each other one is left out."""
    deny = {s.upper() for s in cfg.deny}
    out = Selection([])
    candidates = allow or sorted(listings)
    kept: list[tuple[Decimal, str]] = []
    for symbol in candidates:
        row = listings.get(symbol)
        if row is None:
            out.excluded[symbol] = "no spot market with a USDT-margined perpetual on this venue"
            continue
        if symbol.upper() in deny:
            out.excluded[symbol] = "on the deny-list (FUNDBOT_UNIVERSE__DENY)"
            continue
        problem = status_problem(row, now_ms)
        if problem is not None:
            out.excluded[symbol] = problem
            continue
        volume = row.quote_volume_24h if row.quote_volume_24h is not None else Decimal(0)
        if not allow:
            if row.onboard_ms is not None and now_ms - row.onboard_ms < cfg.min_listing_days * DAY_MS:
                days = (now_ms - row.onboard_ms) / DAY_MS
                out.excluded[symbol] = (
                    f"listed {days:.0f} days ago (FUNDBOT_UNIVERSE__MIN_LISTING_DAYS={cfg.min_listing_days:g})"
                )
                continue
            if volume < cfg.min_quote_volume_usdt:
                out.excluded[symbol] = (
                    f"24 h quote volume {volume:,.0f} USDT below {cfg.min_quote_volume_usdt:,} "
                    "(FUNDBOT_UNIVERSE__MIN_QUOTE_VOLUME_USDT)"
                )
                continue
        kept.append((volume, symbol))
    kept.sort(key=lambda k: (-k[0], k[1]))
    if cfg.max_symbols:
        for _, symbol in kept[cfg.max_symbols :]:
            out.excluded[symbol] = f"beyond the {cfg.max_symbols} most traded (FUNDBOT_UNIVERSE__MAX_SYMBOLS)"
        kept = kept[: cfg.max_symbols]
    out.symbols = [s for _, s in kept]
    return out


def exit_reason(listing: MarketListing | None, cfg: UniverseConfig, now_ms: int) -> str | None:
    """Why a held pair must be closed now (a status change, a delisting close enough), or None."""
    if listing is None:
        return "the venue no longer lists the pair"
    if listing.status != TRADING:
        return f"perpetual status {listing.status} (settling, delivering or delisted): closing before it stops trading"
    if listing.spot_status != TRADING:
        return f"spot status {listing.spot_status}: closing while the perpetual still trades"
    if delivery_due(listing, now_ms) and (listing.delivery_ms or 0) - now_ms <= cfg.delist_exit_hours * HOUR_MS:
        return (
            f"delisting: the perpetual delivers at {_day(listing.delivery_ms or 0)}, within "
            f"{cfg.delist_exit_hours:g} h (FUNDBOT_UNIVERSE__DELIST_EXIT_HOURS)"
        )
    return None
