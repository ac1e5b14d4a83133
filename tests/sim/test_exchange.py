from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot.domain import HOUR_MS
from bot.sim.clock import ManualClock
from bot.sim.errors import SimError
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.history import bundled_data_dir, shared_data_dir
from bot.sim.source import HistoryReplay, RandomWalk

START = 1_767_225_600_000  # same as conftest


def code(fn, *a, **k) -> int:
    with pytest.raises(SimError) as ei:
        fn(*a, **k)
    return ei.value.code


def test_filters_reject_like_binance(ex: SimExchange):
    assert code(ex.create_order, "spot", "BTCUSDT", "BUY", "MARKET", quantity=D("0.00001")) == -1013
    with pytest.raises(SimError, match="Filter failure: NOTIONAL"):
        ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("0.00001"))
    with pytest.raises(SimError, match="Filter failure: LOT_SIZE"):
        ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("0.000015"))
    assert code(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0")) == -4003
    assert code(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.0015")) == -1111
    assert code(ex.create_order, "perp", "SOLUSDT", "SELL", "LIMIT", quantity=D("1"), price=D("150.0005")) == -4014
    small = RandomWalk(seed=1, symbols=("DOGEUSDT",), start_ms=START, hours=10)
    ex2 = SimExchange(small, ManualClock(START), futures_balances={"USDT": D(100)})
    assert code(ex2.create_order, "perp", "DOGEUSDT", "SELL", "MARKET", quantity=D("1")) == -4164
    assert code(ex.create_order, "spot", "NOPEUSDT", "BUY", "MARKET", quantity=D("1")) == -1121
    assert code(ex.create_order, "spot", "BTCUSDT", "BUY", "MARKET", quantity=D("5")) == -2010


def test_market_order_walks_the_book_and_slippage_grows(ex: SimExchange):
    mid = ex.price("spot", "BTCUSDT")
    small = ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("0.01"))
    big = ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("1.2"))
    assert small.status == big.status == "FILLED"
    assert len(big.trade_ids) > 1
    assert mid < small.avg_price < big.avg_price
    # the consumed depth moved the book until the next price update
    assert ex.order_book("spot", "BTCUSDT", 1).asks[0][0] > small.avg_price


def test_market_order_partial_when_the_book_runs_out():
    w = RandomWalk(seed=2, symbols=("BTCUSDT",), start_ms=START, hours=10)
    from bot.sim.book import BookConfig

    ex = SimExchange(
        w,
        ManualClock(START),
        SimConfig(book=BookConfig(levels=2, level_notional=D(10_000))),
        balances={"USDT": D(1_000_000)},
    )
    o = ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("1"))
    assert o.status == "EXPIRED" and D(0) < o.executed_qty < D(1)


def test_limit_gtc_rests_and_fills_when_the_price_crosses(ex: SimExchange, clock: ManualClock):
    mid = ex.price("spot", "BTCUSDT")
    px = (mid * D("0.97")).quantize(D("0.01"))
    o = ex.create_order("spot", "BTCUSDT", "BUY", "LIMIT", quantity=D("0.1"), price=px)
    assert o.status == "NEW"
    assert ex.spot_account().balances["USDT"][1] == D("0.1") * px
    t = clock.now_ms()
    while ex.get_order("spot", "BTCUSDT", o.order_id).status == "NEW" and t < START + 119 * HOUR_MS:
        t += HOUR_MS
        ex.step(t)
    got = ex.get_order("spot", "BTCUSDT", o.order_id)
    assert got.status == "FILLED" and got.avg_price == px
    trade = ex.my_trades("spot", "BTCUSDT")[-1]
    assert trade.maker and trade.commission == D("0.0001") and trade.commission_asset == "BTC"
    assert ex.spot_account().balances["USDT"][1] == 0


def test_ioc_partial_and_cancel_codes(ex: SimExchange):
    ex.force_partial_fill(D("0.5"))
    ask = ex.order_book("perp", "ETHUSDT", 1).asks[0][0]
    o = ex.create_order("perp", "ETHUSDT", "BUY", "LIMIT", quantity=D("1"), price=ask + 5, time_in_force="IOC")
    assert o.status == "EXPIRED" and o.executed_qty == D("0.5")
    assert code(ex.cancel_order, "perp", "ETHUSDT", o.order_id) == -2011
    assert code(ex.get_order, "perp", "ETHUSDT", 999_999) == -2013


def test_post_only_rejected_when_it_would_take(ex: SimExchange):
    ask = ex.order_book("spot", "ETHUSDT", 1).asks[0][0]
    with pytest.raises(SimError, match=r"Order would immediately match and take\.") as ei:
        ex.create_order("spot", "ETHUSDT", "BUY", "LIMIT_MAKER", quantity=D("0.01"), price=ask)
    assert ei.value.code == -2010
    pask = ex.order_book("perp", "ETHUSDT", 1).asks[0][0]
    assert (
        code(ex.create_order, "perp", "ETHUSDT", "BUY", "LIMIT", quantity=D("0.01"), price=pask, time_in_force="GTX")
        == -5022
    )
    bid = ex.order_book("perp", "ETHUSDT", 1).bids[0][0]
    ok = ex.create_order("perp", "ETHUSDT", "BUY", "LIMIT", quantity=D("0.01"), price=bid, time_in_force="GTX")
    assert ok.status == "NEW"


def test_reduce_only_rejected_when_it_would_increase(ex: SimExchange):
    assert code(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"), reduce_only=True) == -2022
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))
    assert code(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"), reduce_only=True) == -2022
    o = ex.create_order("perp", "BTCUSDT", "BUY", "MARKET", quantity=D("0.05"), reduce_only=True)
    assert o.executed_qty == D("0.01")  # trimmed to the position
    assert ex.position_risk("BTCUSDT")[0].position_amt == 0


def test_fees_maker_taker_and_spot_base_fee(ex: SimExchange):
    o = ex.create_order("spot", "ETHUSDT", "BUY", "MARKET", quantity=D("1"))
    t = ex.my_trades("spot", "ETHUSDT")[-1]
    assert t.commission == D("0.001") and t.commission_asset == "ETH" and not t.maker
    assert ex.spot_account().balances["ETH"][0] == D("0.999")
    assert ex.spot_account().balances["USDT"][0] == D(100_000) - o.cum_quote
    p = ex.create_order("perp", "ETHUSDT", "SELL", "MARKET", quantity=D("1"))
    fee = ex.my_trades("perp", "ETHUSDT")[-1].commission
    assert fee == (p.cum_quote * D("0.0005")).quantize(D("0.00000001"))
    assert ex.futures_account().total_wallet_balance == D(10_000) - fee
    quote_cfg = SimExchange(
        RandomWalk(seed=7, start_ms=START, hours=10), ManualClock(START), SimConfig(spot_fee_in_quote=True)
    )
    q = quote_cfg.create_order("spot", "ETHUSDT", "BUY", "MARKET", quantity=D("1"))
    assert quote_cfg.spot_account().balances["ETH"][0] == D(1)
    assert quote_cfg.spot_account().balances["USDT"][0] == D(100_000) - q.cum_quote * D("1.001")


def test_quote_order_qty_market_buy(ex: SimExchange):
    o = ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quote_order_qty=D("1000"))
    assert o.status == "FILLED" and D("990") < o.cum_quote <= D("1000")


def test_transfers_each_way_minimum_and_locked_funds(ex: SimExchange):
    tid = ex.transfer("USDT", D("1000"), "MAIN_UMFUTURE")
    assert ex.futures_account().total_wallet_balance == D(11_000)
    assert ex.spot_account().balances["USDT"][0] == D(99_000)
    ex.transfer("USDT", D("500"), "UMFUTURE_MAIN")
    assert next(r.tran_id for r in ex.transfer_history()) == tid
    assert code(ex.transfer, "USDT", D("1.000000001"), "MAIN_UMFUTURE") == -1111  # finer than 8 decimals
    assert code(ex.transfer, "USDT", D("0.99"), "MAIN_UMFUTURE") == -1130  # below the 1 USDT minimum
    assert code(ex.transfer, "USDT", D("0"), "MAIN_UMFUTURE") == -5007
    ex.transfer("USDT", D(1), "MAIN_UMFUTURE")
    ex.create_order(
        "spot",
        "BTCUSDT",
        "BUY",
        "LIMIT",
        quantity=D("1"),
        price=(ex.price("spot", "BTCUSDT") * D("0.9")).quantize(D("0.01")),
    )
    free = ex.spot_account().balances["USDT"][0]
    with pytest.raises(SimError, match="Asset transfer failed: insufficient balance"):
        ex.transfer("USDT", free + 1, "MAIN_UMFUTURE")
    assert ex.max_transferable("USDT", "MAIN_UMFUTURE") == free


def test_cross_max_withdrawable_shrinks_with_unrealised_loss(ex: SimExchange):
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("1"))
    before = ex.max_transferable("USDT", "UMFUTURE_MAIN")
    ex.apply_price_shock("BTCUSDT", 0.05, HOUR_MS)
    ex.step(ex.now_ms() + HOUR_MS)
    after = ex.max_transferable("USDT", "UMFUTURE_MAIN")
    assert after < before
    assert code(ex.transfer, "USDT", after + 1, "UMFUTURE_MAIN") == -5013
    ex.transfer("USDT", after, "UMFUTURE_MAIN")


def test_short_loses_margin_until_liquidated_with_fee(ex: SimExchange):
    ex.set_leverage("BTCUSDT", 10)
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("1"))
    r0 = ex.futures_account().margin_ratio
    ex.apply_price_shock("BTCUSDT", 0.35, 10 * HOUR_MS)  # +3.5 % per hour
    ex.step(ex.now_ms() + 60_000)
    acct = ex.futures_account()
    assert acct.margin_ratio > r0 and acct.total_unrealized_profit < 0
    liq_price = ex.position_risk("BTCUSDT")[0].liquidation_price
    events = []
    for _ in range(600):
        events += ex.step(ex.now_ms() + 60_000)
    liq = [e for e in events if e.kind == "liquidation"]
    assert len(liq) == 1
    assert liq[0].data["price"] >= liq_price * D("0.99")
    assert ex.position_risk("BTCUSDT")[0].position_amt == 0
    kinds = {r.income_type for r in ex.income()}
    assert {"REALIZED_PNL", "INSURANCE_CLEAR"} <= kinds
    assert ex.futures_account().total_wallet_balance >= 0


def test_margin_insufficient_and_leverage_codes(ex: SimExchange):
    assert code(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("10")) == -2019
    assert code(ex.set_leverage, "BTCUSDT", 200) == -4028
    ex.set_margin_type("BTCUSDT", "ISOLATED")
    assert code(ex.set_margin_type, "BTCUSDT", "ISOLATED") == -4046
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))
    assert code(ex.set_margin_type, "BTCUSDT", "CROSSED") == -4048
    assert ex.position_risk("BTCUSDT")[0].isolated_wallet > 0


def _run_funding(ex: SimExchange, hours: int) -> list:
    events = []
    t = ex.now_ms()
    for _ in range(hours * 2):
        t += HOUR_MS // 2
        events += ex.step(t)
    return [e for e in events if e.kind == "funding"]


def test_funding_paid_at_each_symbols_own_instants_with_the_right_sign(ex: SimExchange, walk: RandomWalk):
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))
    ex.create_order("perp", "ETHUSDT", "BUY", "MARKET", quantity=D("0.1"))
    ex.create_order("perp", "SOLUSDT", "SELL", "MARKET", quantity=D("3"))
    start = ex.now_ms()
    got = _run_funding(ex, 24)
    for sym, hours in (("BTCUSDT", 8), ("ETHUSDT", 4), ("SOLUSDT", 1)):
        paid = [e for e in got if e.symbol == sym]
        expected = walk.settlements_between(sym, start, start + 24 * HOUR_MS)
        assert [e.time_ms for e in paid] == [s.ts_ms for s in expected]
        assert len(paid) == 24 // hours
        for e in paid:
            amt = e.data["position_amt"]
            assert e.data["payment"] == (-amt * e.data["mark_price"] * e.data["rate"]).quantize(D("1E-8"))
            if e.data["rate"] > 0:
                assert (e.data["payment"] > 0) == (amt < 0)  # shorts receive positive funding
    assert len(ex.income(income_type="FUNDING_FEE", limit=None)) == len(got)


def test_one_step_jumping_many_settlements_settles_each_in_order(ex: SimExchange):
    ex.create_order("perp", "SOLUSDT", "SELL", "MARKET", quantity=D("3"))
    events = ex.step(ex.now_ms() + 10 * HOUR_MS)
    times = [e.time_ms for e in events if e.kind == "funding"]
    assert len(times) == 10 and times == sorted(times)


def test_override_funding_rate_is_settled_and_predicted(ex: SimExchange):
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))
    ex.override_funding_rate("BTCUSDT", "0.003")
    assert ex.premium_index("BTCUSDT").last_funding_rate == D("0.003")
    got = _run_funding(ex, 8)
    assert got[0].data["rate"] == D("0.003")
    assert ex.funding_history("BTCUSDT")[-1].funding_rate == D("0.003")


def test_funding_across_a_real_interval_change():
    src_dir = shared_data_dir()
    if not src_dir.exists():
        pytest.skip("shared/data not present")
    start, end = 1_667_952_000_000, 1_668_124_800_000  # SOLUSDT 2022-11-09 .. 11-11: 8 h -> 4 h -> 2 h
    src = HistoryReplay(src_dir, ["SOLUSDT"], start - 2 * HOUR_MS, end)
    ex = SimExchange(src, ManualClock(start + 60_000), futures_balances={"USDT": D(100_000)})
    ex.set_leverage("SOLUSDT", 5)
    ex.create_order("perp", "SOLUSDT", "SELL", "MARKET", quantity=D("10"))
    paid = _run_funding(ex, 40)
    real = src.settlements_between("SOLUSDT", start + 60_000, start + 60_000 + 40 * HOUR_MS)
    assert [e.time_ms for e in paid] == [s.ts_ms for s in real]
    assert {e.data["interval_hours"] for e in paid} >= {4, 2}
    assert all(e.data["rate"] == s.rate for e, s in zip(paid, real, strict=True))
    assert all(e.data["payment"] < 0 for e in paid if e.data["rate"] < 0)  # shorts pay negative funding


def test_replay_on_bundled_data_is_deterministic():
    def run() -> list[tuple]:
        src = HistoryReplay(
            bundled_data_dir(),
            ["BTCUSDT", "DOGEUSDT"],
            1_740_000_000_000 - 3_600_000,
            1_740_000_000_000 + 3 * 86_400_000,
        )
        ex = SimExchange(src, ManualClock(1_740_000_000_000), futures_balances={"USDT": D(5_000)})
        ex.create_order("perp", "DOGEUSDT", "SELL", "MARKET", quantity=D("1000"))
        ex.create_order(
            "spot",
            "BTCUSDT",
            "BUY",
            "LIMIT",
            quantity=D("0.01"),
            price=(ex.price("spot", "BTCUSDT") * D("0.99")).quantize(D("0.01")),
        )
        out = []
        for h in range(1, 48):
            for e in ex.step(1_740_000_000_000 + h * HOUR_MS):
                if e.kind != "prices":
                    out.append((e.kind, e.time_ms, e.symbol, str(e.data.get("payment", ""))))
        return out

    first = run()
    assert first == run() and any(k == "funding" for k, *_ in first)


def test_events_reach_subscribers(ex: SimExchange):
    seen = []
    unsubscribe = ex.subscribe(seen.append)
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))
    ex.transfer("USDT", D("10"), "MAIN_UMFUTURE")
    unsubscribe()
    kinds = [e.kind for e in seen]
    assert "order" in kinds and "account" in kinds and "transfer" in kinds and "balance" in kinds


def test_position_risk_leaves_out_a_contract_without_a_price_yet(tmp_path):
    """As Binance lists only trading contracts: a data set mixing symbols listed years apart made the
    whole reading fail ("No mark price") on the first symbol not yet listed."""
    from tests.backtest.backtest_datafiles import T0, flat_symbol, write_funding, write_klines

    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8)])
    write_klines(tmp_path, "spot", "ETHUSDT", [(h, 10.0) for h in range(12, 24)])
    write_klines(tmp_path, "perp", "ETHUSDT", [(h, 10.0) for h in range(12, 24)])
    write_funding(tmp_path, "ETHUSDT", [(16, "0.0001", 8)])
    clock = ManualClock(T0)
    ex = SimExchange(
        HistoryReplay(tmp_path, ["BTCUSDT", "ETHUSDT"], T0, T0 + 24 * HOUR_MS),
        clock,
        futures_balances={"USDT": D(10_000)},
    )
    assert [r.symbol for r in ex.position_risk()] == ["BTCUSDT"]
    ex.set_leverage("ETHUSDT", 3)  # as the daemon sets up every symbol at start, listed or not
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("1"))
    clock.set(T0 + 9 * HOUR_MS)
    ex.step(T0 + 9 * HOUR_MS)  # the settlement's account update lists the priced positions only
    assert [r.time_ms for r in ex.income("BTCUSDT", "FUNDING_FEE")] == [T0 + 8 * HOUR_MS]
    assert code(ex.position_risk, "ETHUSDT") == -1121  # asked by name, the missing price is still an error
    clock.set(T0 + 12 * HOUR_MS)
    ex.step(T0 + 12 * HOUR_MS)
    assert [r.symbol for r in ex.position_risk()] == ["BTCUSDT", "ETHUSDT"]


def test_restore_account_carries_an_account_into_a_fresh_exchange(walk, clock, ex: SimExchange):
    """The dry-run's paper account is rebuilt from the ledger into a new SimExchange at each start."""
    ex.create_order("spot", "BTCUSDT", "BUY", "MARKET", quantity=D("0.1"))
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.1"), client_order_id="p-1")
    below = (ex.price("spot", "BTCUSDT") * D("0.9")).quantize(D(1))
    rest = ex.create_order("spot", "BTCUSDT", "BUY", "LIMIT", quantity=D("0.2"), price=below)
    tran = ex.transfer("USDT", D(100), "MAIN_UMFUTURE")
    spot = {a: free + locked for a, (free, locked) in ex.spot.balances().items()}  # before orders lock
    last_id = max(tran, rest.order_id, *(t.trade_id for t in ex._trades))

    again = SimExchange(walk, clock, SimConfig(), balances={"USDT": D(1)})
    again.restore_account(
        spot=spot,
        futures_wallet=ex.futures.wallet,
        positions=[ex.futures.positions["BTCUSDT"]],
        orders=[o.snapshot() for o in ex._orders.values()],
        trades=list(ex._trades),
        transfers=ex.transfer_history(),
        next_id=last_id + 1,
    )
    assert again.spot.balances() == ex.spot.balances()  # the resting buy locks its reserve again
    assert again.futures_account().total_wallet_balance == ex.futures_account().total_wallet_balance
    assert again.position_risk("BTCUSDT")[0].position_amt == D("-0.1")
    assert [o.order_id for o in again.open_orders("spot", "BTCUSDT")] == [rest.order_id]
    assert again.get_order("perp", "BTCUSDT", client_order_id="p-1").status == "FILLED"
    assert again.my_trades("spot", "BTCUSDT") == ex.my_trades("spot", "BTCUSDT")
    assert again.transfer(asset="USDT", amount=D(1), kind="MAIN_UMFUTURE") > last_id
    with pytest.raises(ValueError, match="fresh account"):
        again.restore_account(spot={}, futures_wallet=D(0))
