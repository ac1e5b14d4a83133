"""How many symbol-hours per second HistoryReplay + SimExchange.step advance over the bundled data.

Run: .venv/bin/python benchmarks/sim_replay.py [hours] [step_minutes]
Prints figures only (no assertions).
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

from bot.domain import HOUR_MS
from bot.sim.bundle import BUNDLE_START_MS, BUNDLE_SYMBOLS
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimExchange
from bot.sim.history import bundled_data_dir
from bot.sim.source import HistoryReplay


def main() -> None:
    hours = int(sys.argv[1]) if len(sys.argv) > 1 else 24 * 60
    step_ms = int(float(sys.argv[2]) * 60_000) if len(sys.argv) > 2 else HOUR_MS
    t_load = time.perf_counter()
    src = HistoryReplay(bundled_data_dir(), list(BUNDLE_SYMBOLS))
    load_s = time.perf_counter() - t_load
    start = BUNDLE_START_MS + HOUR_MS
    ex = SimExchange(src, ManualClock(start), futures_balances={"USDT": Decimal(1_000_000)})
    for sym in BUNDLE_SYMBOLS:  # hold a short on every symbol so funding and margin work is real
        px = ex.price("perp", sym)
        spec = next(s for s in ex.markets("perp") if s.symbol == sym)
        qty = max(spec.min_qty, (Decimal(20_000) / px // spec.step_size) * spec.step_size)
        ex.create_order("perp", sym, "SELL", "MARKET", quantity=qty)
    t0 = time.perf_counter()
    t = start
    steps = 0
    while t < start + hours * HOUR_MS:
        t += step_ms
        ex.step(t)
        steps += 1
    dt = time.perf_counter() - t0
    sym_hours = hours * len(BUNDLE_SYMBOLS)
    print(f"load {load_s:.2f} s for {len(BUNDLE_SYMBOLS)} symbols")
    print(f"{steps} steps of {step_ms / 60_000:g} min over {hours} h x {len(BUNDLE_SYMBOLS)} symbols in {dt:.2f} s")
    print(f"{sym_hours / dt:,.0f} symbol-hours/s, {steps / dt:,.0f} steps/s")
    print(f"funding payments: {len(ex.income(income_type='FUNDING_FEE', limit=None))}")


if __name__ == "__main__":
    main()
