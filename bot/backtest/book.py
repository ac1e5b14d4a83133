"""The settled book the fast-forward reads (bot/backtest/fastforward.py): the live pairs and the wallets in
floats, frozen for a stretch in which nothing acts (only funding and prices move them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from bot.backtest.paths import SymbolPaths
from strategies.quiet import HeldPair


@dataclass(frozen=True)
class Held(HeldPair):
    """One live pair (what the strategy's bound reads) and its perp position (the margin certificate's)."""

    perp_amt: float  # signed position
    entry: float


@dataclass
class SpotHoldings:
    """The spot wallet (free + locked) in floats, valued along the replayed prices."""

    usdt: float
    coins: dict[str, float]  # Binance id -> quantity, for every coin the data set prices
    unpriced: bool  # some other asset is held: the simulator values it at 0

    @classmethod
    def read(cls, balances: Mapping[str, tuple[Decimal, Decimal]], paths: Mapping[str, SymbolPaths]) -> SpotHoldings:
        usdt, coins, unpriced = 0.0, {}, False
        for asset, (free, locked) in balances.items():
            amount = float(free + locked)
            if not amount:
                continue
            if asset == "USDT":
                usdt = amount
            elif f"{asset}USDT" in paths:
                coins[f"{asset}USDT"] = amount
            else:
                unpriced = True
        return cls(usdt, coins, unpriced)

    def value(self, paths: Mapping[str, SymbolPaths], i0: int, i1: int) -> np.ndarray:
        """USDT value at each grid hour in [i0, i1), as ``EngineLoop._capital_from`` values the spot wallet:
        the replayed spot price, the last known one in a gap, 0 before the first."""
        out = np.full(i1 - i0, self.usdt)
        for sid, qty in self.coins.items():
            out += qty * np.nan_to_num(paths[sid].spot[i0:i1], nan=0.0)
        return out


@dataclass
class Book:
    """The account as the stretch starts; only funding moves it until something acts."""

    held: list[Held]
    spot: SpotHoldings
    wallet: float  # futures USDT wallet
    mm_rate: float  # a maintenance ratio bound for notionals up to MM_NOTIONAL_X times the current one
    notional0: float
