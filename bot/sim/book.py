"""Order book derived from a mid price: spread, N levels, depth per level; fills consume depth until
the next price update, so a large order walks the book and moves the price for the next one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

D = Decimal
_BPS = D("0.0001")


_SPREAD_BPS = D(2)
_GAP_BPS = D(1)
_LEVEL_NOTIONAL = D(50_000)


@dataclass(frozen=True, slots=True)
class BookConfig:
    """Synthetic book shape: full spread, gap between levels (both in bps of mid), levels per side and
    quote notional per level."""

    spread_bps: Decimal = _SPREAD_BPS
    level_gap_bps: Decimal = _GAP_BPS
    levels: int = 20
    level_notional: Decimal = _LEVEL_NOTIONAL


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    qty: Decimal


def full_side(mid: Decimal, side: str, tick: Decimal, step: Decimal, cfg: BookConfig) -> tuple[Level, ...]:
    """One side before any consumption: a pure function of its arguments, so callers may cache it.

    The per-level arithmetic is the plain formula (offset = half + mid * gap * bps * i, prices rounded
    to the tick away from mid, qty = level notional / price floored to the step) with the loop-invariant
    products hoisted, in the same operation order, so every Decimal result is the same."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    half = mid * cfg.spread_bps * _BPS / 2
    gap = mid * cfg.level_gap_bps * _BPS
    notional = cfg.level_notional
    bids = side == "bids"
    rounding = ROUND_FLOOR if bids else ROUND_CEILING
    out: list[Level] = []
    last: Decimal | None = None
    for i in range(cfg.levels):
        offset = half + gap * i
        px = ((mid - offset if bids else mid + offset) / tick).to_integral_value(rounding=rounding) * tick
        if last is not None and (px >= last if bids else px <= last):
            px = last - tick if bids else last + tick
        if px <= 0:
            break
        last = px
        qty = (notional / px / step).to_integral_value(rounding=ROUND_DOWN) * step
        if qty <= 0:
            qty = step
        out.append(Level(px, qty))
    return tuple(out)


def trim(levels: tuple[Level, ...] | list[Level], consumed: Decimal) -> list[Level]:
    """``levels`` with ``consumed`` base quantity taken off the top."""
    if not consumed:
        return list(levels)
    remaining = consumed
    trimmed: list[Level] = []
    for lvl in levels:
        if remaining >= lvl.qty:
            remaining -= lvl.qty
            continue
        trimmed.append(Level(lvl.price, lvl.qty - remaining))
        remaining = D(0)
    return trimmed
