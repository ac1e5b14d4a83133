"""COIN-M (``/dapi``) wallet endpoints: the coin-M futures wallet exists (transfers reach it and what sits
there is not USD-M margin), no coin-M contract trades."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.emulator import formats
from bot.emulator.auth import ParsedRequest, Security
from bot.emulator.routing import Route

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

_ZERO = "0.00000000"


def _q8(value: Any) -> str:
    return formats.fmt(value.quantize(formats.Q8))


def balance(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    """GET /dapi/v1/balance, one row per asset held in the coin-M wallet."""
    now = emu.now_ms()
    return [
        {
            "accountAlias": "FzSgsR",
            "asset": asset,
            "balance": _q8(amount),
            "withdrawAvailable": _q8(amount),
            "crossWalletBalance": _q8(amount),
            "crossUnPnl": _ZERO,
            "availableBalance": _q8(amount),
            "updateTime": now,
        }
        for asset, amount in emu.sim.coinm_balances().items()
    ]


def account(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /dapi/v1/account: the wallet's assets; no positions (no coin-M contract is listed)."""
    now = emu.now_ms()
    assets = [
        {
            "asset": asset,
            "walletBalance": _q8(amount),
            "unrealizedProfit": _ZERO,
            "marginBalance": _q8(amount),
            "maintMargin": _ZERO,
            "initialMargin": _ZERO,
            "positionInitialMargin": _ZERO,
            "openOrderInitialMargin": _ZERO,
            "maxWithdrawAmount": _q8(amount),
            "crossWalletBalance": _q8(amount),
            "crossUnPnl": _ZERO,
            "availableBalance": _q8(amount),
            "updateTime": now,
        }
        for asset, amount in emu.sim.coinm_balances().items()
    ]
    return {
        "assets": assets,
        "positions": [],
        "canDeposit": True,
        "canTrade": True,
        "canWithdraw": True,
        "feeTier": 0,
        "updateTime": 0,
    }


ROUTES = [
    Route("GET", "/dapi/v1/balance", balance, Security.SIGNED),
    Route("GET", "/dapi/v1/account", account, Security.SIGNED),
]
