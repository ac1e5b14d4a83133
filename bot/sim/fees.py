"""The simulated account's commission: which rate a fill pays and in which asset.

One small module so every fill (taker or resting maker orders) looks its fee up in one place. The
account's rates are ``SimConfig``'s (what ``GET /api/v3/account/commission`` and ``GET
/fapi/v1/commissionRate`` report); ``SimState.bnb_burn`` is the account's ``spotBNBBurn`` switch
(``POST /sapi/v1/bnbBurn``). While it is on and the spot wallet's free BNB covers the fee, a spot fill
pays ``discount`` (Binance: 0.75) of the standard commission in BNB at the BNB/USDT price of the instant,
and the coin bought (or the USDT received) arrives whole; without enough BNB the fee falls back to the
usual asset (the coin bought, or the quote received), as on Binance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.sim.matching import fee_amount

if TYPE_CHECKING:
    from bot.sim.markets import MarketSpec
    from bot.sim.state import SimState

BNB = "BNB"
BNB_MARKET = "BNBUSDT"  # the price BNB fees are converted at


@dataclass(frozen=True, slots=True)
class SpotFee:
    amount: Decimal
    asset: str
    rate: Decimal  # the commission rate charged (discounted when paid in BNB)


def rate(state: SimState, market: str, maker: bool) -> Decimal:
    """The account's commission rate on ``market`` ("spot" or "perp") for a maker or taker fill."""
    cfg = state.config
    if market == "spot":
        return cfg.spot_maker_fee if maker else cfg.spot_taker_fee
    return cfg.perp_maker_fee if maker else cfg.perp_taker_fee


def bnb_price(state: SimState) -> Decimal | None:
    """BNB's USDT price now on the simulated spot market; None when it is not listed or has no price."""
    price = state._px.get(("spot", BNB_MARKET)) if ("spot", BNB_MARKET) in state._specs else None
    return price if price is not None and price > 0 else None


def spot_fee(state: SimState, spec: MarketSpec, side: str, price: Decimal, qty: Decimal, maker: bool) -> SpotFee:
    """The fee of one spot fill: in BNB while the burn is on and the free BNB covers it, else in the coin
    bought (a buy; in USDT when ``spot_fee_in_quote``) or in the quote received (a sell)."""
    r = rate(state, "spot", maker)
    quote = price * qty
    if state.bnb_burn and r > 0:
        px = bnb_price(state)
        if px is not None:
            discounted = r * state.config.bnb_discount
            fee = fee_amount(quote / px, discounted)
            if fee > 0 and state.spot.free(BNB) >= fee:
                return SpotFee(fee, BNB, discounted)
    if side == "BUY" and not state.config.spot_fee_in_quote:
        return SpotFee(fee_amount(qty, r), spec.base, r)
    return SpotFee(fee_amount(quote, r), spec.quote, r)
