"""A short, realistic ledger history written with the Ledger API, and the figures it implies.

One BTC/USDT pair: 3000 USDT moved to futures, a decision to enter (with the strategy's real Reason),
spot buy 0.1 @ 60010 (fee 0.0001 BTC) and perp sell 0.1 @ 60090 (fee 2.4036 USDT), one funding payment
of +0.6 USDT, a hold decision at spot 61000 / perp 61080, a hedge-drift alert, an open transfer intent,
and balance snapshots before and after. Hand-computed consequences are in ``Expected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain import HOUR_MS, MINUTE_MS, Leg, PairState, Side
from bot.ledger.models import EventKind, FundingSource, IntentKind, IntentStatus, RateKind, TransferStatus, Wallet
from bot.ledger.repository import AssetBalance, Ledger
from bot.services.alerts import Alerter
from strategies.base import Action, Economics, Reason, Target

D = Decimal
VENUE = "binance"
T0 = 1_714_521_600_000  # 2024-05-01T00:00:00Z
T_FUND = T0 + 8 * HOUR_MS
T_HOLD = T_FUND + 5 * MINUTE_MS
T_END = T_FUND + 10 * MINUTE_MS


@dataclass(frozen=True)
class Expected:
    funding = D("0.6")
    fees = D("-8.4046")  # 0.0001 BTC * 60010 + 2.4036
    price = D("-0.099")  # long 0.0999 vs short 0.1: net -0.0001 BTC * (61000 - 60010)
    basis = D("0")  # entry basis 80, basis now 80
    net = D("-7.9036")
    equity_first = D("10000")
    equity_last = D("9992.0964")  # 999 + 0.0999 * 61000 + 2899.1964
    slippage = D("2.0")  # (60010 - 60000) * 0.1 + (60100 - 60090) * 0.1
    margin = D("2899.1964")  # 3000 - 2.4036 + 0.6 - 0.1 * (61080 - 60090)
    notional = D("6108")  # 0.1 * 61080
    drift = D("-0.0001")


def economics(score: str, break_even: str | None, apr: str) -> Economics:
    return Economics(
        qty=D("0.1"),
        notional=D("6010"),
        horizon_hours=D("72"),
        expected_funding=D("18.5"),
        expected_funding_per_hour=D("0.2569"),
        forecast_apr=D(apr),
        fees=D("9.6"),
        slippage=D("1.2"),
        basis_cost=D("0.5"),
        round_trip_cost=D("11.3"),
        break_even_hours=None if break_even is None else D(break_even),
        score=D(score),
        net_apr=D("0.0884"),
    )


def inputs(spot_bid: str, spot_ask: str, perp_bid: str, perp_ask: str) -> dict[str, str]:
    return {
        "spot_symbol": "BTC/USDT",
        "perp_symbol": "BTC/USDT:USDT",
        "predicted_rate": "0.0001",
        "spot_bid": spot_bid,
        "spot_ask": spot_ask,
        "perp_bid": perp_bid,
        "perp_ask": perp_ask,
    }


async def build_history(ledger: Ledger) -> int:
    """Write the history; returns the pair id."""
    usdt = lambda total: AssetBalance(free=D(total), used=D(0), total=D(total))  # noqa: E731
    await ledger.record_balance_snapshot(venue=VENUE, wallet=Wallet.SPOT, ts_ms=T0, balances={"USDT": usdt("10000")})
    await ledger.record_balance_snapshot(venue=VENUE, wallet=Wallet.FUTURES, ts_ms=T0, balances={"USDT": usdt("0")})

    t = T0 + MINUTE_MS
    await ledger.record_transfer(
        client_id="tr-1",
        venue=VENUE,
        asset="USDT",
        amount=D("3000"),
        from_wallet=Wallet.SPOT,
        to_wallet=Wallet.FUTURES,
        now_ms=t,
    )
    await ledger.update_transfer("tr-1", now_ms=t, status=TransferStatus.DONE, venue_tran_id="9001")
    await ledger.add_event(
        EventKind.TRANSFER,
        "moved 3000 USDT spot->futures",
        ts_ms=t,
        details={"client_id": "tr-1", "amount": "3000", "asset": "USDT"},
    )

    t = T0 + 2 * MINUTE_MS
    pair = await ledger.upsert_pair(venue=VENUE, symbol="BTC/USDT", now_ms=t, target_qty=D("0.1"))
    enter = Target(
        "BTC/USDT",
        D("0.1"),
        Reason(
            rule="enter_carry",
            message="forecast 21.50% APR pays the round trip back in 5.2h",
            inputs=inputs("59990", "60010", "60090", "60110"),
            economics=economics("7.2", "5.2", "0.215"),
        ),
        Action.ENTER,
    )
    await ledger.add_event(
        EventKind.DECISION, "enter BTC/USDT", ts_ms=t, pair_id=pair.id, symbol="BTC/USDT", details=enter.to_dict()
    )

    t = T0 + 3 * MINUTE_MS
    for cid, leg, sym, side, ref in (
        ("o-spot-1", Leg.SPOT, "BTC/USDT", Side.BUY, "60000"),
        ("o-perp-1", Leg.PERP, "BTC/USDT:USDT", Side.SELL, "60100"),
    ):
        # as the executor writes it: the leg's mid when the action was planned is the order's reference
        await ledger.create_intent(
            IntentKind.ORDER, cid, now_ms=t, pair_id=pair.id,
            payload={"symbol": "BTC/USDT", "leg": leg.value, "side": side.value, "qty": "0.1", "reference_price": ref},
        )  # fmt: skip
        await ledger.record_order(
            client_order_id=cid,
            venue=VENUE,
            symbol=sym,
            leg=leg,
            side=side,
            type="market",
            quantity=D("0.1"),
            now_ms=t,
            pair_id=pair.id,
        )
        await ledger.add_event(
            EventKind.ORDER,
            f"{side.value} 0.1 {sym} market",
            ts_ms=t,
            pair_id=pair.id,
            symbol=sym,
            details={"client_order_id": cid},
        )
        await ledger.set_intent_status(cid, IntentStatus.DONE, now_ms=t)  # the order filled: not open
    await ledger.record_fill(
        venue=VENUE,
        market=Leg.SPOT,
        symbol="BTC/USDT",
        venue_trade_id="1",
        side=Side.BUY,
        quantity=D("0.1"),
        price=D("60010"),
        fee=D("0.0001"),
        fee_asset="BTC",
        ts_ms=t,
        client_order_id="o-spot-1",
        pair_id=pair.id,
    )
    await ledger.record_fill(
        venue=VENUE,
        market=Leg.PERP,
        symbol="BTC/USDT:USDT",
        venue_trade_id="1",
        side=Side.SELL,
        quantity=D("0.1"),
        price=D("60090"),
        fee=D("2.4036"),
        fee_asset="USDT",
        ts_ms=t,
        client_order_id="o-perp-1",
        pair_id=pair.id,
    )
    for sym, text in (("BTC/USDT", "bought 0.1 @ 60010"), ("BTC/USDT:USDT", "sold 0.1 @ 60090")):
        await ledger.add_event(EventKind.FILL, text, ts_ms=t, pair_id=pair.id, symbol=sym)
    await ledger.upsert_pair(
        venue=VENUE,
        symbol="BTC/USDT",
        now_ms=t,
        state=PairState.OPEN,
        spot_qty=D("0.0999"),
        perp_qty=D("0.1"),
        entry_spot_price=D("60010"),
        entry_perp_price=D("60090"),
        entry_basis=(D("60090") - D("60010")) / D("60010"),
    )

    await ledger.record_funding_rate(
        venue=VENUE, symbol="BTC/USDT:USDT", funding_time_ms=T_FUND, rate=D("0.0001"), kind=RateKind.SETTLED,
        observed_ms=T_FUND, interval_hours=8,
    )  # fmt: skip
    await ledger.record_funding_payment(
        venue=VENUE,
        account="main",
        symbol="BTC/USDT:USDT",
        funding_time_ms=T_FUND,
        amount=D("0.6"),
        source=FundingSource.INCOME,
        now_ms=T_FUND + MINUTE_MS,
        rate=D("0.0001"),
        position_size=D("-0.1"),
        pair_id=pair.id,
    )
    await ledger.add_event(
        EventKind.FUNDING, "received 0.6 USDT funding", ts_ms=T_FUND + MINUTE_MS, pair_id=pair.id, symbol="BTC/USDT"
    )
    await ledger.record_funding_rate(
        venue=VENUE, symbol="BTC/USDT:USDT", funding_time_ms=T_FUND + 8 * HOUR_MS, rate=D("0.00012"),
        kind=RateKind.PREDICTED, observed_ms=T_HOLD, interval_hours=8,
    )  # fmt: skip

    hold = Target(
        "BTC/USDT",
        D("0.1"),
        Reason(
            rule="hold_carry",
            message="forecast still above the exit threshold",
            inputs=inputs("60990", "61010", "61070", "61090"),
            economics=economics("6.8", None, "0.19"),
        ),
        Action.HOLD,
    )
    await ledger.add_event(
        EventKind.DECISION, "hold BTC/USDT", ts_ms=T_HOLD, pair_id=pair.id, symbol="BTC/USDT", details=hold.to_dict()
    )
    await Alerter(ledger, now_fn=lambda: T_HOLD + 1000).hedge_drift(
        "BTC/USDT", D("0.0999"), D("0.1"), D("0.0005"), pair_id=pair.id
    )
    await ledger.create_intent(IntentKind.TRANSFER, "tr-2", now_ms=T_HOLD, payload={"amount": "50"})

    await ledger.record_balance_snapshot(
        venue=VENUE,
        wallet=Wallet.SPOT,
        ts_ms=T_END,
        balances={"USDT": usdt("999"), "BTC": AssetBalance(free=D("0.0999"), used=D(0), total=D("0.0999"))},
    )
    await ledger.record_balance_snapshot(
        venue=VENUE, wallet=Wallet.FUTURES, ts_ms=T_END, balances={"USDT": usdt("2899.1964")}
    )
    return pair.id
