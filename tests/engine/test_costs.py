"""The account's real costs over the real ccxt against the emulator: commission rates read at start and
used (cost model, gross-up, the simulator's charges), settings as overrides, spot fees paid in BNB with
the BNB kept within its band and counted as fees in USDT."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from decimal import Decimal

from bot.domain import PairState
from bot.engine.costs import DAY_MS
from bot.ledger.attribution import attribute_ledger
from bot.ledger.models import EventKind
from tests.engine.world import World, open_world

SPOT_RATE = Decimal("0.00075")  # a VIP-ish spot rate, unlike the 0.001 default
PERP_MAKER = Decimal("0.00016")
PERP_TAKER = Decimal("0.0004")


def account_rates(w: World) -> None:
    """Give the emulator's account its own rates (the endpoints report what the simulator charges)."""
    cfg = w.sim.config
    w.sim.config = replace(
        cfg, spot_maker_fee=SPOT_RATE, spot_taker_fee=SPOT_RATE, perp_maker_fee=PERP_MAKER, perp_taker_fee=PERP_TAKER
    )


async def cost_events(w: World) -> list:
    return await w.ledger.events(kinds=[EventKind.INFO], message_prefix="account costs")


async def test_commission_rates_are_read_at_start_and_used(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"], start=False)
        account_rates(w)
        await w.engine.start()
        spot, perp = w.engine.builder.fees.of("SOL/USDT")
        assert (spot.maker, spot.taker, perp.maker, perp.taker) == (SPOT_RATE, SPOT_RATE, PERP_MAKER, PERP_TAKER)
        assert w.engine.executor.config.spot_fee_in_base == SPOT_RATE  # the gross-up follows the account
        assert w.engine.reconciler.config.spot_fee_in_base == SPOT_RATE
        [event] = await cost_events(w)
        assert event.details["by_symbol"]["SOL/USDT"]["perp_taker"] == str(PERP_TAKER)
        assert event.details["overrides"] == []

        await w.engine.scan()
        [pair] = await w.pairs(PairState.OPEN)
        fills = await w.ledger.list_fills(pair_id=pair.id)
        spot_buys = [f for f in fills if f.market == "spot"]
        assert spot_buys and all(f.fee == (f.quantity * SPOT_RATE).quantize(Decimal("1E-8")) for f in spot_buys)
        assert all(f.fee_asset == "SOL" for f in spot_buys)
        # the buy was grossed up by the account's rate: the coin received covers the short within a lot
        step = await w.step("SOL/USDT")
        bought = sum((f.quantity - f.fee for f in spot_buys), Decimal(0))
        assert abs(bought - pair.perp_qty) < step, (bought, pair.perp_qty)

        # read again once a day, not at every scan
        await w.engine.scan()
        assert len(await cost_events(w)) == 1
        stale = w.now() - DAY_MS
        w.engine.costs = replace(w.engine.costs, read_ms=stale)
        await w.engine.scan()
        assert w.engine.costs.read_ms > stale, "a day later the rates are read again"
        assert len(await cost_events(w)) == 1, "the same rates again: nothing new for the ledger"


async def test_configured_rates_override_the_account(sqlite_url: str, monkeypatch) -> None:
    monkeypatch.setenv("FUNDBOT_ENGINE__SPOT_TAKER_FEE", "0.002")
    monkeypatch.setenv("FUNDBOT_EXECUTION__SPOT_FEE_IN_BASE", "0.0015")
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"], start=False)
        account_rates(w)
        await w.engine.start()
        spot, perp = w.engine.builder.fees.of("SOL/USDT")
        assert spot.taker == Decimal("0.002")  # set: the override
        assert spot.maker == SPOT_RATE and perp.taker == PERP_TAKER  # unset: the account's
        assert w.engine.executor.config.spot_fee_in_base == Decimal("0.0015")
        [event] = await cost_events(w)
        assert event.details["overrides"] == [
            "FUNDBOT_ENGINE__SPOT_TAKER_FEE",
            "FUNDBOT_EXECUTION__SPOT_FEE_IN_BASE",
        ]


async def bnb_value(w: World) -> Decimal:
    bnb = await w.engine.bnb.fee_bnb()
    book = await w.venue.fetch_order_book("BNB/USDT", "spot", 5)
    return bnb * book.mid


async def test_bnb_pays_spot_fees_counted_in_usdt_and_kept_within_its_band(sqlite_url: str) -> None:
    treasury = {"bnb_fees": True, "bnb_low_usdt": "20", "bnb_target_usdt": "50"}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT", "BNB/USDT"], start=False, treasury=treasury)
        assert not await w.venue.fetch_bnb_burn()
        await w.engine.start()
        assert await w.venue.fetch_bnb_burn()  # turned on through ccxt (POST /sapi/v1/bnbBurn)
        assert w.sim.bnb_burn
        assert w.engine.executor.config.spot_fee_in_base == 0  # no gross-up while BNB pays
        spot, _ = w.engine.builder.fees.of("SOL/USDT")
        assert spot.taker == Decimal("0.00075")  # 0.001 at Binance's 25% BNB discount

        await w.engine.scan()
        topups = [e for e in await w.ledger.events(kinds=[EventKind.DECISION]) if e.details.get("rule") == "bnb_topup"]
        assert len(topups) == 1
        assert Decimal(topups[0].details["upcoming_fees_usdt"]) > 0  # sized for the entries' fees too
        value = await bnb_value(w)
        assert Decimal(20) <= value <= Decimal(55), value  # topped up to the target (a lot above at most)

        pairs = [p for p in await w.pairs(PairState.OPEN) if p.symbol == "SOL/USDT"]
        assert pairs, "the carry strategy should enter SOL in a week of strong positive funding"
        [pair] = pairs
        fills = await w.ledger.list_fills(pair_id=pair.id)
        spot_fills = [f for f in fills if f.market == "spot"]
        assert spot_fills and all(f.fee_asset == "BNB" for f in spot_fills)
        assert pair.spot_qty == pair.perp_qty  # the coin bought arrives whole: the legs match exactly

        prices = await w.ledger.events(kinds=[EventKind.INFO], message_prefix="prices: BNB/USDT")
        assert prices and "BNB/USDT" in prices[-1].details["prices"]
        att = await attribute_ledger(w.ledger)
        bnb_px = Decimal(prices[-1].details["prices"]["BNB/USDT"])
        sol_fee = sum((f.fee for f in spot_fills), Decimal(0)) * bnb_px
        notional = sum((f.quantity * f.price for f in spot_fills), Decimal(0))
        assert abs(sol_fee - notional * Decimal("0.00075")) < Decimal("0.01")  # the BNB fee is the discounted rate
        assert att.of("SOL/USDT").fees >= sol_fee - Decimal("0.000001")  # counted in USDT, not left out
        assert not [n for n in att.notes if "not converted" in n]

        # within the band: no buy; below it: one buy back to the target
        await w.engine.scan()
        assert (
            len([e for e in await w.ledger.events(kinds=[EventKind.DECISION]) if e.details.get("rule") == "bnb_topup"])
            == 1
        )
        bnb = await w.engine.bnb.fee_bnb()
        w.sim.spot.debit("BNB", bnb * Decimal("0.8"))  # fees and an operator's withdrawal drained it
        assert await bnb_value(w) < 20
        await w.engine.scan()
        topups = [e for e in await w.ledger.events(kinds=[EventKind.DECISION]) if e.details.get("rule") == "bnb_topup"]
        assert len(topups) == 2
        assert Decimal(20) <= await bnb_value(w) <= Decimal(55)
        # the BNB kept for fees is no orphan of BNB/USDT
        assert "BNB/USDT" not in (await w.engine.reconciler.orphans.venue_legs(["BNB/USDT"]))


def test_a_copied_env_example_pins_no_rate(monkeypatch, tmp_path) -> None:
    """.env.example leaves the rates empty: copied as it is, the account's rates apply, not overrides."""
    from pathlib import Path

    from bot.config import load_settings
    from bot.engine.costs import CostResolver

    example = (Path(__file__).parents[2] / ".env.example").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(example)
    settings = load_settings()
    resolver = CostResolver(settings.engine, settings.execution)
    assert resolver.set_rates == frozenset() and not resolver.set_gross_up
    monkeypatch.setenv("FUNDBOT_ENGINE__PERP_TAKER_FEE", "0.0004")
    assert CostResolver(load_settings().engine, settings.execution).set_rates == {"perp_taker_fee"}
