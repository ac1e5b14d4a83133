from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sim.clock import ManualClock
from bot.sim.errors import SimError
from bot.sim.exchange import SimExchange
from bot.sim.source import RandomWalk

START = 1_767_225_600_000
WALK = RandomWalk(seed=11, symbols=("BTCUSDT", "ETHUSDT"), start_ms=START, hours=48)

amounts = st.decimals(min_value=D("0.000001"), max_value=D("5000"), places=6)
ops = st.lists(st.tuples(st.sampled_from(["in", "out", "buy", "sell", "short", "cover"]), amounts), max_size=25)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_balances_never_negative_and_transfers_conserve_totals(seq):
    ex = SimExchange(WALK, ManualClock(START + 1), balances={"USDT": D(3_000)}, futures_balances={"USDT": D(1_000)})
    for i, (op, amt) in enumerate(seq):
        before = ex.spot.free("USDT") + ex.spot.locked("USDT") + ex.futures.wallet
        try:
            if op == "in":
                ex.transfer("USDT", amt, "MAIN_UMFUTURE")
            elif op == "out":
                ex.transfer("USDT", amt, "UMFUTURE_MAIN")
            else:
                qty = (amt / 100_000).quantize(D("0.001"))
                side = "BUY" if op in ("buy", "cover") else "SELL"
                ex.create_order(
                    "spot" if op in ("buy", "sell") else "perp",
                    "ETHUSDT",
                    side,
                    "MARKET",
                    quantity=qty if op in ("short", "cover") else qty / 10,
                )
        except SimError:
            pass
        if op in ("in", "out"):
            assert ex.spot.free("USDT") + ex.spot.locked("USDT") + ex.futures.wallet == before
        for asset, (free, locked) in ex.spot.balances().items():
            assert free >= 0 and locked >= 0, asset
        assert ex.futures.wallet >= 0
        assert ex.max_transferable("USDT", "UMFUTURE_MAIN") >= 0
        ex.step(START + 1 + (i + 1) * 600_000)
