"""Futures collateral: the ratio, its band, and the transfers that keep it there."""

from bot.treasury.maths import collateral_ratio
from bot.treasury.service import Collateral, RebalanceOutcome, TransferFailed, Treasury

__all__ = ["Collateral", "RebalanceOutcome", "TransferFailed", "Treasury", "collateral_ratio"]
