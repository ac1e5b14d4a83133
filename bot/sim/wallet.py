"""Spot wallet: free and locked balance per asset, never negative."""

from __future__ import annotations

from decimal import Decimal

from bot.sim.errors import spot_insufficient_balance

ZERO = Decimal(0)


class SpotWallet:
    def __init__(self, balances: dict[str, Decimal] | None = None) -> None:
        self._free: dict[str, Decimal] = {}
        self._locked: dict[str, Decimal] = {}
        for asset, amount in (balances or {}).items():
            self.credit(asset, Decimal(amount))

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, ZERO)

    def locked(self, asset: str) -> Decimal:
        return self._locked.get(asset, ZERO)

    def assets(self) -> list[str]:
        return sorted(set(self._free) | set(self._locked))

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (self.free(a), self.locked(a)) for a in self.assets()}

    def credit(self, asset: str, amount: Decimal) -> None:
        if amount < 0:
            raise ValueError(f"credit of a negative amount {amount} {asset}")
        self._free[asset] = self.free(asset) + amount

    def debit(self, asset: str, amount: Decimal, error=spot_insufficient_balance) -> None:
        """Take ``amount`` from free funds; raises ``error()`` (a SimError) when short."""
        if amount < 0:
            raise ValueError(f"debit of a negative amount {amount} {asset}")
        if self.free(asset) < amount:
            raise error()
        self._free[asset] = self.free(asset) - amount

    def lock(self, asset: str, amount: Decimal) -> None:
        self.debit(asset, amount)
        self._locked[asset] = self.locked(asset) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        if amount > self.locked(asset):
            raise ValueError(f"unlock {amount} {asset} > locked {self.locked(asset)}")
        self._locked[asset] = self.locked(asset) - amount
        self._free[asset] = self.free(asset) + amount
