"""Transfers between the spot and USD-M wallets (Binance's universal transfer)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import to_decimal
from bot.sim import errors as E
from bot.sim.accounts import AccountDesk
from bot.sim.futures import q8
from bot.sim.records import IncomeRecord, SimEvent, TransferRecord
from bot.sim.state import PX_Q, ZERO

TRANSFER_KINDS = ("MAIN_UMFUTURE", "UMFUTURE_MAIN", "MAIN_CMFUTURE", "CMFUTURE_MAIN")
# Binance universal-transfer types the simulator does not model (its wallets are spot, USD-M, coin-M)
OTHER_BINANCE_KINDS = (
    "MAIN_MARGIN",
    "MARGIN_MAIN",
    "MAIN_FUNDING",
    "FUNDING_MAIN",
    "UMFUTURE_MARGIN",
    "MARGIN_UMFUTURE",
    "CMFUTURE_MARGIN",
    "MARGIN_CMFUTURE",
    "UMFUTURE_FUNDING",
    "FUNDING_UMFUTURE",
    "CMFUTURE_FUNDING",
    "FUNDING_CMFUTURE",
    "MARGIN_FUNDING",
    "FUNDING_MARGIN",
    "MAIN_OPTION",
    "OPTION_MAIN",
    "UMFUTURE_OPTION",
    "OPTION_UMFUTURE",
    "MAIN_PORTFOLIO_MARGIN",
    "PORTFOLIO_MARGIN_MAIN",
    "MAIN_ISOLATED_MARGIN",
    "ISOLATED_MARGIN_MAIN",
    "ISOLATEDMARGIN_MARGIN",
    "MARGIN_ISOLATEDMARGIN",
    "ISOLATEDMARGIN_ISOLATEDMARGIN",
)
USD_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD")


class TransferDesk(AccountDesk):
    """Spot <-> USD-M and spot <-> coin-M. The coin-M wallet is separate: what sits there cannot margin a
    USD-M position (no coin-M trading is modelled, only its wallet)."""

    def max_transferable(self, asset: str, kind: str) -> Decimal:
        self._catch_up()
        if kind in ("MAIN_UMFUTURE", "MAIN_CMFUTURE"):
            return self.spot.free(asset)
        if kind == "UMFUTURE_MAIN":
            if asset == "USDT":
                return q8(self._figures()["max_withdraw"])
            return self.futures.other_assets.get(asset, ZERO)
        if kind == "CMFUTURE_MAIN":
            return self.coinm.get(asset, ZERO)
        raise _unsupported(kind)

    def min_transfer(self, asset: str) -> Decimal:
        """Smallest amount the venue moves: about 1 USDT for dollar assets (no Binance source states one;
        the project's domain notes), any positive amount of 8 decimals otherwise."""
        return self.config.min_transfer if asset in USD_ASSETS else PX_Q

    def coinm_balances(self) -> dict[str, Decimal]:
        self._catch_up()
        return {a: v for a, v in sorted(self.coinm.items())}

    def transfer(self, asset: str, amount: Decimal | str, kind: str) -> int:
        """Move free funds between the spot wallet and the USD-M or coin-M wallet; returns the tranId."""
        self._catch_up()
        amt = to_decimal(amount)
        if kind not in TRANSFER_KINDS:
            raise _unsupported(kind)
        if amt <= 0:
            raise E.SimError(-5007, "Quantity must be greater than zero.")
        if amt != amt.quantize(PX_Q):
            raise E.precision_over_max()
        if amt < self.min_transfer(asset):
            raise E.SimError(
                -1130,
                f"Data sent for parameter 'amount' is not valid: the smallest transfer of {asset} is "
                f"{self.min_transfer(asset)}.",
            )
        if kind in ("MAIN_UMFUTURE", "MAIN_CMFUTURE"):
            self.spot.debit(asset, amt, error=E.transfer_insufficient)
            if kind == "MAIN_CMFUTURE":
                self.coinm[asset] = self.coinm.get(asset, ZERO) + amt
            elif asset == "USDT":
                self.futures.wallet += amt
            else:
                self.futures.other_assets[asset] = self.futures.other_assets.get(asset, ZERO) + amt
        else:
            if amt > self.max_transferable(asset, kind):
                raise E.transfer_insufficient()
            if kind == "CMFUTURE_MAIN":
                self.coinm[asset] -= amt
            elif asset == "USDT":
                self.futures.wallet -= amt
            else:
                self.futures.other_assets[asset] -= amt
            self.spot.credit(asset, amt)
        tran = next(self._ids)
        rec = TransferRecord(tran, asset, amt, kind, self._now)
        self._transfers.append(rec)
        events = [
            SimEvent("transfer", self._now, None, None, {"record": rec}),
            self._balance_event("TRANSFER", [asset]),
        ]
        if kind in ("MAIN_UMFUTURE", "UMFUTURE_MAIN"):
            self._add_income(
                IncomeRecord("", "TRANSFER", amt if kind == "MAIN_UMFUTURE" else -amt, asset, self._now, tran)
            )
            events.append(self._account_event("DEPOSIT" if kind == "MAIN_UMFUTURE" else "WITHDRAW"))
        self._publish(events)
        return tran

    def transfer_history(self) -> list[TransferRecord]:
        return list(self._transfers)


def _unsupported(kind: str) -> E.SimError:
    known = "a Binance type the simulator does not model" if kind in OTHER_BINANCE_KINDS else "not a Binance type"
    return E.SimError(
        -1130,
        f"Data sent for parameter 'type' is not valid: {kind} is {known}; transfers here are "
        + ", ".join(TRANSFER_KINDS)
        + ".",
    )
