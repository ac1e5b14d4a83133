"""The trading core of one backtest (simulator, venue, ledger, executor, treasury, strategy) and the
per-tick job calls, kept in one place so they can be swapped for ``bot.engine``'s job functions.

Everything here is the daemon's own code: ``SimVenue`` over ``SimExchange`` is the venue, ``Executor``
and ``Treasury`` act on it, ``Ledger`` records; only the clock (``ManualClock``) and the sleep (instant:
simulated time does not pass while an order is followed up) differ from live.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.backtest.data import Dataset, unified_symbol
from bot.backtest.minute import MinuteOverlay
from bot.backtest.params import build_strategy
from bot.domain import DAY_MS, ZERO, Leg, PairState, exchange_id, perp_symbol
from bot.engine.snapshot import FeeSchedule, SnapshotBuilder
from bot.execution.executor import Executor, SimpleTarget
from bot.execution.ordering import order_targets
from bot.execution.orders import record_venue_fill
from bot.ledger.memory import MemoryLedger
from bot.ledger.models import EventKind, FundingSource, Wallet
from bot.ledger.recorder import Recorder
from bot.ledger.repository import EMPTY_WALLET, AssetBalance, EventRecord, FundingRecord, Ledger
from bot.ops.reads import BACKTEST_FINISHED
from bot.reconcile import Reconciler
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.records import SimEvent
from bot.sim.source import HistoryReplay
from bot.treasury.maths import transfer_need
from strategies.base import Fees, Limits, PairView, Target

LIVE_STATES = tuple(s for s in PairState if s is not PairState.CLOSED)
HISTORY_LEAD_MS = 32 * DAY_MS  # funding history the first snapshot needs from before the window


async def _instant(_seconds: float) -> None:
    """Simulated time does not pass while execution waits; the sim answers at once."""


async def open_ledger(url: str, memory: bool) -> Recorder:
    """The backtest's ledger at ``url``: the in-memory recorder flushed to the file in bulk, or (the
    reference the tests compare it with) the daemon's SQLAlchemy ``Ledger`` writing every call."""
    return await MemoryLedger.open(url) if memory else await Ledger.open(url)


@dataclass
class TickState:
    equity: float
    collateral_ratio: float
    notional: float
    held: list[str]


@dataclass
class Core:
    ds: Dataset
    clock: ManualClock
    source: Any
    exchange: SimExchange
    venue: Any
    ledger: Recorder
    ledger_url: str
    executor: Executor
    treasury: Any
    strategy: Any
    builder: SnapshotBuilder
    events: list[SimEvent] = field(default_factory=list)
    liquidated: list[SimEvent] = field(default_factory=list)  # not yet written to the ledger
    _liquidations: int = 0

    sim_events: int = 0

    def on_event(self, ev: SimEvent) -> None:
        self.sim_events += 1
        if ev.kind == "liquidation":
            self._liquidations += 1
            self.liquidated.append(ev)
        elif ev.kind == "funding":
            self.events.append(ev)

    def liquidations(self) -> int:
        return self._liquidations

    async def close(self) -> None:
        await self.venue.close()
        await self.ledger.close()


async def build_core(spec: Any, ds: Dataset, db_path: Path) -> Core:
    from bot.treasury import Treasury  # the daemon's treasury
    from bot.venues.sim_venue import SimVenue

    ids = list(ds.series)
    replay = HistoryReplay(ds.data_dir, ids, ds.start_ms - HISTORY_LEAD_MS, ds.end_ms)
    source = MinuteOverlay.from_files(replay, ds.data_dir, ds.minute_windows) if ds.minute_windows else replay
    clock = ManualClock(ds.start_ms)
    opts = spec.params.options
    config = SimConfig(
        spot_maker_fee=opts.spot_fee_rate,
        spot_taker_fee=opts.spot_fee_rate,
        perp_maker_fee=opts.perp_maker_fee_rate,
        perp_taker_fee=opts.perp_taker_fee_rate,
    )
    exchange = SimExchange(source, clock, config, symbols=ids, balances={"USDT": Decimal(spec.capital)})
    venue = SimVenue(exchange)
    if db_path.exists():
        db_path.unlink()
    url = f"sqlite+aiosqlite:///{db_path.as_posix()}"
    ledger = await open_ledger(url, opts.memory_ledger)
    # As the daemon at start (bot.engine.core): margin mode and leverage per perp, here the leverage the
    # strategy sizes its collateral for (the daemon's config check asks the operator to keep them equal),
    # rounded up to the whole number the venue takes, so initial margin never exceeds what it funds.
    leverage = math.ceil(spec.params.strategy.perp_leverage)
    for sid in ids:
        if exchange.has_market("perp", sid):
            await venue.setup_symbol(unified_symbol(sid), leverage, "cross")
    treasury = Treasury(venue, ledger, spec.params.treasury, clock.now_ms, sleep=_instant)
    executor = Executor(venue, ledger, clock.now_ms, spec.params.execution, funder=treasury, sleep=_instant)
    treasury.reducer = executor  # the daemon wires both ways: treasury funds entries, executor shrinks pairs
    fees = FeeSchedule(
        spot=Fees(maker=opts.spot_fee_rate, taker=opts.spot_fee_rate),
        perp=Fees(maker=opts.perp_maker_fee_rate, taker=opts.perp_taker_fee_rate),
    )
    builder = SnapshotBuilder(venue, [s.unified for s in ds.series.values()], fees)
    core = Core(
        ds,
        clock,
        source,
        exchange,
        venue,
        ledger,
        url,
        executor,
        treasury,
        build_strategy(spec.strategy, spec.params.strategy),
        builder,
    )
    exchange.subscribe(core.on_event)
    return core


class TickJobs:
    """The daemon's jobs, called by the backtest loop at simulated instants."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.venue_name: str = core.venue.name
        self.account: str = core.venue.account
        self._live: dict[str, PairView] = {}
        self._last_balances: list[Any] = []
        self._loaded = False
        self._treasury_quiet = True  # the last collateral check moved nothing
        self._dirty = True  # pairs in the ledger may have changed since the last read
        self._open_intents: bool | None = None  # cached ledger answer; only executor/treasury change intents
        self.treasury_runs = 0
        self.collateral_gate = True  # run the treasury only when the band is left (see check_collateral)

    @property
    def strategy_name(self) -> str:
        return str(getattr(self.core.strategy, "name", type(self.core.strategy).__name__))

    async def idle(self) -> bool:
        """Flat: no live pair, no open order anywhere, and the treasury had nothing left to do."""
        if self._live or not self._treasury_quiet:
            return False
        if self._open_intents is None:
            self._open_intents = bool(await self.core.ledger.open_intents())
        return not self._open_intents

    async def step(self, t: int) -> None:
        self.core.clock.set(t)
        self.core.exchange.step(t)
        if self.core.liquidated:
            await self._after_liquidation()

    async def _after_liquidation(self) -> None:
        """The venue closed a short by liquidation: an alert per liquidation, then the daemon's
        reconciliation, which finds the perp leg gone and quarantines the pair (as a live daemon's
        periodic reconcile would; the executor then leaves it alone instead of repairing a hedge whose
        short the venue took). The venue's closing trade then goes into the ledger as a fill, so the
        report closes the leg at the liquidation price."""
        core = self.core
        closing = []
        for ev in core.liquidated:
            trade = ev.data["trade"]
            sym = unified_symbol(ev.symbol)
            closing.append((sym, ev, self._live.get(sym)))
            await core.ledger.add_event(
                EventKind.ALERT,
                f"liquidation: {sym} short of {trade.qty} closed by the venue at {ev.data['price']} "
                f"(realised {trade.realized_pnl}, clearance fee {ev.data['fee']})",
                ts_ms=ev.time_ms,
                symbol=sym,
                details={
                    "qty": trade.qty,
                    "price": ev.data["price"],
                    "realized_pnl": trade.realized_pnl,
                    "fee": ev.data["fee"],
                },
            )
        core.liquidated.clear()
        await Reconciler(core.venue, core.ledger, core.clock.now_ms, config=core.executor.config, sleep=_instant).run()
        for sym, ev, pair in closing:
            trade_id = str(ev.data["trade"].trade_id)
            for f in await core.venue.fetch_fills(sym, Leg.PERP, since_ms=ev.time_ms):
                if f.venue_trade_id == trade_id:  # the clearance fee the venue took is this trade's fee
                    f = replace(f, fee=ev.data["fee"], fee_asset="USDT")
                    await record_venue_fill(
                        core.ledger,
                        core.venue.name,
                        f,
                        ev.data["order"].client_order_id,
                        pair.pair_id if pair else None,
                    )
        self._open_intents = None
        self._dirty = True
        await self._refresh_pairs()

    async def _refresh_pairs(self) -> None:
        """Re-read live pairs; only the executor and the treasury change them, so only after they acted."""
        if not self._dirty:
            return
        self._dirty = False
        pairs = await self.core.ledger.list_pairs(LIVE_STATES, venue=self.venue_name)
        self._live = {
            p.symbol: PairView(p.symbol, p.state, p.spot_qty, p.perp_qty, p.opened_ms, None, p.id) for p in pairs
        }

    async def sync_funding(self, t: int) -> None:
        """Funding-ledger sync: the venue's income records since the last settlement seen."""
        payments = await self.funding_records(lambda _ms: t)
        if payments:
            await self.core.ledger.record_funding_payments(payments)
            await self.core.ledger.add_events([p.event() for p in payments])

    async def funding_records(self, recorded_at: Callable[[int], int]) -> list[FundingRecord]:
        """The venue's income records since the first settlement not yet synced, as ledger rows;
        ``recorded_at(funding_time_ms)`` is the instant the sync saw each."""
        if not self.core.events:
            return []
        since = min(ev.time_ms for ev in self.core.events)
        self.core.events.clear()
        out = []
        for inc in await self.core.venue.fetch_funding_income(since_ms=since):
            pair = self._live.get(inc.symbol)
            out.append(
                FundingRecord(
                    venue=self.venue_name,
                    account=self.account,
                    symbol=inc.symbol,
                    funding_time_ms=inc.funding_time_ms,
                    amount=inc.amount,
                    source=FundingSource.SIM,
                    now_ms=recorded_at(inc.funding_time_ms),
                    asset=inc.asset,
                    pair_id=pair.pair_id if pair else None,
                    position_size=pair.perp_qty if pair else None,
                )
            )
        return out

    async def _capital(self) -> Decimal:
        """Equity in USDT: spot assets at the replayed spot price (the last known one through a gap)
        plus the futures margin balance (wallet + unrealised PnL at mark)."""
        return self._capital_from(self.core.exchange.futures_account())

    def _capital_from(self, fa: Any) -> Decimal:
        """``_capital`` on a futures-account reading already taken at this instant. The sim's own
        records, read once: what ``fetch_balances`` would convert (spot totals, then the futures USDT
        margin balance), without recomputing every position's risk for each venue call."""
        ex = self.core.exchange
        total = ZERO
        for asset, (free, locked) in sorted(ex.spot_account().balances.items()):
            amount = free + locked
            if not amount:
                continue
            if asset == "USDT":
                total += amount
            else:
                sid = f"{asset}USDT"
                px = ex.last_known_price("spot", sid) or ZERO
                total += amount * px
        return total + fa.total_margin_balance

    def _live_short_notional(self, fa: Any) -> tuple[Decimal, list[str]]:
        """Sum of |qty| * mark over the live pairs' open positions (sim symbol order, as
        ``fetch_positions`` returns them), and those pairs' symbols."""
        live = {self.core.venue._id(s): s for s in self._live}
        order = {sid: k for k, sid in enumerate(self.core.exchange.symbols)}
        rows = sorted((r for r in fa.positions if r.symbol in live and r.position_amt), key=lambda r: order[r.symbol])
        notional = sum((abs(r.position_amt) * r.mark_price for r in rows), ZERO)
        return notional, [live[r.symbol] for r in rows]

    async def evaluate(self, t: int, no_data: set[str], no_entry: set[str]) -> None:
        """Funding scan + strategy evaluation + execution, as the daemon's hourly job."""
        core = self.core
        if not self._loaded:
            await core.builder.load_markets()
            self._loaded = True
        await self._refresh_pairs()
        all_symbols = [s.unified for s in core.ds.series.values()]
        core.builder.symbols = [s for s in all_symbols if s not in no_data and (s in self._live or s not in no_entry)]
        self._open_intents = None  # the executor (and the treasury it calls) may open or close intents
        capital = await self._capital()
        snapshot, _ = await core.builder.build(t, tuple(self._live.values()), max(capital, ZERO), Limits())
        targets = core.strategy.evaluate(snapshot)
        for target in self._order(self._filter(targets, no_data, no_entry)):
            result = await core.executor.apply(target)
            if result.status != "noop" or result.pair_id is not None:
                self._dirty = True
        await self._refresh_pairs()

    def held(self) -> set[str]:
        """Symbols of the live pairs (as of the last ledger read)."""
        return set(self._live)

    async def exit_before_gaps(self, t: int, gaps: dict[str, str]) -> None:
        """Close the held pairs whose data has a hole ahead (``gaps``: symbol -> why). Across missing data
        a pair could only be valued at stale prices and margined blind, so the backtest never holds one
        through it (the issue's rule: a symbol is not traded across a gap)."""
        core = self.core
        for sym, why in sorted(gaps.items()):
            if sym not in self._live or self._live[sym].state is PairState.QUARANTINED:
                continue  # a quarantined pair waits for the operator (the executor would refuse it)
            await core.ledger.add_event(
                EventKind.DECISION,
                f"exit_data_gap: {sym} {why}",
                ts_ms=t,
                symbol=sym,
                details={"rule": "exit_data_gap", "message": why},
            )
            self._open_intents = None
            await core.executor.apply(SimpleTarget(sym, ZERO, f"exit_data_gap: {why}"))
            self._dirty = True
        await self._refresh_pairs()

    def _filter(self, targets: list[Target], no_data: set[str], no_entry: set[str]) -> list[Target]:
        """Never trade a symbol without data; never grow a pair into a coming gap."""
        out = []
        for tg in targets:
            if tg.symbol in no_data:
                continue
            held = self._live.get(tg.symbol)
            current = held.hedged_qty if held else ZERO
            if tg.symbol in no_entry and tg.target_qty > current:
                continue
            out.append(tg)
        return out

    def _order(self, targets: list[Target]) -> list[Target]:
        """The daemon's execution order (bot.execution.ordering): exits and reductions, then increases by score."""
        return order_targets(targets, {s: p.hedged_qty for s, p in self._live.items()})

    async def check_collateral(self, t: int) -> None:
        """Collateral and hedge check (treasury), as the daemon's fast job.

        With ``gate`` on, the treasury runs only when its own rule (``transfer_need`` on the same venue
        readings it takes) says the band is left: inside the band ``rebalance()`` only reads and returns
        "none", so skipping it changes nothing but the ledger read of live pairs it starts with."""
        if self.collateral_gate and not await self._band_left():
            self._treasury_quiet = True
            return
        self.treasury_runs += 1
        self._open_intents = None
        outcome = await self.core.treasury.rebalance()
        self._treasury_quiet = outcome.action == "none"
        if not self._treasury_quiet:
            self._dirty = True
            await self._refresh_pairs()

    async def _band_left(self) -> bool:
        """``Treasury.collateral()``'s margin balance and short notional, with the live pairs this loop
        keeps in step with the ledger instead of a ledger read; True when a transfer would be needed."""
        fa = self.core.exchange.futures_account()
        notional, _ = self._live_short_notional(fa)
        return transfer_need(fa.total_margin_balance, notional, self.core.treasury.band) is not None

    async def state(self, t: int) -> TickState:
        """Equity, collateral ratio and short notional at ``t``: the values the venue reads give
        (``fetch_balances``, ``fetch_positions``, ``fetch_futures_account``), from one sim reading."""
        fa = self.core.exchange.futures_account()
        equity = self._capital_from(fa)
        notional, held = self._live_short_notional(fa) if self._live else (ZERO, [])
        ratio = float(fa.total_margin_balance / notional) if notional > 0 else float("nan")
        return TickState(float(equity), ratio, float(notional), held)

    async def snapshot_balances(self, t: int) -> None:
        balances = await self.core.venue.fetch_balances()
        self._last_balances = balances
        await self.core.ledger.record_balance_snapshots(self.balance_rows(t, balances))
        prices = self.prices_event(t)
        if prices is not None:
            await self.core.ledger.add_events([prices])

    def prices_event(self, t: int) -> EventRecord | None:
        """While pairs are held, the prices the snapshot is worth at (spot, perp mark), as the daemon
        records them, so ``fundbot report`` reconciles equity at the snapshot's own prices."""
        prices: dict[str, str] = {}
        for sym in sorted(self._live):
            sid = exchange_id(sym)
            spot, mark = self.core.exchange.price("spot", sid), self.core.exchange.price("mark", sid)
            if spot is not None:
                prices[sym] = str(spot)
            if mark is not None:
                prices[perp_symbol(sym)] = str(mark)
        if not prices:
            return None
        return EventRecord(
            EventKind.INFO,
            "prices: " + ", ".join(f"{k} {v}" for k, v in prices.items()),
            ts_ms=t,
            details={"prices": prices},
        )

    async def snapshot_balances_batch(self, times: list[int]) -> None:
        if not self._last_balances:
            self._last_balances = await self.core.venue.fetch_balances()
        rows = [row for t in times for row in self.balance_rows(t, self._last_balances)]
        await self.core.ledger.record_balance_snapshots(rows)

    def balance_rows(self, t: int, balances: list[Any]) -> list[tuple[str, Wallet, int, dict[str, AssetBalance]]]:
        """One ledger snapshot row set per wallet, as ``Ledger.record_balance_snapshots`` takes them."""
        by_wallet: dict[str, dict[str, AssetBalance]] = {"spot": {}, "futures": {}}
        for b in balances:
            by_wallet.setdefault(b.wallet, {})[b.asset] = AssetBalance(b.free, b.used, b.total)
        return [(self.venue_name, Wallet(wallet), t, assets or EMPTY_WALLET) for wallet, assets in by_wallet.items()]

    async def finish(self, end_ms: int) -> None:
        await self.core.ledger.add_event(
            EventKind.INFO,
            f"{BACKTEST_FINISHED} ({self.strategy_name})",
            ts_ms=end_ms,
            details={"liquidations": self.core.liquidations()},
        )
