"""Listing state of the simulated perpetuals: exchangeInfo's ``status``, ``onboardDate`` and ``deliveryDate``.

Binance lists a USD-M perpetual as ``TRADING`` with a ``deliveryDate`` far in the future (2100); a
pre-delisting notice moves ``deliveryDate`` to the delisting instant, and the contract then goes through
``SETTLING`` / ``PRE_DELIVERING`` / ``DELIVERING`` to ``CLOSE``. The simulator keeps each symbol's state in
``SimState.listings`` (an operator-visible change, set by a scenario or a test) over defaults: TRADING,
the onboard date of the snapshot (``binance_markets.json``), no delivery.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.sim.state import SimState

TRADING = "TRADING"
NO_DELIVERY_MS = 4_133_404_800_000  # 2100-12-25: what Binance sends for a perpetual with no delivery
DEFAULT_ONBOARD_MS = 1_569_398_400_000  # 2019-09-25, BTCUSDT's listing: a symbol the snapshot lacks


@dataclass(frozen=True, slots=True)
class Listing:
    status: str = TRADING  # the perpetual's exchangeInfo status
    onboard_ms: int = DEFAULT_ONBOARD_MS
    delivery_ms: int = NO_DELIVERY_MS
    spot_status: str = TRADING


@functools.cache
def _onboard_dates() -> dict[str, int]:
    with resources.files("bot.sim.data").joinpath("binance_markets.json").open("r", encoding="utf-8") as fh:
        perps = json.load(fh).get("perp", {})
    return {s: int(row["onboardDate"]) for s, row in perps.items() if row.get("onboardDate")}


def listing(state: SimState, symbol: str) -> Listing:
    """The listing of ``symbol`` (Binance id) now: an explicit state, else TRADING since its onboard date."""
    found = state.listings.get(symbol)
    return found if found is not None else Listing(onboard_ms=_onboard_dates().get(symbol, DEFAULT_ONBOARD_MS))


def set_listing(
    state: SimState,
    symbol: str,
    *,
    status: str | None = None,
    delivery_ms: int | None = None,
    spot_status: str | None = None,
) -> Listing:
    """Change the listing of ``symbol`` (a delisting notice, a status change); returns the new state."""
    old = listing(state, symbol)
    new = Listing(
        status or old.status,
        old.onboard_ms,
        delivery_ms if delivery_ms is not None else old.delivery_ms,
        spot_status or old.spot_status,
    )
    state.listings[symbol] = new
    return new
