"""A pair's legs as the venue reports them: what alerts state and reconciliation compares with the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain import ZERO
from bot.venues.base import Venue


@dataclass(frozen=True, slots=True)
class VenueLegs:
    """Spot coin held and perp short size (positive = short), both in the base asset."""

    symbol: str
    base: str
    spot: Decimal
    short: Decimal

    @property
    def net(self) -> Decimal:
        """Base-asset exposure: positive a naked long (coin without its short), negative a naked short."""
        return self.spot - self.short

    def describe(self) -> str:
        net = self.net
        side = "long" if net > 0 else "short" if net < 0 else "flat"
        return (
            f"venue legs as read: spot {self.spot.normalize():f} {self.base}, perp short "
            f"{self.short.normalize():f} (net {net.normalize():+f} {self.base}, {side})"
        )


async def read_venue_legs(venue: Venue, symbol: str, base: str) -> VenueLegs:
    """One fresh read of the perp position and the spot balance of ``symbol``."""
    positions = await venue.fetch_positions([symbol])
    position = positions.get(symbol)
    balances = await venue.fetch_balances()
    spot = sum((b.total for b in balances if b.wallet == "spot" and b.asset == base), ZERO)
    return VenueLegs(symbol, base, spot, -position.qty if position is not None else ZERO)
