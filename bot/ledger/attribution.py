"""One PnL attribution of ledger facts: fees and funding in USDT, slippage against the decision's price.

Every reader of money figures prices fills and payments here — the backtest's ``summary.json`` and HTML
report (``bot.backtest.metrics``) and ``fundbot report`` (``bot.ops.report``) — so they agree to the cent.

- fee: quote fees as charged; fees paid in the base asset at the fill price; other assets (BNB) at the
  caller's ``AssetPrice`` at the fill instant, unconverted (and named in ``notes``) without one.
- slippage (a cost, positive when paid): per fill, ``(price - reference) * qty`` for a buy and
  ``(reference - price) * qty`` for a sell, where the reference is the mid of that leg's book when the
  executor planned the action, recorded in the order intent's ``reference_price`` (repair orders keep
  their action's reference). A fill without one (a ledger written before references were recorded, a
  fill no executor order made: liquidation, adopted position) has no slippage and is counted in
  ``unreferenced_fills``.
- funding: each payment, converted at ``AssetPrice`` at its funding time when not paid in USDT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from bot.domain import ZERO, Side, spot_symbol
from bot.ledger.models import Fill, FundingPayment, IntentKind
from bot.ledger.recorder import Recorder

QUOTE = "USDT"
AssetPrice = Callable[[str, int], Decimal | None]  # (asset, ts_ms) -> its USDT price then, None: unknown


def base_asset(symbol: str) -> str:
    return spot_symbol(symbol).split("/")[0]


def fee_usdt(f: Fill, asset_price: AssetPrice | None = None) -> Decimal | None:
    """The fee of one fill in USDT (None: paid in an asset with no known price)."""
    asset = (f.fee_asset or QUOTE).upper()
    if asset == QUOTE or f.fee == 0:
        return f.fee
    if asset == base_asset(f.symbol).upper():
        return f.fee * f.price
    px = asset_price(asset, f.ts_ms) if asset_price is not None else None
    return None if px is None else f.fee * px


def slippage_cost(f: Fill, reference: Decimal) -> Decimal:
    """What the fill paid against the reference price (positive: a cost)."""
    diff = f.price - reference if f.side is Side.BUY else reference - f.price
    return diff * f.quantity


async def reference_prices(ledger: Recorder) -> dict[str, Decimal]:
    """client order id -> the reference price its order intent recorded."""
    refs: dict[str, Decimal] = {}
    for intent in await ledger.list_intents([IntentKind.ORDER]):
        raw = (intent.payload or {}).get("reference_price")
        if raw is None:
            continue
        try:
            refs[intent.client_id] = Decimal(str(raw))
        except InvalidOperation:
            continue
    return refs


@dataclass
class Costs:
    """Funding, fees and slippage of one symbol (or all), in USDT; fees and slippage positive = cost."""

    funding: Decimal = ZERO
    funding_payments: int = 0
    fees: Decimal = ZERO
    slippage: Decimal = ZERO
    fills: int = 0
    unreferenced_fills: int = 0

    def add(self, other: Costs) -> None:
        self.funding += other.funding
        self.funding_payments += other.funding_payments
        self.fees += other.fees
        self.slippage += other.slippage
        self.fills += other.fills
        self.unreferenced_fills += other.unreferenced_fills


@dataclass(frozen=True, slots=True)
class FillCost:
    fill: Fill
    symbol: str  # unified spot symbol of the pair
    fee: Decimal | None  # USDT; None: not convertible
    slippage: Decimal | None  # USDT; None: no reference recorded


@dataclass(frozen=True, slots=True)
class PaymentValue:
    payment: FundingPayment
    symbol: str
    amount: Decimal | None  # USDT; None: not convertible


@dataclass
class Attribution:
    by_symbol: dict[str, Costs] = field(default_factory=dict)
    fills: list[FillCost] = field(default_factory=list)
    payments: list[PaymentValue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, symbol: str) -> Costs:
        return self.by_symbol.setdefault(spot_symbol(symbol), Costs())

    def total(self) -> Costs:
        out = Costs()
        for c in self.by_symbol.values():
            out.add(c)
        return out


def attribute(
    fills: Iterable[Fill],
    payments: Iterable[FundingPayment],
    references: dict[str, Decimal],
    asset_price: AssetPrice | None = None,
) -> Attribution:
    """Price every fill and payment (the callers choose which: window, account, pair)."""
    out = Attribution()
    for f in fills:
        sym = spot_symbol(f.symbol)
        c = out.of(sym)
        c.fills += 1
        fee = fee_usdt(f, asset_price)
        if fee is None:
            out.notes.append(f"{sym}: fee {f.fee} {f.fee_asset} of trade {f.venue_trade_id} not converted (no price)")
        else:
            c.fees += fee
        ref = references.get(f.client_order_id or "")
        slip = None if ref is None else slippage_cost(f, ref)
        if slip is None:
            c.unreferenced_fills += 1
        else:
            c.slippage += slip
        out.fills.append(FillCost(f, sym, fee, slip))
    for p in payments:
        sym = spot_symbol(p.symbol)
        c = out.of(sym)
        amount: Decimal | None = p.amount
        if p.asset.upper() != QUOTE:
            px = asset_price(p.asset.upper(), p.funding_time_ms) if asset_price is not None else None
            amount = None if px is None else p.amount * px
        if amount is None:
            out.notes.append(f"{sym}: funding {p.amount} {p.asset} not converted (no price)")
        else:
            c.funding += amount
            c.funding_payments += 1
        out.payments.append(PaymentValue(p, sym, amount))
    unreferenced = sum(c.unreferenced_fills for c in out.by_symbol.values())
    if unreferenced:
        out.notes.append(
            f"{unreferenced} fill(s) have no reference price recorded by their order (not placed by the "
            "executor, or written before references were recorded): their slippage is not counted"
        )
    return out


async def attribute_ledger(ledger: Recorder, asset_price: AssetPrice | None = None) -> Attribution:
    """Every fill and payment of the ledger (a backtest's, or a whole account's history). Without
    ``asset_price``, a fee paid in a third asset (BNB) is valued at the ledger's own observed price of
    that asset at the fill's time (``prices`` events, BNB/USDT fills)."""
    fills = await ledger.list_fills()
    if asset_price is None and any(_third_asset(f) for f in fills):
        from bot.ledger.reads import build_price_book, recorded_price_book  # imported only when needed
        from bot.ledger.repository import Ledger

        # the daemon's ledger reads its price book with SQL; any other recorder through its own reads
        book = await build_price_book(ledger) if isinstance(ledger, Ledger) else await recorded_price_book(ledger)

        def asset_price(asset: str, ts_ms: int) -> Decimal | None:
            return book.at(f"{asset}/{QUOTE}", ts_ms)

    return attribute(fills, await ledger.list_funding_payments(), await reference_prices(ledger), asset_price)


def _third_asset(f: Fill) -> bool:
    """A fee paid in neither the quote nor the coin traded (BNB while it pays the spot fees)."""
    asset = (f.fee_asset or QUOTE).upper()
    return bool(f.fee) and asset != QUOTE and asset != base_asset(f.symbol).upper()
