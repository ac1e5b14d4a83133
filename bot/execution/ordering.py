"""The order in which one evaluation's targets are executed, shared by the daemon and the backtest.

Capital freed by exits and reductions funds the entries of the same evaluation, and when two entries
compete for the last of the budget the better-scored one goes first; the daemon and the backtest must
agree on this or the same decisions produce different fills.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from bot.domain import ZERO
from strategies.base import Action, Target

TRADING_ACTIONS = frozenset({Action.EXIT, Action.REBALANCE, Action.RESIZE, Action.ENTER})


def _rank(t: Target, held: Decimal) -> int:
    if t.action is Action.EXIT:
        return 0
    if t.target_qty < held:
        return 1  # reductions free capital
    if t.action is Action.REBALANCE:
        return 2
    if t.action is Action.RESIZE:
        return 3
    return 4


def order_targets(targets: Iterable[Target], held: Mapping[str, Decimal]) -> list[Target]:
    """Trading targets only, exits and reductions first, then increases by descending score."""
    todo = [t for t in targets if t.action in TRADING_ACTIONS]

    def key(t: Target) -> tuple[int, Decimal, str]:
        score = t.reason.economics.score if t.reason.economics is not None else ZERO
        return _rank(t, held.get(t.symbol, ZERO)), -score, t.symbol

    return sorted(todo, key=key)
