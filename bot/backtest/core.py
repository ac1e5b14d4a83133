"""The trading core of one backtest: the daemon's own ``Engine`` over the simulator, and the loop's calls.

``build_core`` wires what ``fundbot run`` wires (``bot.engine.daemon.assemble_engine``: the same strategy,
executor, treasury and reconciler) over ``SimVenue``/``SimExchange`` on a ``ManualClock``, and starts the
engine as the daemon does (markets, leverage and margin mode, reconciliation). Only the clock and the
sleep (instant: simulated time does not pass while an order is followed up) differ from live.

``EngineLoop`` calls the engine's jobs (``scan``, ``sync_funding``, ``check_collateral``,
``snapshot_balances``, ``reconcile``) at the simulated instants the backtest loop chooses. What only a
backtest knows reaches the engine through its public hooks, never as a copy of its rules: the holes in
the history (``Engine.unavailable``, ``Engine.no_entry``, ``Engine.exit_pairs``), and a liquidation the
simulator applied, delivered as the daemon's user stream delivers one (``UserStreamHandler``), then the
daemon's reconciliation. The loop also keeps the few readings its shortcuts need (held pairs, whether the
treasury and the intents are quiet) and reads the timeline row from the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.backtest.data import Dataset, unified_symbol
from bot.backtest.minute import MinuteOverlay
from bot.backtest.params import build_strategy
from bot.config import EngineConfig, Settings
from bot.domain import DAY_MS, ZERO, Leg, Side, exchange_id
from bot.engine.core import Engine
from bot.engine.daemon import assemble_engine
from bot.engine.snapshot import SnapshotBuilder
from bot.engine.user_stream import UserStreamHandler
from bot.ledger.memory import MemoryLedger
from bot.ledger.models import EventKind
from bot.ledger.reads import BACKTEST_FINISHED
from bot.ledger.recorder import Recorder
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.records import SimEvent
from bot.sim.source import HistoryReplay
from bot.treasury.maths import transfer_need
from bot.venues.base import ForcedClose, VenueFill
from strategies.base import Action, PairView, Strategy

HISTORY_LEAD_MS = 32 * DAY_MS  # funding history the first snapshot needs from before the window
PASSIVE = (Action.HOLD, Action.SKIP)
EXIT_DATA_GAP = "exit_data_gap"  # the decision rule of a pair closed before a hole in its data


async def _instant(_seconds: float) -> None:
    """Simulated time does not pass while execution waits; the sim answers at once."""


def _passing(clock: ManualClock, exchange: SimExchange) -> Callable[[float], Awaitable[None]]:
    """A pause during which simulated time passes: the clock moves and the simulator steps (resting
    orders fill when the replayed price trades through them)."""

    async def pause(seconds: float) -> None:
        clock.advance(int(seconds * 1000))
        exchange.step()

    return pause


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
    engine: Engine
    funding_seen: list[SimEvent] = field(default_factory=list)  # settlements since the last funding sync
    liquidated: list[SimEvent] = field(default_factory=list)  # not yet handed to the engine
    _liquidations: int = 0
    sim_events: int = 0

    @property
    def strategy(self) -> Any:
        return self.engine.strategy

    @property
    def treasury(self) -> Any:
        return self.engine.treasury

    @property
    def builder(self) -> SnapshotBuilder:
        return self.engine.builder

    def on_event(self, ev: SimEvent) -> None:
        self.sim_events += 1
        if ev.kind == "liquidation":
            self._liquidations += 1
            self.liquidated.append(ev)
        elif ev.kind == "funding":
            self.funding_seen.append(ev)

    def liquidations(self) -> int:
        return self._liquidations

    async def close(self) -> None:
        await self.venue.close()
        await self.ledger.close()


def backtest_settings(spec: Any, ds: Dataset) -> Settings:
    """The daemon settings a backtest runs with: its strategy, execution and treasury parameters, the
    fees it simulates, its capital limit, and as leverage the one the strategy sizes its collateral for
    (the daemon's config check asks the operator to keep them equal), rounded up to the whole number the
    venue takes, so initial margin never exceeds what it funds."""
    p, opts = spec.params, spec.params.options
    return Settings(
        _env_file=None,
        symbols=[s.unified for s in ds.series.values()],
        strategy=p.strategy,
        execution=p.execution,
        treasury=p.treasury,
        engine=EngineConfig(
            leverage=math.ceil(p.strategy.perp_leverage),
            margin_mode="cross",
            spot_maker_fee=opts.spot_fee_rate,
            spot_taker_fee=opts.spot_fee_rate,
            perp_maker_fee=opts.perp_maker_fee_rate,
            perp_taker_fee=opts.perp_taker_fee_rate,
            capital_limit=opts.capital_limit,
        ),
    )


async def build_core(spec: Any, ds: Dataset, db_path: Path, strategy: Strategy | None = None) -> Core:
    """The engine over the simulator, started one millisecond before the window (the opening balances
    are snapshotted there, before the first hour trades). ``strategy``: one of the caller's own instead
    of the one ``spec.strategy`` names."""
    from bot.venues.sim_venue import SimVenue

    ids = list(ds.series)
    replay = HistoryReplay(ds.data_dir, ids, ds.start_ms - HISTORY_LEAD_MS, ds.end_ms)
    source = MinuteOverlay.from_files(replay, ds.data_dir, ds.minute_windows) if ds.minute_windows else replay
    clock = ManualClock(ds.start_ms - 1)
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
    # Maker style works resting orders: its pauses must let simulated time (and the price) move.
    pause = _passing(clock, exchange) if spec.params.execution.style == "maker" else _instant
    strategy = strategy or build_strategy(spec.strategy, spec.params.strategy)
    engine = assemble_engine(backtest_settings(spec, ds), venue, ledger, clock.now_ms, strategy=strategy, sleep=pause)
    core = Core(ds, clock, source, exchange, venue, ledger, url, engine)
    exchange.subscribe(core.on_event)
    await engine.start()
    return core


def forced_close(ev: SimEvent) -> ForcedClose:
    """A simulator liquidation as the user stream delivers it: the forced order and its trade, whose fee
    is the clearance fee the venue took."""
    trade, order = ev.data["trade"], ev.data["order"]
    assert ev.symbol is not None, "a liquidation names its symbol"
    symbol = unified_symbol(ev.symbol)
    side = Side.BUY if trade.side == "BUY" else Side.SELL
    fill = VenueFill(
        venue_trade_id=str(trade.trade_id),
        venue_order_id=str(trade.order_id),
        client_order_id=order.client_order_id,
        symbol=symbol,
        leg=Leg.PERP,
        side=side,
        qty=trade.qty,
        price=trade.price,
        fee=ev.data["fee"],
        fee_asset="USDT",
        is_maker=False,
        ts_ms=trade.time_ms,
    )
    return ForcedClose(
        symbol,
        "liquidation",
        str(order.order_id),
        order.client_order_id,
        side,
        trade.qty,
        ev.data["price"],
        ev.time_ms,
        fill,
    )


class EngineLoop:
    """The engine's jobs at simulated instants (see the module docstring)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.engine = core.engine
        self.stream = UserStreamHandler(core.engine)
        self.live: dict[str, PairView] = {}  # the ledger's live pairs after the last job that may change them
        self.treasury_quiet = True  # the last collateral check moved nothing
        self._open_intents: bool | None = None  # cached ledger answer; only jobs that trade change intents
        self.treasury_runs = 0
        self.collateral_gate = True  # run the treasury only when the band is left (see check_collateral)

    @property
    def strategy_name(self) -> str:
        return str(getattr(self.core.strategy, "name", type(self.core.strategy).__name__))

    async def open_intents(self) -> bool:
        """Some order or transfer intent is not settled (as of the last job that may open one)."""
        if self._open_intents is None:
            self._open_intents = bool(await self.core.ledger.open_intents())
        return self._open_intents

    async def idle(self) -> bool:
        """Flat: no live pair, no open order anywhere, and the treasury had nothing left to do."""
        if self.live or not self.treasury_quiet:
            return False
        return not await self.open_intents()

    async def refresh(self) -> None:
        """Re-read the live pairs and forget the intents answer: a job may have traded."""
        self._open_intents = None
        self.live = {p.symbol: p for p in await self.engine.pair_views()}

    async def step(self, t: int) -> None:
        """Simulated time to ``t``; a liquidation on the way goes to the engine as the daemon gets it."""
        t = max(t, self.core.clock.now_ms())  # a maker action's pauses may have moved time past t
        self.core.clock.set(t)
        self.core.exchange.step(t)
        if self.core.liquidated:
            await self._after_liquidation()

    async def _after_liquidation(self) -> None:
        """The venue closed a short: the user stream's handling (an alert, the pair quarantined, the
        venue's closing trade recorded against it), then the daemon's reconciliation."""
        events, self.core.liquidated[:] = list(self.core.liquidated), []
        for ev in events:
            await self.stream.handle(forced_close(ev))
        await self.engine.reconcile()
        await self.refresh()

    async def sync_funding(self) -> None:
        """The engine's funding sync, when the venue settled funding since the last one (else it would
        read an income history with nothing new)."""
        if not self.core.funding_seen:
            return
        self.core.funding_seen.clear()
        await self.engine.sync_funding()

    async def scan(self, no_data: dict[str, str], no_entry: dict[str, str]) -> None:
        """The engine's scan, told which symbols have no data now and which must not open or grow."""
        self.engine.unavailable = no_data
        self.engine.no_entry = no_entry
        targets = await self.engine.scan()
        if any(t.action not in PASSIVE for t in targets):  # holds and skips trade nothing (the executor's noop)
            await self.refresh()

    def held(self) -> set[str]:
        """Symbols of the live pairs (as of the last ledger read)."""
        return set(self.live)

    async def exit_before_gaps(self, gaps: dict[str, str]) -> None:
        """Close the held pairs whose data has a hole ahead (``gaps``: symbol -> why). Across missing data
        a pair could only be valued at stale prices and margined blind, so the backtest never holds one
        through it."""
        await self.engine.exit_pairs(gaps, EXIT_DATA_GAP)
        await self.refresh()

    async def check_collateral(self) -> None:
        """The engine's collateral and hedge check.

        With ``collateral_gate`` on, it runs only when the treasury's own rule (``transfer_need`` on the
        readings it takes) says the band is left: inside the band ``rebalance()`` only reads and returns
        "none", and the check's alerts go to an alerter a backtest does not have."""
        if self.collateral_gate and not self._band_left():
            self.treasury_quiet = True
            return
        self.treasury_runs += 1
        outcome = await self.engine.check_collateral()
        self.treasury_quiet = outcome is None or outcome.action == "none"
        self._open_intents = None
        if outcome is not None and outcome.action not in ("none", "to_futures", "to_spot"):
            await self.refresh()  # a reduction traded the pairs down; a transfer leaves them as they are

    def _band_left(self) -> bool:
        """``Treasury.collateral()``'s margin balance and short notional from one simulator reading, with
        the live pairs this loop keeps in step with the ledger; True when a transfer would be needed."""
        fa = self.core.exchange.futures_account()
        notional, _ = self._live_short_notional(fa)
        return transfer_need(fa.total_margin_balance, notional, self.core.treasury.band) is not None

    def _capital_from(self, fa: Any) -> Decimal:
        """Equity in USDT from a futures-account reading taken at this instant: spot assets at the replayed
        spot price (the last known one through a gap) plus the futures margin balance."""
        ex = self.core.exchange
        total = ZERO
        for asset, (free, locked) in sorted(ex.spot_account().balances.items()):
            amount = free + locked
            if not amount:
                continue
            if asset == "USDT":
                total += amount
            else:
                total += amount * (ex.last_known_price("spot", f"{asset}USDT") or ZERO)
        return total + fa.total_margin_balance

    def _live_short_notional(self, fa: Any) -> tuple[Decimal, list[str]]:
        """Sum of |qty| * mark over the live pairs' open positions (sim symbol order, as
        ``fetch_positions`` returns them), and those pairs' symbols."""
        live = {exchange_id(s): s for s in self.live}
        order = {sid: k for k, sid in enumerate(self.core.exchange.symbols)}
        rows = sorted((r for r in fa.positions if r.symbol in live and r.position_amt), key=lambda r: order[r.symbol])
        notional = sum((abs(r.position_amt) * r.mark_price for r in rows), ZERO)
        return notional, [live[r.symbol] for r in rows]

    async def state(self, t: int) -> TickState:
        """Equity, collateral ratio and short notional at ``t`` (the timeline row): the values the venue
        reads give (``fetch_balances``, ``fetch_positions``, ``fetch_futures_account``), from one sim reading."""
        fa = self.core.exchange.futures_account()
        equity = self._capital_from(fa)
        notional, held = self._live_short_notional(fa) if self.live else (ZERO, [])
        ratio = float(fa.total_margin_balance / notional) if notional > 0 else float("nan")
        return TickState(float(equity), ratio, float(notional), held)

    async def snapshot_balances(self) -> None:
        await self.engine.snapshot_balances()

    async def finish(self, end_ms: int) -> None:
        await self.core.ledger.add_event(
            EventKind.INFO,
            f"{BACKTEST_FINISHED} ({self.strategy_name})",
            ts_ms=end_ms,
            details={"liquidations": self.core.liquidations()},
        )
