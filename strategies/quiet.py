"""Quiet-hours bounds: what a strategy may publish so a backtest skips the scans it would answer with holds
and skips only.

A bound is optional (``strategies.base.PublishesQuietHours``): a strategy without one is evaluated at every
scan, which is correct, only slower. A strategy that has one returns a ``QuietBound`` from
``quiet_hours(view)``; the backtest (``bot.backtest.fastforward``) asks it, for a settled book, which scan
hours are certainly passive, and (``bot.backtest.runner``) at which hours a flat book could enter at all.

The bound reads the replayed market as float arrays on the backtest grid (``QuietView``), not the Decimal
snapshot, so it is a float image of the strategy's rules: it must call the same rule functions the
strategy decides with (``strategies.economics``, ``strategies.sizing``, ``strategies.forecast``) on floats,
with margins far above the float error and the simulator's price quantum, so an hour is only called quiet
when the Decimal code would certainly decide the same. Anything uncertain is left to the strategy.

This module holds the view and the float pieces every bound shares (the asks a held pair is charged at,
the visible depth, the resize check of a pair sized on its own caps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from strategies.params import CarryParams
from strategies.sizing import resize_band

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

APR_MARGIN = 1e-4  # forecast: measured float-vs-Decimal error is below 3e-6 APR (tests/backtest/test_paths.py)
REL_MARGIN = 1e-5  # quantities (float error ~1e-15; the sim's 1e-8 price quantum is added where it counts)
PRICE_QUANTUM = 1e-8  # the simulator rounds every replayed price to this


@dataclass(frozen=True)
class BookShape:
    """The replayed top of book of one symbol: ticks and the half spread (fraction of mid)."""

    spot_tick: float
    perp_tick: float
    half_spread: float


@dataclass(frozen=True)
class MarketHours:
    """One symbol on the grid, as the snapshot will see it (NaN where the replay has no price)."""

    symbol: str  # unified, e.g. "BTC/USDT" (what the strategy keys its rules by)
    spot: Floats  # forward-filled (the simulator's last known price in a gap)
    perp: Floats  # as replayed (NaN in a gap)
    settle_ts: Ints  # every settlement the source holds
    settle_rate: Floats
    settle_interval: Floats  # hours since the previous settlement
    predicted: Floats  # the predicted rate of the next settlement at each grid hour (NaN: none)
    blocked: Bools  # not offered for entry at this hour (no data, or a gap ahead)
    shape: BookShape | None  # None: no book on one of the legs


@dataclass(frozen=True)
class QuietView:
    """The replayed market of one run, in floats, and what the snapshot builder reads of it."""

    grid: Ints  # the scan hours' times (UTC ms)
    markets: Mapping[str, MarketHours]  # by Binance id
    fees: tuple[float, float]  # spot and perp fee rate for ``CarryParams.fee_kind``
    history_settlements: int  # how many settlements the snapshot's history holds
    book_depth: int  # levels the snapshot reads of each book


@dataclass(frozen=True)
class HeldPair:
    """A live pair, settled for the stretch (floats): its size and the shape of its two books."""

    binance_id: str
    qty: float  # hedged quantity (both legs)
    step: float  # the pair's common step
    ticks: tuple[float, float]  # spot, perp
    steps: tuple[float, float]
    half_spread: float  # the replayed book's shape (fractions of mid)
    level_gap: float
    levels: int
    level_notional: float


def ask_bounds(view: QuietView, h: HeldPair, i0: int, i1: int) -> tuple[Floats, Floats]:
    """Bounds of the spot ask the strategy charges ``h``'s capital at (``SymbolAnalysis.capital_price``)."""
    spot = view.markets[h.binance_id].spot[i0:i1]
    return (
        (spot - PRICE_QUANTUM) * (1 + h.half_spread) * (1 - REL_MARGIN),
        (spot + PRICE_QUANTUM) * (1 + h.half_spread) * (1 + REL_MARGIN) + h.ticks[0],
    )


def depth_low(view: QuietView, h: HeldPair, i0: int, i1: int) -> Floats:
    """A lower bound of the thinnest book side of both legs (base quantity over the levels read)."""
    m = view.markets[h.binance_id]
    out: Floats | None = None
    legs = ((m.spot[i0:i1], h.ticks[0], h.steps[0]), (m.perp[i0:i1], h.ticks[1], h.steps[1]))
    levels = min(h.levels, view.book_depth)
    for mid, tick, step in legs:
        # every level holds at least what the deepest (dearest) ask level holds
        px = mid * (1 + h.half_spread + h.level_gap * (levels - 1)) * (1 + REL_MARGIN) + (levels + 1) * tick
        total = levels * np.maximum(h.level_notional / px - step, 0.0)
        out = total if out is None else np.minimum(out, total)
    assert out is not None
    return out


def keeps_size(
    view: QuietView,
    params: CarryParams,
    h: HeldPair,
    i0: int,
    i1: int,
    capital: Floats,
    taken_before: tuple[Floats, Floats],
    weight: float | None = None,
) -> Bools:
    """``strategies.baselines._hold_or_size`` keeps ``h``: its target min(per-symbol cap, liquidity cap,
    ``weight`` of capital when given, budget left after the pairs sized before it) stays inside the resize
    band (``strategies.sizing.resize_band``). ``taken_before``: their capital (lo, hi)."""
    cpn = float(params.capital_per_notional)
    f = float(params.max_per_symbol_fraction) if weight is None else min(float(params.max_per_symbol_fraction), weight)
    cap = np.maximum(capital, 0.0)
    lo_a, hi_a = ask_bounds(view, h, i0, i1)
    total = cap * float(params.max_total_fraction)
    m = view.markets[h.binance_id]
    liq = float(params.liquidity_fraction) * depth_low(view, h, i0, i1)
    desired_lo = (
        np.minimum(np.minimum(cap * f / (hi_a * cpn), liq), np.maximum(total - taken_before[1], 0.0) / (hi_a * cpn))
        * (1 - REL_MARGIN)
        - h.step
    )
    desired_hi = np.minimum(cap * f / (lo_a * cpn), np.maximum(total - taken_before[0], 0.0) / (lo_a * cpn))
    desired_hi = desired_hi * (1 + REL_MARGIN)
    q = h.qty
    low, high = resize_band(q, float(params.resize_tolerance_fraction))
    have_data = ~np.isnan(m.perp[i0:i1]) & ~np.isnan(m.spot[i0:i1])
    keep = (desired_lo - q * REL_MARGIN >= low) & (desired_hi + q * REL_MARGIN <= high)
    out: Bools = have_data & keep
    return out
