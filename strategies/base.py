"""The strategy interface: a frozen market snapshot goes in, one target per symbol comes out.

Strategies are pure: ``evaluate(snapshot)`` reads nothing but its argument (no I/O, no clock, no
randomness), so the daemon, the dry-run and the backtest get identical decisions for identical inputs.

Callers build a ``Snapshot``:

- ``now_ms``: the decision instant (UTC epoch ms), from the injected clock.
- ``markets``: one ``MarketSnapshot`` per tradable symbol: both legs (``LegMarket``: filters, best bid/ask,
  optional book depth as ``(price, qty)`` levels best first, or a ``SlippageModel``; maker/taker fees),
  the last settled funding rate, the predicted rate of the next settlement, the current funding interval
  (hours), the next settlement instant and the recent settlement history (``FundingPoint``s, each with
  its own interval so interval changes are handled).
- ``pairs``: the bot's current hedged pairs (``PairView``; quantities in base units, the perp short as a
  positive number).
- ``capital``: USDT equity allocable to the strategy, INCLUDING what is already committed to pairs
  (marked to market), and ``limits`` set by the operator.

The result is a list of ``Target``: ``symbol``, ``target_qty`` (base quantity both legs should hold,
>= 0), ``action`` and a ``Reason`` (inputs, expected funding, costs, break-even, score, the rule that
fired and a sentence). Every symbol considered gets a target, including holds and skips, sorted by symbol.
Execution acts on ``enter``, ``resize``, ``exit`` and ``rebalance``; ``hold`` and ``skip`` never trade.
``Reason.to_dict()`` is JSON-serialisable (Decimals as strings) for the ledger.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from bot.domain import MarketFilters, PairState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from strategies.quiet import Bools, Floats, HeldPair, QuietView

Level = tuple[Decimal, Decimal]
"""One order-book level: (price, base quantity)."""


class FundingPoint(NamedTuple):
    """One settled funding rate, with the interval that applied to it (hours)."""

    ts_ms: int
    rate: Decimal
    interval_hours: int


@dataclass(frozen=True, slots=True)
class Fees:
    """Fee rates of one market, as fractions of notional (0.001 = 0.1%)."""

    maker: Decimal
    taker: Decimal

    def __post_init__(self) -> None:
        if self.maker < 0 or self.taker < 0:
            raise ValueError(f"fee rates must be >= 0, got maker={self.maker} taker={self.taker}")


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Linear impact when no book depth is available: ``bps_at_reference`` at ``reference_notional``
    USDT per side, proportional to the traded notional (on top of crossing half the spread)."""

    bps_at_reference: Decimal
    reference_notional: Decimal

    def __post_init__(self) -> None:
        if self.bps_at_reference < 0 or self.reference_notional <= 0:
            raise ValueError("slippage model needs bps_at_reference >= 0 and reference_notional > 0")

    def bps(self, notional: Decimal) -> Decimal:
        return self.bps_at_reference * notional / self.reference_notional


@dataclass(frozen=True, slots=True)
class LegMarket:
    """One leg's market: filters, top of book, and depth or a slippage model (at least one)."""

    filters: MarketFilters
    bid: Decimal
    ask: Decimal
    fees: Fees
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    slippage: SlippageModel | None = None

    def __post_init__(self) -> None:
        if self.bid <= 0 or self.ask < self.bid:
            raise ValueError(f"{self.filters.symbol}: need 0 < bid <= ask, got bid={self.bid} ask={self.ask}")
        has_depth = bool(self.bids) and bool(self.asks)
        if not has_depth and self.slippage is None:
            raise ValueError(f"{self.filters.symbol}: give book depth (bids and asks) or a slippage model")
        for price, qty in (*self.bids, *self.asks):
            if price <= 0 or qty < 0:
                raise ValueError(f"{self.filters.symbol}: bad book level ({price}, {qty})")

    @property
    def symbol(self) -> str:
        return self.filters.symbol

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def has_depth(self) -> bool:
        return bool(self.bids) and bool(self.asks)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything the strategy knows about one coin: spot leg, perp leg and funding."""

    symbol: str  # unified spot symbol, e.g. "BTC/USDT"; the pair is keyed by it
    spot: LegMarket
    perp: LegMarket
    funding_rate: Decimal  # last settled rate (fraction per interval)
    predicted_rate: Decimal  # predicted rate of the next settlement
    interval_hours: int  # current funding interval: 8, 4, 2 or 1
    next_funding_ms: int
    history: tuple[FundingPoint, ...] = ()  # recent settlements, any order

    def __post_init__(self) -> None:
        if self.interval_hours <= 0:
            raise ValueError(f"{self.symbol}: funding interval must be positive, got {self.interval_hours}")
        for point in self.history:
            if point.interval_hours <= 0:
                raise ValueError(f"{self.symbol}: history point at {point.ts_ms} has no positive interval")

    @property
    def perp_symbol(self) -> str:
        return self.perp.symbol


@dataclass(frozen=True, slots=True)
class PairView:
    """A pair the bot holds (or is opening/closing). Quantities in base units, perp short positive."""

    symbol: str
    state: PairState
    spot_qty: Decimal
    perp_qty: Decimal
    entry_ms: int | None = None
    last_rule: str | None = None
    pair_id: int | None = None

    @property
    def hedged_qty(self) -> Decimal:
        """The size both legs certainly share."""
        return min(self.spot_qty, self.perp_qty)


@dataclass(frozen=True, slots=True)
class Limits:
    """Operator limits on top of the strategy's own parameters. None means no extra limit."""

    max_pair_notional: Decimal | None = None
    max_total_notional: Decimal | None = None
    allow_entries: bool = True  # False: no new pairs and no increases (exits and holds still apply)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The frozen world a strategy decides on."""

    now_ms: int
    markets: tuple[MarketSnapshot, ...]
    pairs: tuple[PairView, ...] = ()
    capital: Decimal = Decimal(0)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        symbols = [m.symbol for m in self.markets]
        if len(set(symbols)) != len(symbols):
            raise ValueError("snapshot lists a market twice")
        held = [p.symbol for p in self.pairs if p.state is not PairState.CLOSED]
        if len(set(held)) != len(held):
            raise ValueError("snapshot lists two live pairs for one symbol")
        if self.capital < 0:
            raise ValueError(f"capital must be >= 0, got {self.capital}")

    def market(self, symbol: str) -> MarketSnapshot | None:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        return None

    def live_pairs(self) -> dict[str, PairView]:
        """Pairs not yet closed, by symbol."""
        return {p.symbol: p for p in self.pairs if p.state is not PairState.CLOSED}


class Action(enum.StrEnum):
    ENTER = "enter"  # open a new pair at target_qty
    HOLD = "hold"  # do nothing
    RESIZE = "resize"  # move both legs to target_qty
    EXIT = "exit"  # close both legs (target_qty == 0)
    REBALANCE = "rebalance"  # bring both legs back to the equal target_qty
    SKIP = "skip"  # not held, not entered


def _dec_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _text_dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(frozen=True, slots=True)
class Economics:
    """Money view of a pair at one size over the hold horizon (USDT unless noted)."""

    qty: Decimal  # base quantity evaluated
    notional: Decimal  # qty * perp mid
    horizon_hours: Decimal
    expected_funding: Decimal  # funding the short is expected to receive over the horizon
    expected_funding_per_hour: Decimal
    forecast_apr: Decimal  # expected funding rate, annualised (fraction per year)
    fees: Decimal  # both legs, in and out
    slippage: Decimal  # both legs, in and out, incl. half spread, at this size
    basis_cost: Decimal  # expected adverse basis move, round trip
    round_trip_cost: Decimal
    break_even_hours: Decimal | None  # None: funding never pays the costs back
    score: Decimal  # expected_funding - round_trip_cost
    net_apr: Decimal  # score / notional, annualised

    def to_dict(self) -> dict[str, str | None]:
        return {name: _dec_text(getattr(self, name)) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Economics:
        values = {name: _text_dec(data[name]) for name in cls.__slots__}
        return cls(**values)  # type: ignore[arg-type]  # to_dict's fields; only break_even_hours is ever None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a target was chosen: the rule (stable short code), a sentence, inputs and economics."""

    rule: str
    message: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    economics: Economics | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "inputs": dict(self.inputs),
            "economics": None if self.economics is None else self.economics.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        econ = data.get("economics")
        return cls(
            rule=data["rule"],
            message=data["message"],
            inputs=dict(data.get("inputs") or {}),
            economics=None if econ is None else Economics.from_dict(econ),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """What the strategy wants for one symbol: equal base quantity on both legs."""

    symbol: str
    target_qty: Decimal
    reason: Reason
    action: Action

    def __post_init__(self) -> None:
        if not self.target_qty.is_finite() or self.target_qty < 0:
            raise ValueError(f"{self.symbol}: target quantity must be finite and >= 0, got {self.target_qty}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "target_qty": str(self.target_qty),
            "action": self.action.value,
            "reason": self.reason.to_dict(),
        }


class Strategy(Protocol):
    """Anything with a name and a pure ``evaluate``."""

    name: str

    def evaluate(self, snapshot: Snapshot) -> list[Target]: ...


class QuietBound(Protocol):
    """A strategy's own bound of when its rules do nothing (strategies/quiet.py), over one run's grid."""

    def quiet(self, held: Sequence[HeldPair], i0: int, i1: int, capital: Floats) -> Bools:
        """bool per hour of [i0, i1): with ``held`` settled (sizes unchanged) and ``capital`` the equity at
        each hour, ``evaluate`` would certainly return only holds and skips. False where unsure."""
        ...

    def entry_possible(self) -> Bools:
        """bool per grid hour: with no pair held, ``evaluate`` might enter. True where unsure."""
        ...


@runtime_checkable
class PublishesQuietHours(Protocol):
    """A strategy that also publishes a quiet-hours bound, built from the same rule functions it decides
    with. Optional: a strategy without it is evaluated at every scan of a backtest (correct, slower)."""

    def quiet_hours(self, view: QuietView) -> QuietBound: ...


def quiet_bound(strategy: object, view: QuietView) -> QuietBound | None:
    """``strategy``'s quiet-hours bound over ``view``, or None when it publishes none."""
    return strategy.quiet_hours(view) if isinstance(strategy, PublishesQuietHours) else None
