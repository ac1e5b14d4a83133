"""Small hand-made markets through the whole backtest path (sim, SimVenue, executor, treasury, ledger)."""

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bot.backtest.data import DataError, load_dataset
from bot.backtest.params import BacktestConfigError, BacktestParams, load_backtest_params, with_backtest_options
from bot.backtest.result import BacktestResult
from bot.backtest.runner import BacktestSpec, run_backtest, run_with_baselines
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger

from .backtest_datafiles import HOUR_MS, T0, flat_symbol, write_funding, write_klines

PRICE = Decimal(100)
SPOT_FEE = Decimal("0.001")
PERP_FEE = Decimal("0.0005")


def run(root: Path, strategy: str = "always-on-btc", hours: int = 24) -> BacktestResult:
    ds = load_dataset(root, None, T0, T0 + hours * HOUR_MS)
    spec = BacktestSpec(
        root, None, T0, T0 + hours * HOUR_MS, Decimal(10000), strategy, BacktestParams(), out_dir=root / "out"
    )
    return asyncio.run(run_backtest(spec, ds))


async def ledger_rows(result: BacktestResult) -> tuple[list, list]:
    ledger = await Ledger.open(result.ledger_url, migrate=False)
    try:
        return await ledger.list_fills(), await ledger.list_funding_payments()
    finally:
        await ledger.close()


def test_hand_computed_flat_market_matches_to_the_cent(tmp_path: Path) -> None:
    # Flat 100 on every market; settlements at 08:00 (+0.01%) and 16:00 (+0.02%) pay the short.
    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8), (16, "0.0002", 8)])
    result = run(tmp_path)
    fills, payments = asyncio.run(ledger_rows(result))
    spot = [f for f in fills if f.market.value == "spot"]
    perp = [f for f in fills if f.market.value == "perp"]
    assert spot and perp and all(f.ts_ms == T0 for f in fills)  # entered at the first hour
    short = sum(f.quantity for f in perp)
    # Funding: -position * mark * rate, position short.
    funding = short * PRICE * Decimal("0.0001") + short * PRICE * Decimal("0.0002")
    assert [p.funding_time_ms for p in payments] == [T0 + 8 * HOUR_MS, T0 + 16 * HOUR_MS]
    assert result.summary.funding_income == pytest.approx(float(funding), abs=0.005)
    spot_fee_base = sum(f.fee for f in spot)  # Binance charges spot buys in the coin
    assert spot_fee_base == sum(f.quantity for f in spot) * SPOT_FEE
    perp_fee = sum(f.quantity * f.price * PERP_FEE for f in perp)
    assert sum(f.fee for f in perp) == perp_fee
    fees = sum(f.fee * f.price for f in spot) + perp_fee
    assert result.summary.fees == pytest.approx(float(fees), abs=0.005)
    slippage = sum((f.price - PRICE) * f.quantity for f in spot) + sum((PRICE - f.price) * f.quantity for f in perp)
    assert result.summary.slippage == pytest.approx(float(slippage), abs=0.005)
    # Flat prices: equity moves only by funding, fees (the spot fee's coins are worth 100 each) and slippage.
    expected = Decimal(10000) + funding - perp_fee - spot_fee_base * PRICE - slippage
    assert result.summary.final_equity == pytest.approx(float(expected), abs=0.005)
    s = result.summary
    assert s.net_pnl == pytest.approx(s.funding_income - s.fees + s.basis_pnl, abs=1e-9)
    assert s.liquidations == 0 and s.time_in_market == 1.0


@pytest.mark.slow
def test_negative_funding_costs_the_short_and_interval_change_is_followed(tmp_path: Path) -> None:
    # 8h until 08:00, then 4h: settlements at 08, 12, 16, 20; the 12:00 one is negative.
    funding = [(0, "0.0001", 8), (8, "0.0001", 8), (12, "-0.0003", 4), (16, "0.0001", 4), (20, "0.0001", 4)]
    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, funding)
    result = run(tmp_path)
    fills, payments = asyncio.run(ledger_rows(result))

    def short_at(ts: int) -> Decimal:
        return sum(
            (f.quantity if f.side.value == "sell" else -f.quantity)
            for f in fills
            if f.market.value == "perp" and f.ts_ms < ts  # settlement runs before trading
        )

    by_time = {p.funding_time_ms: p.amount for p in payments}
    assert sorted(by_time) == [T0 + h * HOUR_MS for h in (8, 12, 16, 20)]
    t8, t12 = T0 + 8 * HOUR_MS, T0 + 12 * HOUR_MS
    assert short_at(t12) > 0
    assert by_time[t12] == -short_at(t12) * PRICE * Decimal("0.0003")  # negative rate: the short pays
    assert by_time[t8] == short_at(t8) * PRICE * Decimal("0.0001")
    assert result.data_notes["BTCUSDT"]["interval_changes"] == [
        {"ts_ms": T0 + 12 * HOUR_MS, "old_hours": 8, "new_hours": 4}
    ]


def test_no_pair_is_opened_into_a_gap_and_the_gap_is_reported(tmp_path: Path) -> None:
    funding = [(0, "0.0001", 8), (8, "0.0001", 8), (16, "0.0001", 8)]
    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, funding, gap=range(3, 6))
    result = run(tmp_path)
    fills, _ = asyncio.run(ledger_rows(result))
    assert fills, "the pair opens once the gap has passed"
    assert min(f.ts_ms for f in fills) >= T0 + 6 * HOUR_MS  # not before: the gap was within the lookahead
    assert result.data_notes["BTCUSDT"]["gap_hours"] == 3
    assert result.symbols[0].gap_hours == 3


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_held_pair_is_closed_before_a_gap_and_reopened_after(tmp_path: Path, fast_forward: bool) -> None:
    """A pair held into missing data was valued at the stale price through it, and when the data came
    back the simulator liquidated the short unseen by the ledger (the shared data's DOGEUSDT: +66%)."""
    funding = [(h, "0.0001", 8) for h in range(0, 72, 8)]
    flat_symbol(tmp_path, "BTCUSDT", 72, 100.0, 100.0, funding, gap=range(30, 40))
    ds = load_dataset(tmp_path, None, T0, T0 + 72 * HOUR_MS)
    params = with_backtest_options(BacktestParams(), fast_forward=fast_forward)
    spec = BacktestSpec(
        tmp_path, None, T0, T0 + 72 * HOUR_MS, Decimal(10000), "always-on-btc", params, out_dir=tmp_path / "out"
    )
    result = asyncio.run(run_backtest(spec, ds))
    fills, _ = asyncio.run(ledger_rows(result))
    hours = sorted({(f.ts_ms - T0) // HOUR_MS for f in fills})
    assert hours == [0, 22, 40], "opened, closed 8 h before the gap (lookahead), reopened when it ended"
    assert all(f.side.value == "sell" for f in fills if f.ts_ms == T0 + 22 * HOUR_MS and f.market.value == "spot")
    assert np.isnan(result.timeline.collateral_ratio[30:40]).all(), "nothing held across the gap"
    assert result.summary.liquidations == 0


def test_a_liquidation_is_alerted_and_reconciliation_quarantines_the_pair(tmp_path: Path) -> None:
    """The price triples within one hour: the venue liquidates the short. The ledger said nothing and
    kept the pair open, so the executor tried to repair the hedge every hour (reduce-only orders on a
    position that no longer existed, fees each time)."""
    px = [100.0 if h < 10 else 300.0 for h in range(24)]
    for kind in ("spot", "perp", "mark"):
        write_klines(tmp_path, kind, "BTCUSDT", [(h, px[h]) for h in range(24)])
    write_funding(tmp_path, "BTCUSDT", [(h, "0.0001", 8) for h in range(0, 24, 8)])
    result = run(tmp_path)
    assert result.summary.liquidations == 1
    assert result.summary.trades == 3, "the entry's two fills, the venue's closing trade, nothing after"

    async def read() -> tuple[list, list]:
        ledger = await Ledger.open(result.ledger_url, migrate=False)
        try:
            return await ledger.list_pairs(), await ledger.events(kinds=[EventKind.ALERT])
        finally:
            await ledger.close()

    pairs, alerts = asyncio.run(read())
    assert [(p.symbol, p.state.value) for p in pairs] == [("BTC/USDT", "quarantined")]
    fills, _ = asyncio.run(ledger_rows(result))
    perp = [(f.side.value, f.quantity, f.client_order_id) for f in fills if f.market.value == "perp"]
    assert perp[-1][0] == "buy" and perp[-1][2].startswith("autoclose-"), "the venue's closing trade is a fill"
    assert sum(q if side == "sell" else -q for side, q, _ in perp) == 0
    assert [a.ts_ms for a in alerts] == [T0 + 10 * HOUR_MS] * 2
    assert alerts[0].message.startswith("liquidation: BTC/USDT short of 14.965 closed by the venue at 300")
    assert alerts[1].message.startswith("BTC/USDT quarantined: the venue closed its short (liquidation)")


@pytest.mark.parametrize("spot_fee", ["0", "0.002"])
def test_the_spot_buy_is_grossed_up_by_the_simulated_spot_fee(tmp_path: Path, spot_fee: str) -> None:
    """[backtest] spot_fee_rate sets the fee the simulator takes in the coin bought; the executor grossed
    the buy up by [execution] spot_fee_in_base (0.001) whatever it was, so the legs ended apart."""
    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8), (16, "0.0001", 8)])
    cfg = tmp_path / "fees.toml"
    cfg.write_text(f'[backtest]\nspot_fee_rate = "{spot_fee}"\n')
    params = load_backtest_params(cfg)
    assert params.execution.spot_fee_in_base == Decimal(spot_fee)
    ds = load_dataset(tmp_path, None, T0, T0 + 24 * HOUR_MS)
    spec = BacktestSpec(
        tmp_path, None, T0, T0 + 24 * HOUR_MS, Decimal(10000), "always-on-btc", params, out_dir=tmp_path / "out"
    )
    result = asyncio.run(run_backtest(spec, ds))

    async def pairs() -> list:
        ledger = await Ledger.open(result.ledger_url, migrate=False)
        try:
            return await ledger.list_pairs()
        finally:
            await ledger.close()

    (pair,) = asyncio.run(pairs())
    assert pair.spot_qty >= pair.perp_qty and pair.spot_qty - pair.perp_qty < Decimal("0.001")


def test_mark_fallback_is_reported(tmp_path: Path) -> None:
    flat_symbol(tmp_path, "BTCUSDT", 12, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8)], mark=False)
    result = run(tmp_path, hours=12)
    assert result.data_notes["BTCUSDT"]["mark_file_missing"] is True
    assert result.symbols[0].mark_fallback_hours == 12


@pytest.mark.slow
def test_skipping_idle_hours_changes_nothing(tmp_path: Path) -> None:
    # Quiet funding, then a burst the carry strategy trades, then quiet again; the premium of the prices
    # tells it as it comes (the simulator's predicted rate is built from the prices, not the settled rates).
    rates = ["0"] * 6 + ["0.003"] * 3 + ["0"] * 3
    flat_symbol(tmp_path, "BTCUSDT", 96, 100.0, 99.95, [(8 * k, r, 8) for k, r in enumerate(rates)])
    burst = [(h, 100.5 if 40 <= h < 72 else 99.95) for h in range(96)]
    write_klines(tmp_path, "perp", "BTCUSDT", burst)
    write_klines(tmp_path, "mark", "BTCUSDT", burst)
    runs = []
    for skip in (True, False):
        ds = load_dataset(tmp_path, None, T0, T0 + 96 * HOUR_MS)
        opts = {"skip_idle_hours": skip, "fast_forward": False}  # this test is about the idle skip alone
        params = BacktestParams(options=BacktestParams().options.model_copy(update=opts))
        spec = BacktestSpec(tmp_path, None, None, None, Decimal(10000), "carry", params, out_dir=tmp_path / f"o{skip}")
        runs.append(asyncio.run(run_backtest(spec, ds)))
    fast, slow = runs
    assert fast.stats.ticks_skipped > 0 and slow.stats.ticks_skipped == 0
    f_fills, f_pay = asyncio.run(ledger_rows(fast))
    s_fills, s_pay = asyncio.run(ledger_rows(slow))
    assert f_fills, "the burst must be traded for this test to mean anything"
    key = lambda f: (f.ts_ms, f.market, f.side, f.quantity, f.price, f.fee)  # noqa: E731
    assert sorted(map(key, f_fills)) == sorted(map(key, s_fills))  # legs of one action are concurrent
    assert [(p.funding_time_ms, p.amount) for p in f_pay] == [(p.funding_time_ms, p.amount) for p in s_pay]
    assert list(fast.timeline.equity) == list(slow.timeline.equity)


def test_eval_every_hours_trades_only_on_the_scan_cadence_and_funding_stays_hourly(tmp_path: Path) -> None:
    # Entry is possible from hour 0 on; with an 8 h scan the strategy acts at 0, 8, 16 only.
    flat_symbol(
        tmp_path, "BTCUSDT", 24, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8), (16, "0.0002", 8)], gap=range(0, 1)
    )
    ds = load_dataset(tmp_path, None, T0, T0 + 24 * HOUR_MS)
    params = with_backtest_options(BacktestParams(), eval_every_hours=8)
    spec = BacktestSpec(
        tmp_path, None, T0, T0 + 24 * HOUR_MS, Decimal(10000), "always-on-btc", params, out_dir=tmp_path / "out"
    )
    result = asyncio.run(run_backtest(spec, ds))
    fills, payments = asyncio.run(ledger_rows(result))
    assert fills and all(f.ts_ms == T0 + 8 * HOUR_MS for f in fills)  # hour 0 has no data; next scan is 8
    assert result.stats.scan_hours == 3 and result.stats.scans <= 3  # the others proven quiet
    assert [p.funding_time_ms for p in payments] == [T0 + 16 * HOUR_MS]  # settled while held, at its hour


def test_eval_every_hours_is_validated() -> None:
    with pytest.raises(BacktestConfigError, match="eval_every_hours"):
        with_backtest_options(BacktestParams(), eval_every_hours=0)


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_symbol_listed_after_the_start_does_not_stop_the_run(tmp_path: Path, fast_forward: bool) -> None:
    # ETH has no candle of any kind (no mark either) for the first day: it is not a market yet. The run
    # used to fail at its first scan ("No mark price"); now ETH is simply not offered until it trades.
    flat_symbol(tmp_path, "BTCUSDT", 48, 100.0, 100.02, [(8 * k, "0.0001", 8) for k in range(6)])
    for kind in ("spot", "perp", "mark"):
        write_klines(tmp_path, kind, "ETHUSDT", [(h, 50.0) for h in range(24, 48)])
    write_funding(tmp_path, "ETHUSDT", [(24 + 8 * k, "0.004", 8) for k in range(3)])
    ds = load_dataset(tmp_path, None, T0, T0 + 48 * HOUR_MS)
    params = with_backtest_options(BacktestParams(), fast_forward=fast_forward)
    spec = BacktestSpec(tmp_path, None, None, None, Decimal(10000), "carry", params, out_dir=tmp_path / "out")
    result = asyncio.run(run_backtest(spec, ds))
    assert result.summary.hours == 48
    assert result.data_notes["ETHUSDT"]["first_ms"] == T0 + 24 * HOUR_MS


async def _pairs(url: str) -> list:
    ledger = await Ledger.open(url, migrate=False)
    try:
        return list(await ledger.list_pairs())
    finally:
        await ledger.close()


@pytest.mark.slow
def test_baselines_in_worker_processes_match_the_ones_run_in_turn(tmp_path: Path) -> None:
    from bot.sim.history import bundled_data_dir

    from .equivalence import WINDOW_START, ledger_facts

    def spec(out: Path) -> BacktestSpec:
        end = WINDOW_START + 6 * 24 * HOUR_MS
        return BacktestSpec(
            bundled_data_dir(),
            ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
            WINDOW_START,
            end,
            Decimal(100000),
            "carry",
            BacktestParams(),
            out_dir=out,
        )

    in_turn = run_with_baselines(spec(tmp_path / "in_turn"), workers=0)
    parallel = run_with_baselines(spec(tmp_path / "parallel"), workers=2)
    assert set(parallel.baselines) == {"always-on", "top-n"}
    assert parallel.baselines == in_turn.baselines
    assert parallel.baselines["top-n"].trades > 0
    # always-on holds every symbol of the run, all the time: the carry's own universe
    assert parallel.baselines["always-on"].time_in_market == 1.0
    held = tmp_path / "parallel" / "baselines" / "always-on" / "ledger.db"
    pairs = asyncio.run(_pairs(f"sqlite+aiosqlite:///{held.as_posix()}"))
    assert {p.symbol for p in pairs} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    for name in parallel.baselines:
        a, b = (tmp_path / run / "baselines" / name / "ledger.db" for run in ("in_turn", "parallel"))
        assert ledger_facts(f"sqlite+aiosqlite:///{a.as_posix()}") == ledger_facts(
            f"sqlite+aiosqlite:///{b.as_posix()}"
        )


@pytest.mark.slow
def test_always_on_btc_needs_btc_in_the_symbols(tmp_path: Path) -> None:
    """Without BTCUSDT it made 0 trades and said nothing; as a baseline it is left out, not shown as 0."""
    flat_symbol(tmp_path, "ETHUSDT", 24, 10.0, 10.0, [(0, "0.0001", 8), (8, "0.0001", 8), (16, "0.0001", 8)])
    spec = BacktestSpec(
        tmp_path, None, T0, T0 + 24 * HOUR_MS, Decimal(10000), "always-on-btc", BacktestParams(), out_dir=tmp_path / "a"
    )
    with pytest.raises(DataError, match="add BTCUSDT to --symbols"):
        run_with_baselines(spec)
    carry = BacktestSpec(
        tmp_path, None, T0, T0 + 24 * HOUR_MS, Decimal(10000), "carry", BacktestParams(), out_dir=tmp_path / "b"
    )
    stale = tmp_path / "b" / "baselines" / "always-on-btc"
    stale.mkdir(parents=True)  # an earlier run's, in the same --out
    assert list(run_with_baselines(carry, workers=0).baselines) == ["always-on", "top-n"]
    assert not stale.exists() and (tmp_path / "b" / "baselines" / "top-n" / "ledger.db").exists()
