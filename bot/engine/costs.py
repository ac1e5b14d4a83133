"""The account's real costs: commission rates read from the venue, with the configured rates as overrides.

At start and daily the engine reads each symbol's rates (``Venue.fetch_commission``: spot ``GET
/api/v3/account/commission``, USD-M ``GET /fapi/v1/commissionRate``) and whether BNB pays the spot fees
(``spotBNBBurn``). The strategy's cost model then uses them per symbol (the BNB rate while BNB pays), and
spot buys are grossed up by the account's spot taker rate, or not at all while BNB pays the fee (the coin
bought then arrives whole).

A rate set in the environment (``FUNDBOT_ENGINE__SPOT_TAKER_FEE``..., ``FUNDBOT_EXECUTION__SPOT_FEE_IN_BASE``)
overrides what the venue says, for every symbol; an unset one is only the fallback for a symbol the
venue gave no rates for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.config import EngineConfig, ExecutionConfig
from bot.domain import ZERO
from bot.engine.snapshot import FeeSchedule
from bot.venues.base import CommissionRates
from strategies.base import Fees

RATE_FIELDS = ("spot_maker_fee", "spot_taker_fee", "perp_maker_fee", "perp_taker_fee")
DAY_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class AccountCosts:
    """What the engine trades with until the next read."""

    fees: FeeSchedule
    spot_fee_in_base: Decimal  # the gross-up of spot buys (0 while BNB pays the fee)
    bnb_burn: bool
    read_ms: int
    overrides: tuple[str, ...]  # the settings that replaced the venue's rates

    def details(self) -> dict[str, object]:
        """The ledger event's details: the rates each symbol is costed at."""
        return {
            "bnb_burn": self.bnb_burn,
            "spot_fee_in_base": str(self.spot_fee_in_base),
            "overrides": list(self.overrides),
            "default": _fees_text(self.fees.spot, self.fees.perp),
            "by_symbol": {s: _fees_text(sp, pp) for s, (sp, pp) in sorted(self.fees.by_symbol.items())},
        }


def _fees_text(spot: Fees, perp: Fees) -> dict[str, str]:
    return {
        "spot_maker": str(spot.maker),
        "spot_taker": str(spot.taker),
        "perp_maker": str(perp.maker),
        "perp_taker": str(perp.taker),
    }


@dataclass
class CostResolver:
    """Turns the venue's rates into ``AccountCosts``; remembers which settings were set by the operator
    (read once: the engine later replaces the executor's config with the resolved gross-up)."""

    engine: EngineConfig
    execution: ExecutionConfig
    set_rates: frozenset[str] = field(init=False)
    set_gross_up: bool = field(init=False)

    def __post_init__(self) -> None:
        self.set_rates = frozenset(f for f in RATE_FIELDS if f in self.engine.model_fields_set)
        self.set_gross_up = "spot_fee_in_base" in self.execution.model_fields_set

    def _rate(self, name: str, venue_value: Decimal | None) -> Decimal:
        if name in self.set_rates or venue_value is None:
            return getattr(self.engine, name)
        return venue_value

    def resolve(self, rates: dict[str, CommissionRates], bnb_burn: bool, now_ms: int) -> AccountCosts:
        """Per symbol: the venue's rates (the BNB-discounted spot ones while BNB pays), each replaced by
        its setting when the operator set it. The default schedule (a symbol without rates) is the
        settings'."""
        by_symbol: dict[str, tuple[Fees, Fees]] = {}
        for symbol, r in rates.items():
            spot_maker = r.spot_maker_bnb if bnb_burn else r.spot_maker
            spot_taker = r.spot_taker_bnb if bnb_burn else r.spot_taker
            by_symbol[symbol] = (
                Fees(maker=self._rate("spot_maker_fee", spot_maker), taker=self._rate("spot_taker_fee", spot_taker)),
                Fees(
                    maker=self._rate("perp_maker_fee", r.perp_maker), taker=self._rate("perp_taker_fee", r.perp_taker)
                ),
            )
        default = FeeSchedule(
            spot=Fees(maker=self.engine.spot_maker_fee, taker=self.engine.spot_taker_fee),
            perp=Fees(maker=self.engine.perp_maker_fee, taker=self.engine.perp_taker_fee),
            by_symbol=by_symbol,
        )
        if self.set_gross_up:
            gross_up = self.execution.spot_fee_in_base
        elif bnb_burn:
            gross_up = ZERO  # BNB pays: the coin bought arrives whole
        elif rates:
            gross_up = max(r.spot_taker for r in rates.values())  # one figure for every buy: the largest
        else:
            gross_up = self.execution.spot_fee_in_base
        overrides = tuple(f"FUNDBOT_ENGINE__{f.upper()}" for f in RATE_FIELDS if f in self.set_rates) + (
            ("FUNDBOT_EXECUTION__SPOT_FEE_IN_BASE",) if self.set_gross_up else ()
        )
        return AccountCosts(default, gross_up, bnb_burn, now_ms, overrides)
