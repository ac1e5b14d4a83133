"""Transfers between the spot and USD-M wallets (Binance's universal transfer)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import to_decimal
from bot.sim import errors as E
from bot.sim.accounts import AccountDesk
from bot.sim.futures import q8
from bot.sim.records import IncomeRecord, SimEvent, TransferRecord
from bot.sim.state import PX_Q, ZERO

TRANSFER_KINDS = ("MAIN_UMFUTURE", "UMFUTURE_MAIN")


class TransferDesk(AccountDesk):
    def max_transferable(self, asset: str, kind: str) -> Decimal:
        self._catch_up()
        if kind == "MAIN_UMFUTURE":
            return self.spot.free(asset)
        if kind == "UMFUTURE_MAIN":
            if asset == "USDT":
                return q8(self._figures()["max_withdraw"])
            return self.futures.other_assets.get(asset, ZERO)
        raise E.bad_parameter("type")

    def transfer(self, asset: str, amount: Decimal | str, kind: str) -> int:
        """Move free funds between the spot and USD-M wallets; returns the tranId."""
        self._catch_up()
        amt = to_decimal(amount)
        if kind not in TRANSFER_KINDS:
            raise E.bad_parameter("type")
        if amt <= 0 or amt < self.config.min_transfer:
            raise E.bad_parameter("amount")
        if amt != amt.quantize(PX_Q):
            raise E.precision_over_max()
        if kind == "MAIN_UMFUTURE":
            self.spot.debit(asset, amt, error=E.transfer_insufficient)
            if asset == "USDT":
                self.futures.wallet += amt
            else:
                self.futures.other_assets[asset] = self.futures.other_assets.get(asset, ZERO) + amt
        else:
            if amt > self.max_transferable(asset, kind):
                raise E.transfer_insufficient()
            if asset == "USDT":
                self.futures.wallet -= amt
            else:
                self.futures.other_assets[asset] -= amt
            self.spot.credit(asset, amt)
        tran = next(self._ids)
        rec = TransferRecord(tran, asset, amt, kind, self._now)
        self._transfers.append(rec)
        self._add_income(
            IncomeRecord("", "TRANSFER", amt if kind == "MAIN_UMFUTURE" else -amt, asset, self._now, tran)
        )
        events = [
            SimEvent("transfer", self._now, None, None, {"record": rec}),
            self._balance_event("TRANSFER", [asset]),
            self._account_event("DEPOSIT" if kind == "MAIN_UMFUTURE" else "WITHDRAW"),
        ]
        self._publish(events)
        return tran

    def transfer_history(self) -> list[TransferRecord]:
        return list(self._transfers)
