"""USD-M futures wallet: one-way positions, cross or isolated margin, Binance margin arithmetic.

Definitions (USDT single-asset mode):
* unrealised PnL = amt * (mark - entry); initial margin = |amt| * mark / leverage;
  maintenance margin = |notional| * mmr - cum from the notional's bracket.
* cross margin balance = cross wallet + unrealised PnL of cross positions.
* available = cross margin balance - cross positions' initial margin - open orders' initial margin.
* max withdrawable = max(0, min(available, cross wallet - cross initial margin - open-order margin)):
  unrealised profit cannot be withdrawn, unrealised loss reduces what can.
* margin ratio = cross maintenance margin / cross margin balance; liquidation at >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.sim.markets import Bracket, maint_margin

ZERO = Decimal(0)
_Q = Decimal("0.00000001")


def q8(x: Decimal) -> Decimal:
    return x.quantize(_Q)


@dataclass
class SimPosition:
    symbol: str
    leverage: int
    margin_type: str = "CROSSED"  # or "ISOLATED"
    amt: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    update_ms: int = 0

    @property
    def isolated(self) -> bool:
        return self.margin_type == "ISOLATED"

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.amt * (mark - self.entry_price)

    def notional(self, mark: Decimal) -> Decimal:
        return self.amt * mark

    def initial_margin(self, mark: Decimal) -> Decimal:
        return abs(self.amt) * mark / self.leverage

    def apply_fill(self, signed_qty: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
        """Update amount and entry for a fill; returns (realised PnL, quantity that closed)."""
        amt = self.amt
        if amt == 0 or (amt > 0) == (signed_qty > 0):
            new_amt = amt + signed_qty
            self.entry_price = q8((abs(amt) * self.entry_price + abs(signed_qty) * price) / abs(new_amt))
            self.amt = new_amt
            return ZERO, ZERO
        closing = min(abs(signed_qty), abs(amt))
        direction = Decimal(1) if amt > 0 else Decimal(-1)
        realized = closing * (price - self.entry_price) * direction
        self.amt = amt + signed_qty
        if self.amt == 0:
            self.entry_price = ZERO
        elif (self.amt > 0) != (amt > 0):
            self.entry_price = price  # flipped: the remainder opened at this price
        return realized, closing


@dataclass
class FuturesWallet:
    """USDT wallet (cross part plus isolated wallets) and one-way positions per symbol."""

    wallet: Decimal = ZERO  # total USDT wallet balance, isolated wallets included
    other_assets: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, SimPosition] = field(default_factory=dict)

    def cross_wallet(self) -> Decimal:
        return self.wallet - sum((p.isolated_wallet for p in self.positions.values() if p.isolated), ZERO)

    def open_positions(self) -> list[SimPosition]:
        return [p for p in self.positions.values() if p.amt != 0]

    def cross_figures(
        self, marks: dict[str, Decimal], brackets: dict[str, tuple[Bracket, ...]], open_order_margin: Decimal
    ) -> dict[str, Decimal]:
        """Margin figures of the cross account at the given mark prices."""
        upnl = im = mm = ZERO
        for p in self.open_positions():
            if p.isolated:
                continue
            mark = marks[p.symbol]
            upnl += p.unrealized(mark)
            im += p.initial_margin(mark)
            mm += maint_margin(brackets[p.symbol], p.notional(mark))
        cw = self.cross_wallet()
        balance = cw + upnl
        available = balance - im - open_order_margin
        max_withdraw = max(ZERO, min(available, cw - im - open_order_margin))
        ratio = (mm / balance) if balance > 0 else (Decimal(1) if mm > 0 else ZERO)
        return {
            "cross_wallet": cw,
            "unrealized": upnl,
            "margin_balance": balance,
            "initial_margin": im,
            "maint_margin": mm,
            "available": available,
            "max_withdraw": max_withdraw,
            "margin_ratio": ratio,
        }

    def liquidation_price(
        self, p: SimPosition, marks: dict[str, Decimal], brackets: dict[str, tuple[Bracket, ...]]
    ) -> Decimal:
        """Mark price at which ``p`` is liquidated, other cross positions held at their marks (Binance).

        One-way mode: ``LP = (WB - TMM1 + UPNL1 + cum_B - side*Q*EP) / (Q*MMR_B - side*Q)`` with ``WB`` the
        cross wallet (the isolated wallet for an isolated position, and then no other positions count),
        ``TMM1``/``UPNL1`` the maintenance margin and unrealised PnL of the other cross positions, ``side`` +1
        long / -1 short, ``Q`` the size, and the bracket ``B`` the one the notional AT the liquidation price
        falls in (Binance's FAQ "How to calculate liquidation price of USDS-M futures contracts")."""
        if p.amt == 0:
            return ZERO
        if p.isolated:
            rest = p.isolated_wallet
        else:
            rest = self.cross_wallet()
            for o in self.open_positions():
                if o.isolated or o.symbol == p.symbol:
                    continue
                m = marks[o.symbol]
                rest += o.unrealized(m) - maint_margin(brackets[o.symbol], o.notional(m))
        side = Decimal(1) if p.amt > 0 else Decimal(-1)
        q = abs(p.amt)
        tiers = brackets[p.symbol]
        candidates: list[Decimal] = []
        for b in tiers:
            denom = q * b.maint_margin_ratio - side * q
            if denom == 0:
                continue
            price = (rest + b.cum - side * q * p.entry_price) / denom
            candidates.append(price)
            if b.notional_floor <= q * max(price, ZERO) < b.notional_cap:
                return q8(max(price, ZERO))
        # no tier is consistent with its own price (the position is past every cap): the last tier's
        return q8(max(candidates[-1], ZERO)) if candidates else ZERO
