"""The engine: the daemon's job functions, shared by the live scheduler and the backtest loop.

Each job reads the venue, decides, acts through the executor or the treasury, and writes what it saw
and did to the ledger. Jobs never raise into the scheduler: a failure is classified, recorded as an
error event, counted for /metrics, and the next run tries again.

Jobs:
- ``scan``: premium index and books -> strategy -> decisions (ledger) -> targets executed (exits and
  hedge repairs first, then entries by score), then the spot dust of closed pairs swept once it passes
  the market's minimum order (``bot.execution.dust``). Entries stop when close-only is on or shutdown started.
  The operator's controls (``bot.ledger.controls``) are read from the ledger at every scan: close-only,
  per-symbol pause (no entries or increases there; a held pair is kept), exit requests (the pair is
  closed through the executor, the operator's reason in the decision, then the request is marked done)
  and the capital limit (the ledger's value, when set, replaces ``engine.capital_limit``).
  A caller that knows more than the venue says (the backtest, which sees the holes in its history
  ahead) sets ``unavailable`` (symbols with no market data now: not read, not traded, reported once as
  ``unavailable``) and ``no_entry`` (symbols where no pair may open or grow now, with why; a held pair is
  kept, as for a paused symbol), and closes pairs for its own reasons with ``exit_pairs``.
- ``check_collateral``: treasury band and hedge drift (also run when a mark price moves far).
  Execution, collateral transfers and reconciliation hold ``account_lock``: a transfer decided while an
  entry is half done would see its pre-funded margin as idle and move it away.
- ``sync_funding``: funding income since the last synced settlement, idempotent, with backfill after
  downtime; an alert when a held pair's payment is missing well after a settlement.
- ``snapshot_balances`` (balances, plus perp positions with their liquidation prices for ``status``)
  and ``reconcile``.

Each executed entry and exit is also handed to ``on_trade`` (the daemon's notifier, ``bot.services.notify``).

Rate limits: a 429/418 from the venue trips the ``RateGate`` (the daemon's venue is a ``GatedVenue``:
every caller's calls wait while it is closed); every job skips while it is closed (one ``rate_limit``
event, plus an alert for an IP ban, per pause), so the bot never keeps calling a venue that asked it to
stop. Dry-run: a start carries on the ledger's paper account (rebuilt from the ledger, see
``bot.venues.paper_account``); when a new one opens (``run --dry-run --fresh``), pairs the ledger still
holds from an earlier paper account are closed at start with a note (``fresh_account``) instead of being
quarantined against an account that is no longer traded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import TypeVar

from bot.config import EngineConfig, TreasuryConfig, UniverseConfig
from bot.domain import HOUR_MS, ZERO, Leg, PairState, common_step, legs_equal
from bot.engine.costs import DAY_MS, AccountCosts, CostResolver
from bot.engine.ratelimit import RateGate, banned_until_ms, wall_s
from bot.engine.snapshot import FeeSchedule, SnapshotBuilder
from bot.engine.universe import exit_reason, status_problem
from bot.execution.dust import DustSweeper
from bot.execution.executor import ExecutionResult, Executor, SimpleTarget
from bot.execution.ordering import order_targets
from bot.ledger.controls import Controls, ExitRequest
from bot.ledger.models import (
    Control,
    ControlKind,
    EventKind,
    FundingSource,
    IntentKind,
    IntentStatus,
    RateKind,
    Wallet,
)
from bot.ledger.recorder import Recorder
from bot.ledger.repository import EMPTY_WALLET, AssetBalance, EventRecord, FundingRecord
from bot.reconcile import Reconciler, ReconcileReport
from bot.services.alerts import Alerter
from bot.services.health import HealthState
from bot.treasury.bnb import BNB, BnbKeeper
from bot.treasury.service import RebalanceOutcome, Treasury
from bot.venues.base import FundingInfo, FuturesAccount, PairMarkets, Position, Venue, WalletBalance
from bot.venues.errors import Backoff, ErrorClass, classify, retry_after_s, safe_error_text
from strategies.base import Action, Fees, Limits, PairView, Reason, Snapshot, Strategy, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

ACTIVE = (PairState.OPENING, PairState.OPEN, PairState.REBALANCING, PairState.CLOSING)
ENGINE_SOURCE = "engine"  # who marks an exit request done
START_FLAG_SOURCE = "run --close-only"


def fee_schedule(cfg: EngineConfig) -> FeeSchedule:
    return FeeSchedule(
        spot=Fees(maker=cfg.spot_maker_fee, taker=cfg.spot_taker_fee),
        perp=Fees(maker=cfg.perp_maker_fee, taker=cfg.perp_taker_fee),
    )


class StartFailed(RuntimeError):
    """Start-up could not read the venue within ``engine.start_retry_s``; the message is one line."""


async def retry_at_start(read: Callable[[], Awaitable[T]], retry_s: float, what: str, ban_margin_s: float = 1.0) -> T:
    """``read()`` retried with backoff while the venue answers transiently (5xx, -1008, timeouts, rate
    limits) for at most ``retry_s`` real seconds; then ``StartFailed``. An IP ban that outlasts the budget
    is raised as it is, at once: waiting cannot help. The one retry rule of every read a start makes."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    delays = Backoff(base_s=1.0, cap_s=15.0).delays(random.Random(0), 1_000_000)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await read()
        except Exception as exc:
            if not classify(exc).retryable:
                raise
            wait = next(delays)
            ban_ms = banned_until_ms(exc)
            if ban_ms is not None:
                wait = max(wait, ban_ms / 1000 - wall_s() + ban_margin_s)
            spent = loop.time() - began
            if spent + wait > retry_s:
                if ban_ms is not None:
                    raise
                raise StartFailed(
                    f"the venue kept failing at start for {spent:.0f}s ({attempt} attempts; "
                    f"FUNDBOT_ENGINE__START_RETRY_S={retry_s:g}): {safe_error_text(exc)}"
                ) from exc
            log.warning("%s attempt %d failed, retrying in %.1fs: %s", what, attempt, wait, safe_error_text(exc))
            await asyncio.sleep(wait)


@dataclass
class Engine:
    """Holds the parts; see the module docstring for what each job does."""

    venue: Venue
    ledger: Recorder
    strategy: Strategy
    executor: Executor
    treasury: Treasury
    reconciler: Reconciler
    symbols: list[str]
    now: Callable[[], int]
    config: EngineConfig = field(default_factory=EngineConfig)
    health: HealthState | None = None
    alerter: Alerter | None = None
    close_only: bool = False  # at construction: turn close-only on at start; then: as read at the last scan
    fresh_account: bool = False
    on_trade: Callable[[Target, ExecutionResult], Awaitable[None]] | None = None  # entries/exits (notifications)
    gate: RateGate = field(default_factory=RateGate)
    builder: SnapshotBuilder = field(init=False)
    dust: DustSweeper = field(init=False)
    accepting_entries: bool = True
    last_rule: dict[str, str] = field(default_factory=dict)
    last_funding: dict[str, FundingInfo] = field(default_factory=dict)
    last_marks: dict[str, Decimal] = field(default_factory=dict)
    controls: Controls = field(default_factory=Controls)
    unavailable: dict[str, str] = field(default_factory=dict)  # symbol -> why: no market data now
    no_entry: dict[str, str] = field(default_factory=dict)  # symbol -> why: no pair opens or grows now
    _income_synced_ms: int | None = None
    _alerted_missing: set[tuple[str, int]] = field(default_factory=set)
    _positions_recorded: dict[str, tuple[Decimal, Decimal | None]] = field(default_factory=dict)
    skipped_jobs: dict[str, int] = field(default_factory=dict)
    account_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    costs: AccountCosts | None = None  # the account's rates as last read (``refresh_costs``)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    delisting: dict[str, str] = field(default_factory=dict)  # symbol -> why its listing stops the pair
    _listings_ms: int | None = None
    bnb: BnbKeeper = field(init=False)
    _cost_resolver: CostResolver = field(init=False)

    def __post_init__(self) -> None:
        self.builder = SnapshotBuilder(self.venue, self.symbols, fee_schedule(self.config), self.config.book_depth)
        self.dust = DustSweeper(self.executor, self.reconciler)
        self._cost_resolver = CostResolver(self.config, self.executor.config)
        self.bnb = BnbKeeper(self.executor, getattr(self.treasury, "config", None) or TreasuryConfig())

    # -- start -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Markets, leverage and margin mode (idempotent), then a full reconciliation before any trading.
        The reads are retried on transient errors for ``engine.start_retry_s`` (see ``_start_reads``)."""
        markets, report = await self._start_reads()
        for symbol, why in self.builder.skipped.items():
            await self._event(EventKind.INFO, f"{symbol} not traded: {why}", symbol=symbol)
        for symbol in report.quarantined:
            if self.alerter is not None:
                await self.alerter.pair_quarantined(symbol, "reconciliation at start could not explain it")
        await self.finish_interrupted()
        if self.close_only:  # `run --close-only` is the switch itself, so it outlives this run
            await self.ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=self.now(), source=START_FLAG_SOURCE)
        await self.refresh_controls()
        await self._event(
            EventKind.INFO,
            f"engine started on {self.venue.name}: {len(markets)} symbols, leverage {self.config.leverage}x "
            f"{self.config.margin_mode}, close-only {'on' if self.close_only else 'off'}",
            details={"symbols": sorted(markets)},
        )

    async def _start_once(self) -> tuple[dict[str, PairMarkets], ReconcileReport]:
        markets = await self.builder.load_markets()
        self.reconciler.symbols = sorted(markets)  # never ask the venue about a symbol it does not list
        await self.refresh_costs()
        for symbol in markets:
            # the setting's pattern admits only MarginMode's values (cross|isolated)
            await self.venue.setup_symbol(symbol, self.config.leverage, self.config.margin_mode)  # type: ignore[arg-type]
        await self._ok()
        if self.fresh_account:
            await self._forget_previous_account()
        return markets, await self.reconciler.run()

    async def _start_reads(self) -> tuple[dict[str, PairMarkets], ReconcileReport]:
        """``_start_once`` (idempotent) retried by ``retry_at_start``."""
        return await retry_at_start(self._start_once, self.config.start_retry_s, "start", self.gate.margin_s)

    async def finish_interrupted(self) -> None:
        """After a crash, finish what an interrupted action left before anything else trades: a pair caught
        opening, rebalancing or closing (or holding unequal legs) is brought to its recorded target (0 when
        closing), so no leg stays naked until the next scan. Completing the hedge is preferred to
        unwinding: it costs one leg's fees, not two."""
        states = (PairState.OPENING, PairState.REBALANCING, PairState.CLOSING, PairState.OPEN)
        unsettled = await self._symbols_with_unsettled_orders()
        for p in await self.ledger.list_pairs(states, venue=self.venue.name):
            if p.symbol not in self.builder.markets or p.symbol in unsettled:
                continue  # an order still in flight: its pair's legs are not known yet
            pm = self.builder.markets[p.symbol]
            step = common_step(pm.spot.step_size, pm.perp.step_size)
            unequal = not legs_equal(p.spot_qty, p.perp_qty, step, self.executor.config.spot_fee_in_base)
            if p.state is PairState.OPEN and not unequal:
                continue
            target = ZERO if p.state is PairState.CLOSING else p.target_qty
            await self._event(
                EventKind.DECISION,
                f"{p.symbol}: finishing an interrupted {p.state.value} (spot {p.spot_qty.normalize():f}, "
                f"short {p.perp_qty.normalize():f}) -> {target.normalize():f}",
                symbol=p.symbol,
                pair_id=p.id,
                details={"rule": "finish_interrupted", "target_qty": str(target)},
            )
            await self._execute(SimpleTarget(p.symbol, target, "finish interrupted action"))

    async def _forget_previous_account(self) -> None:
        """A new paper account (named for this run): pairs held by earlier paper accounts are closed as
        gone and their unsettled intents cancelled."""
        for intent in await self.ledger.open_intents():
            await self.ledger.set_intent_status(
                intent.client_id, IntentStatus.CANCELLED, now_ms=self.now(), error="paper account reset at start"
            )
        stale = [
            p
            for p in await self.ledger.list_pairs((*ACTIVE, PairState.QUARANTINED))
            if p.venue.startswith("paper") and p.venue != self.venue.name
        ]
        for p in stale:
            note = f"paper account reset: the dry run opened a new paper account ({self.venue.name})"
            await self.ledger.set_pair_state(p.id, PairState.CLOSED, now_ms=self.now(), note=note)
            await self._event(
                EventKind.INFO,
                f"{p.symbol}: pair #{p.id} from an earlier dry run closed ({note})",
                symbol=p.symbol,
                pair_id=p.id,
                details={"spot_qty": str(p.spot_qty), "perp_qty": str(p.perp_qty)},
            )

    # -- the account's costs -----------------------------------------------------------------------------

    async def refresh_costs(self) -> AccountCosts:
        """Read the account's commission rates and BNB burn from the venue (at start, then daily) and trade
        with them: the strategy's cost model per symbol, the gross-up of spot buys (``bot.engine.costs``).
        With ``treasury.bnb_fees`` the account's spotBNBBurn is set to match the setting first."""
        want = self.bnb.enabled
        burn = await self.venue.fetch_bnb_burn()
        if burn != want:
            burn = await self.venue.set_bnb_burn(want)
            await self._event(
                EventKind.INFO,
                f"spot fees paid in BNB turned {'on' if burn else 'off'} (FUNDBOT_TREASURY__BNB_FEES)",
                details={"spot_bnb_burn": burn},
            )
        symbols = sorted(self.builder.markets) or list(self.symbols)
        rates = await self.venue.fetch_commission(symbols)
        costs = self._cost_resolver.resolve(rates, burn, self.now())
        unchanged = self.costs is not None and self.costs.details() == costs.details()
        self.apply_costs(costs)
        if unchanged:  # the daily re-read found the same rates: nothing new for the ledger
            return costs
        spot, perp = costs.fees.of(symbols[0]) if symbols else (costs.fees.spot, costs.fees.perp)
        await self._event(
            EventKind.INFO,
            f"account costs read from {self.venue.name} for {len(rates)} symbols: spot {spot.maker}/{spot.taker}, "
            f"perp {perp.maker}/{perp.taker} (maker/taker{', BNB pays spot fees' if burn else ''}); spot buys "
            f"grossed up by {costs.spot_fee_in_base}"
            + (f"; overridden by {', '.join(costs.overrides)}" if costs.overrides else ""),
            details=costs.details(),
        )
        return costs

    def apply_costs(self, costs: AccountCosts) -> None:
        """Trade with ``costs`` from now on: the scan's cost model, the executor's gross-up and the hedge
        tolerance reconciliation allows."""
        self.costs = costs
        self.builder.fees = costs.fees
        update = {"spot_fee_in_base": costs.spot_fee_in_base}
        self.executor.config = self.executor.config.model_copy(update=update)
        self.reconciler.config = self.reconciler.config.model_copy(update=update)
        self.reconciler.orphans.fee_slack = costs.spot_fee_in_base

    async def _costs_due(self) -> None:
        """Re-read the account's rates once a day (a failure is recorded; the last rates stay)."""
        if self.costs is not None and self.now() - self.costs.read_ms < DAY_MS:
            return
        try:
            await self.refresh_costs()
        except Exception as exc:
            await self._error("account_costs", exc)

    async def _keep_bnb(self, todo: list[Target] | None = None, snapshot: Snapshot | None = None) -> None:
        """With BNB paying spot fees: top the BNB up within its band before this scan trades, plus the spot
        fees its trades (``todo``, at the snapshot's mids and the BNB rate) are about to pay."""
        if not self.bnb.enabled or self.gate.paused():
            return
        try:
            await self.bnb.top_up(_upcoming_spot_fees(todo or [], snapshot, await self.pair_views()))
            book = await self.venue.fetch_order_book(f"{BNB}/USDT", Leg.SPOT, 5)
            if book.bids and book.asks:  # BNB worth up to twice the target is the fee reserve, never an orphan
                self.reconciler.orphans.reserved[BNB] = 2 * self.bnb.config.bnb_target_usdt / book.mid
        except Exception as exc:
            await self._error("bnb_topup", exc, symbol=f"{BNB}/USDT")

    async def _price_bnb_fees(self) -> None:
        """The BNB/USDT price the scan's BNB fees are valued at, into the ledger."""
        if not self.bnb.enabled:
            return
        try:
            await self.bnb.price_fees()
        except Exception as exc:
            await self._error("bnb_fee_prices", exc, symbol=f"{BNB}/USDT")

    # -- listings (delisting notices, status changes) ---------------------------------------------------

    async def check_listings(self, held: dict[str, PairView]) -> dict[str, str]:
        """Re-read the listings of the scanned symbols every ``universe.listing_check_s`` (exchangeInfo status
        and deliveryDate): a held pair whose listing ends (``bot.engine.universe.exit_reason``) is to be
        closed, and no pair is entered where the listing is not plain TRADING."""
        now = self.now()
        if self._listings_ms is not None and now - self._listings_ms < self.universe.listing_check_s * 1000:
            return self.delisting
        symbols = sorted(set(self.builder.symbols) | set(held))
        listings = await self.venue.fetch_listings(symbols)
        self._listings_ms = now
        found: dict[str, str] = {}
        for symbol in symbols:
            row = listings.get(symbol)
            why = exit_reason(row, self.universe, now) if symbol in held else None
            if why is None and row is not None:
                problem = status_problem(row, now)
                why = f"no entries: {problem}" if problem else None
            if why is not None:
                found[symbol] = why
        for symbol in sorted(set(found) - set(self.delisting)):
            await self._event(
                EventKind.INFO,
                f"{symbol}: listing changed: {found[symbol]}",
                symbol=symbol,
                details={"listing": found[symbol]},
            )
        self.delisting = found
        return found

    async def _apply_listings(self, targets: list[Target], held: dict[str, PairView]) -> list[Target]:
        """A held pair whose listing ends is closed with the reason; entries where it changed are skipped."""
        try:
            stops = await self.check_listings(held)
        except Exception as exc:  # the last listings stay in force; the next scan reads again
            await self._error("listings", exc)
            stops = self.delisting
        if not stops:
            return targets
        out = []
        for t in targets:
            why = stops.get(t.symbol)
            if why is None:
                out.append(t)
            elif t.symbol in held and not why.startswith("no entries"):
                out.append(_listing_exit(t, why, held[t.symbol]))
            elif t.action in (Action.ENTER, Action.RESIZE) and t.symbol not in held:
                out.append(Target(t.symbol, ZERO, _override(t, "listing_no_entry", why), Action.SKIP))
            else:
                out.append(t)
        seen = {t.symbol for t in targets}
        for symbol, why in sorted(stops.items()):
            if symbol in held and symbol not in seen and not why.startswith("no entries"):
                out.append(_listing_exit(None, why, held[symbol]))
        return out

    def venue_paused(self, job: str) -> bool:
        """True (and the job is skipped) while the venue's rate limit pause lasts."""
        if self.gate.paused():
            self.skipped_jobs[job] = self.skipped_jobs.get(job, 0) + 1
            return True
        return False

    # -- control ---------------------------------------------------------------------------------------

    async def refresh_controls(self) -> Controls:
        """The operator's controls as the ledger's ``controls`` table holds them now (never aged out)."""
        new = Controls.of(await self.ledger.controls())
        old, self.controls = self.controls, new
        if new.close_only != self.close_only:
            log.info("close-only %s (operator control)", "on" if new.close_only else "off")
        self.close_only = new.close_only
        if new.paused != old.paused:
            log.info("paused symbols: %s", ", ".join(sorted(new.paused)) or "none")
        if new.capital_limit != old.capital_limit:
            log.info("capital limit from the ledger: %s", new.capital_limit or "none (the setting applies)")
        return new

    def capital_limit(self) -> Decimal | None:
        """The ledger's capital limit when the operator set one, else the setting's."""
        return self.controls.capital_limit or self.config.capital_limit

    def stop_entries(self) -> None:
        """Shutdown has begun: no new pairs, no increases."""
        self.accepting_entries = False

    # -- scan ------------------------------------------------------------------------------------------

    async def pair_views(self) -> tuple[PairView, ...]:
        pairs = await self.ledger.list_pairs((*ACTIVE, PairState.QUARANTINED), venue=self.venue.name)
        return tuple(
            PairView(
                symbol=p.symbol,
                state=p.state,
                spot_qty=p.spot_qty,
                perp_qty=p.perp_qty,
                entry_ms=p.opened_ms,
                last_rule=self.last_rule.get(p.symbol),
                pair_id=p.id,
            )
            for p in pairs
        )

    async def equity(self, spot_prices: dict[str, Decimal]) -> Decimal:
        """Account equity in USDT: spot USDT, spot coins at ``spot_prices`` (spot symbol -> price), and the
        futures margin balance (which already holds the perp's unrealised PnL)."""
        balances, account = await asyncio.gather(self.venue.fetch_balances(), self.venue.fetch_futures_account())
        return _equity(balances, account, spot_prices)

    async def scan(self) -> list[Target]:
        """Funding scan, strategy evaluation and execution of the resulting targets.

        The venue reads a scan needs go out together (the premium index, both books of every symbol and
        the account's balances); what it saw and decided is committed in one ledger transaction before
        it trades; each entry then commits its legs' intents in one more and sends both legs at once."""
        if self.venue_paused("scan"):
            return []
        try:
            return await self._scan()
        finally:
            self.executor.use_quotes({}, self.now())  # the scan's book mids serve its own actions only

    async def _scan(self) -> list[Target]:
        await self._costs_due()
        controls, pairs = await asyncio.gather(self.refresh_controls(), self.pair_views())  # two reads at once
        if controls.orphan_requests:
            await self.answer_orphan_requests(controls.orphan_requests)
            controls, pairs = await asyncio.gather(self.refresh_controls(), self.pair_views())
        now = self.now()
        entries = self.accepting_entries and not controls.close_only
        with self._without_unavailable():
            (snapshot, funding), balances, account = await asyncio.gather(
                self.builder.build(now, pairs, ZERO, Limits(allow_entries=entries)),
                self.venue.fetch_balances(),
                self.venue.fetch_futures_account(),
            )
        # Capital from this scan's own prices: spot coins at the spot mid they would sell at now, so the
        # hedge cancels against the futures wallet's unrealised PnL (and a restart is not undervalued).
        equity = _equity(balances, account, {m.symbol: m.spot.mid for m in snapshot.markets})
        limit = self.capital_limit()
        capital = min(equity, limit) if limit else equity
        snapshot = replace(snapshot, capital=max(capital, ZERO))
        self.last_funding = funding
        for m in snapshot.markets:
            self.last_marks[m.symbol] = (m.perp.bid + m.perp.ask) / 2
        self.executor.use_quotes(
            {m.symbol: {Leg.SPOT: m.spot.mid, Leg.PERP: m.perp.mid} for m in snapshot.markets}, now
        )
        await self._ok(scan=True)
        rates = [
            {
                "venue": self.venue.name,
                "symbol": symbol,
                "funding_time_ms": info.next_funding_ms,
                "rate": info.predicted_rate,
                "kind": RateKind.PREDICTED,
                "observed_ms": now,
                "interval_hours": info.interval_hours,
            }
            for symbol, info in funding.items()
        ]
        decisions: list[EventRecord] = []
        for symbol, why in self.builder.skipped.items():
            if self.last_rule.get(symbol) != "unavailable":
                self.last_rule[symbol] = "unavailable"
                decisions.append(
                    EventRecord(
                        EventKind.DECISION,
                        f"{symbol}: not evaluated: {why}",
                        ts_ms=self.now(),
                        symbol=symbol,
                        details={"rule": "unavailable", "message": why},
                    )
                )
        held = {p.symbol: p for p in pairs}
        snapshot, withheld = _withhold_paused(snapshot, controls.paused | controls.orphans | self.no_entry.keys(), held)
        skips = [self._withheld_skip(s, controls) for s in withheld]
        targets = self.strategy.evaluate(snapshot) + skips
        targets = self._apply_controls(targets, controls, held)
        targets = await self._apply_listings(targets, held)
        decisions += [d for d in map(self._decision_record, targets) if d is not None]
        await self.ledger.record_scan(rates, decisions)  # what the scan saw and decided: one transaction
        todo = order_targets(targets, {p.symbol: p.hedged_qty for p in pairs})
        async with self.account_lock:
            # read under the lock: an order the collateral check or reconciliation left unsettled while
            # this scan waited for it is seen, and its pair is not traded on top of it
            unsettled = await self._symbols_with_unsettled_orders()
            await self._keep_bnb(todo, snapshot)
            await self._execute_all(todo, set(held), unsettled)
            await self._sweep_dust(unsettled)
            await self._price_bnb_fees()
        await self._finish_exits(controls.exits, held)
        await self._portfolio_gauges()
        return targets

    def _apply_controls(self, targets: list[Target], c: Controls, held: dict[str, PairView]) -> list[Target]:
        """The strategy's targets under the operator's controls; an exit request wins over everything."""
        pairs = tuple(held.values())
        if c.close_only:
            targets = [self._close_only(t, pairs) for t in targets]
        targets = [self._paused(t, held) if t.symbol in c.paused else t for t in targets]
        targets = [_no_increase(t, held, self.no_entry[t.symbol]) if t.symbol in self.no_entry else t for t in targets]
        seen = {t.symbol for t in targets}
        exits = {r.symbol: r for r in c.exits if r.symbol in held and held[r.symbol].pair_id == r.pair_id}
        out = [_operator_exit(t, exits[t.symbol], held[t.symbol]) if t.symbol in exits else t for t in targets]
        return out + [_operator_exit(None, r, held[s]) for s, r in sorted(exits.items()) if s not in seen]

    @staticmethod
    def _paused(t: Target, held: dict[str, PairView]) -> Target:
        """A held pair of a paused symbol is kept, not grown: exits, reductions, holds and hedge repairs stand.
        (A paused symbol not held never reaches the strategy: ``_withhold_paused``.)"""
        pair = held.get(t.symbol)
        if pair is not None and t.action is Action.RESIZE and t.target_qty > pair.hedged_qty:
            why = _override(t, "operator_pause_no_increase", "paused by the operator: the pair is kept, not grown")
            return Target(t.symbol, pair.hedged_qty, why, Action.HOLD)
        return t

    def _withheld_skip(self, symbol: str, c: Controls) -> Target:
        if symbol in c.orphans:
            return _orphan_skip(symbol)
        if symbol in c.paused:
            return _paused_skip(symbol)
        return Target(symbol, ZERO, Reason("no_entry", f"no entry: {self.no_entry[symbol]}"), Action.SKIP)

    @contextlib.contextmanager
    def _without_unavailable(self) -> Iterator[None]:
        """While the snapshot is built, the builder reads only the symbols with market data now; the
        others count as skipped, so the scan reports each once (``unavailable``) and a held pair is only held."""
        symbols = self.builder.symbols
        if self.unavailable:
            self.builder.symbols = [s for s in symbols if s not in self.unavailable]
            self.builder.skipped.update(self.unavailable)
        try:
            yield
        finally:
            self.builder.symbols = symbols

    async def exit_pairs(self, why: dict[str, str], rule: str) -> None:
        """Close held pairs for reasons from outside the strategy (``why``: symbol -> reason; the backtest
        closes a pair before a hole in its data), each with its decision, through the executor as any exit.
        A quarantined pair waits for reconciliation or the operator, as for an operator exit."""
        if not why or self.venue_paused("exit"):
            return
        held = {p.symbol: p for p in await self.pair_views()}
        for symbol, reason in sorted(why.items()):
            pair = held.get(symbol)
            if pair is None or pair.state is PairState.QUARANTINED:
                continue
            t = Target(symbol, ZERO, Reason(rule, f"{rule}: {symbol} {reason}", {"message": reason}), Action.EXIT)
            await self._decision(t)
            async with self.account_lock:
                await self._execute(t)

    async def answer_orphan_requests(self, requests: tuple[Control, ...]) -> None:
        """The operator's adopt / close requests on orphan legs, carried out before the scan decides (an
        adopted pair is then held like any other)."""
        async with self.account_lock:
            for r in requests:
                try:
                    note = await self.reconciler.orphans.answer(r, self._close_orphan)
                except Exception as exc:  # the request stays waiting: the next scan tries again
                    await self._error("orphan request", exc, symbol=r.symbol)
                    continue
                await self._event(EventKind.INFO, f"{r.symbol}: {r.kind.value}: {note}", symbol=r.symbol)

    async def _close_orphan(self, symbol: str) -> None:
        await self._execute(SimpleTarget(symbol, ZERO, "operator close of orphan legs"))

    async def _finish_exits(self, requests: tuple[ExitRequest, ...], held: dict[str, PairView]) -> None:
        """Mark done the exit requests whose pair is now closed (by this scan, or before it)."""
        for r in requests:
            pair = await self.ledger.get_pair(r.pair_id) if r.pair_id is not None else None
            if pair is not None and pair.state is not PairState.CLOSED:
                continue  # still held (an order to settle, a failure, quarantine): the next scan tries again
            if pair is None:
                note = "no such pair in the ledger"
            elif r.symbol in held and held[r.symbol].pair_id == r.pair_id:
                note = f"pair #{pair.id} closed by the engine"
            else:
                note = f"pair #{pair.id} was already closed"
            await self.ledger.finish_request(r.control_id, now_ms=self.now(), source=ENGINE_SOURCE, note=note)

    async def _execute_all(self, todo: list[Target], held: set[str], unsettled: set[str]) -> None:
        for t in todo:
            if self.gate.paused():  # a rate limit met mid-scan: stop; the next scan picks up from the ledger
                break
            if t.action in (Action.ENTER, Action.RESIZE) and not self.accepting_entries:
                continue
            if t.action is not Action.ENTER and t.symbol not in held:
                continue
            if t.symbol in unsettled:  # an order whose fate is open (a crash, a lost answer): reconcile first
                await self._waiting_for_reconcile(t.symbol)
                continue
            await self._execute(t)

    async def _sweep_dust(self, unsettled: set[str]) -> None:
        """Sell the spot dust the bot's closed pairs left once it passes the market's minimum order
        (``bot.execution.dust``); a symbol with an order still in flight waits for reconciliation."""
        if self.gate.paused():
            return
        try:
            await self.dust.sweep([s for s in self.builder.markets if s not in unsettled])
        except Exception as exc:
            await self._error("dust_sweep", exc)

    async def _symbols_with_unsettled_orders(self) -> set[str]:
        """Symbols with an order or cancel intent still pending, sent or unknown.

        Trading such a pair could duplicate an order that is still in flight (a request may execute until
        its recvWindow runs out); reconciliation settles the intent first.
        """
        return {
            str(i.payload.get("symbol"))
            for i in await self.ledger.open_intents([IntentKind.ORDER, IntentKind.CANCEL])
            if i.payload.get("symbol")
        }

    async def _waiting_for_reconcile(self, symbol: str) -> None:
        if self.last_rule.get(symbol) == "await_reconcile":
            return
        self.last_rule[symbol] = "await_reconcile"
        await self._event(
            EventKind.DECISION,
            f"{symbol}: not traded until reconciliation settles its open order intents",
            symbol=symbol,
            details={"rule": "await_reconcile"},
        )

    def _close_only(self, t: Target, pairs: tuple[PairView, ...]) -> Target:
        """Close-only: no entries or increases; held pairs wind down, except just before a paying settlement."""
        held = {p.symbol: p for p in pairs}
        if t.symbol not in held:
            if t.action is Action.ENTER:
                return Target(
                    t.symbol, ZERO, _override(t, "close_only_no_entry", "close-only: entry suppressed"), Action.SKIP
                )
            return t
        if t.action is Action.EXIT or t.reason.rule.startswith("hold_settlement"):
            return t
        if held[t.symbol].state is PairState.QUARANTINED:
            return t
        return Target(t.symbol, ZERO, _override(t, "close_only_exit", "close-only: winding the pair down"), Action.EXIT)

    async def _decision(self, t: Target) -> None:
        """Record a decision when it trades or when the rule for the symbol changed (not every hold)."""
        record = self._decision_record(t)
        if record is not None:
            await self.ledger.add_events([record])

    def _decision_record(self, t: Target) -> EventRecord | None:
        """The decision event of ``t`` when it trades or the rule for the symbol changed (else None)."""
        rule = t.reason.rule
        if t.action in (Action.HOLD, Action.SKIP) and self.last_rule.get(t.symbol) == rule:
            return None
        self.last_rule[t.symbol] = rule
        return EventRecord(
            EventKind.DECISION,
            f"{t.symbol} {t.action.value} -> {t.target_qty.normalize():f}: {t.reason.message}",
            ts_ms=self.now(),
            symbol=t.symbol,
            details={"action": t.action.value, "target_qty": str(t.target_qty), **t.reason.to_dict()},
        )

    async def _execute(self, t: Target | SimpleTarget) -> None:
        try:
            result = await self.executor.apply(t)
        except Exception as exc:
            await self._error("execution", exc, symbol=t.symbol)
            return
        if result.status == "quarantined" and self.alerter is not None:
            await self.alerter.pair_quarantined(
                t.symbol, "; ".join(result.errors) or "legs could not be made equal", pair_id=result.pair_id
            )
        if self.on_trade is not None and isinstance(t, Target) and t.action in (Action.ENTER, Action.EXIT):
            if result.status in ("noop", "blocked"):
                return  # nothing was traded
            try:
                await self.on_trade(t, result)
            except Exception:  # a notification never breaks trading
                log.exception("on_trade hook failed for %s", t.symbol)

    # -- collateral and hedge -------------------------------------------------------------------------

    async def check_collateral(self) -> RebalanceOutcome | None:
        """The treasury's rebalance and the alerts on its outcome; returns that outcome (None: skipped)."""
        if self.venue_paused("collateral"):
            return None
        async with self.account_lock:  # never while an entry is half done: its pre-funded margin looks idle
            outcome = await self.treasury.rebalance()
        await self._ok()
        after = outcome.after or outcome.before
        ratio = after.ratio
        band = self.treasury.band
        if ratio is not None and ratio < band.low and self.alerter is not None:
            await self.alerter.collateral_below_band(ratio, band.low, after.margin_balance, after.short_notional)
        tolerance = self.config.hedge_alert_fraction
        open_pairs = await self.ledger.list_pairs((PairState.OPEN,), venue=self.venue.name) if self.alerter else []
        for p in open_pairs:
            base = max(p.spot_qty, p.perp_qty)
            if base > 0 and abs(p.spot_qty - p.perp_qty) / base > tolerance and self.alerter is not None:
                await self.alerter.hedge_drift(p.symbol, p.spot_qty, p.perp_qty, tolerance, pair_id=p.id)
        await self._portfolio_gauges(ratio)
        return outcome

    async def on_mark(self, symbol: str, mark: Decimal) -> bool:
        """True when the move since the last check is large enough to run the collateral check now."""
        last = self.last_marks.get(symbol)
        self.last_marks[symbol] = mark
        if last is None or last == 0:
            return False
        return abs(mark - last) / last * 10_000 >= self.config.mark_trigger_bps

    # -- funding ---------------------------------------------------------------------------------------

    async def sync_funding(self) -> int:
        """Record funding income since the last synced payment (backfills after downtime); returns new rows."""
        if self.venue_paused("funding"):
            return 0
        now = self.now()
        if self._income_synced_ms is None:
            payments = await self.ledger.list_funding_payments(venue=self.venue.name)
            pairs = await self.ledger.list_pairs(venue=self.venue.name)
            first = min((p.opened_ms for p in pairs), default=now)
            self._income_synced_ms = payments[-1].funding_time_ms + 1 if payments else first - HOUR_MS
        incomes = await self.venue.fetch_funding_income(None, since_ms=self._income_synced_ms)
        await self._ok()
        pairs = await self.ledger.list_pairs(venue=self.venue.name) if incomes else []
        pair_by_symbol = {p.symbol: p for p in pairs}
        records: list[tuple[FundingRecord, str]] = []
        for inc in sorted(incomes, key=lambda i: i.funding_time_ms):
            pair = pair_by_symbol.get(inc.symbol)
            rec = FundingRecord(
                venue=self.venue.name,
                account=self.venue.account,
                symbol=inc.symbol,
                funding_time_ms=inc.funding_time_ms,
                amount=inc.amount,
                source=FundingSource.INCOME,
                now_ms=now,
                asset=inc.asset,
                pair_id=pair.id if pair else None,
                position_size=pair.perp_qty if pair else None,
            )
            records.append((rec, inc.tran_id))
            self._income_synced_ms = max(self._income_synced_ms, inc.funding_time_ms + 1)
        new = await self._record_payments(records)
        await self._check_missing(now)
        return new

    async def _record_payments(self, records: list[tuple[FundingRecord, str]]) -> int:
        """Each payment (with its venue transaction id) and its funding event; returns how many were new.
        Settlements the ledger has not seen (the usual case) go in together, one transaction for the rows
        and one for their events; one it holds already (a repeat, or a computed estimate this income
        replaces) takes ``record_funding_payment``'s row-by-row rules."""
        if not records:
            return 0
        first, last = records[0][0].funding_time_ms, records[-1][0].funding_time_ms
        held = await self.ledger.list_funding_payments(since_ms=first, until_ms=last + 1, venue=self.venue.name)
        seen = {(p.account, p.symbol, p.funding_time_ms) for p in held}
        fresh: list[tuple[FundingRecord, str]] = []
        known: list[tuple[FundingRecord, str]] = []
        for rec, tran_id in records:
            key = (rec.account, rec.symbol, rec.funding_time_ms)
            (known if key in seen else fresh).append((rec, tran_id))
            seen.add(key)
        new = 0
        if fresh and await self.ledger.record_funding_payments([r for r, _ in fresh]) == len(fresh):
            new += len(fresh)
            await self.ledger.add_events([self._funding_event(r, tran_id) for r, tran_id in fresh])
        for rec, tran_id in known:
            if await self.ledger.record_funding_payment(**asdict(rec)):
                new += 1
                await self.ledger.add_events([self._funding_event(rec, tran_id)])
        return new

    def _funding_event(self, rec: FundingRecord, tran_id: str) -> EventRecord:
        ev = rec.event()
        details = {**(ev.details or {}), "tran_id": tran_id}
        return EventRecord(ev.kind, ev.message, ts_ms=self.now(), pair_id=ev.pair_id, symbol=ev.symbol, details=details)

    async def _check_missing(self, now: int) -> None:
        """Alert once per settlement when an open pair held through it and no payment arrived in the grace."""
        if self.alerter is None:
            return
        grace = int(self.config.funding_grace_s * 1000)
        for p in await self.ledger.list_pairs((PairState.OPEN,), venue=self.venue.name):
            fills = await self.ledger.list_fills(pair_id=p.id, limit=1)
            if not fills:
                continue
            held_from = fills[0].ts_ms  # the short must exist at the settlement instant to be paid
            settled = [
                r
                for r in await self.ledger.funding_rates(p.symbol, venue=self.venue.name)
                if held_from < r.funding_time_ms <= now - grace
            ]
            if not settled:
                continue
            last = max(r.funding_time_ms for r in settled)
            paid = await self.ledger.list_funding_payments(
                p.symbol, since_ms=last, until_ms=last + 1, venue=self.venue.name
            )
            key = (p.symbol, last)
            if not paid and key not in self._alerted_missing:
                self._alerted_missing.add(key)
                await self.alerter.funding_missing(p.symbol, last, p.perp_qty, pair_id=p.id)

    # -- snapshots and reconciliation -------------------------------------------------------------------

    async def snapshot_balances(self) -> None:
        """Wallet balances, perp positions (qty, entry, mark, liquidation price) and, while pairs are held,
        the prices the snapshot is worth at, all read together and written at the same instant, so
        ``status`` and ``report`` value the wallets consistently (spot coins at the spot mid, the short at
        the mark the futures wallet's unrealised PnL uses)."""
        if self.venue_paused("snapshot"):
            return
        now = self.now()
        held = [p.symbol for p in await self.ledger.list_pairs(ACTIVE, venue=self.venue.name)]
        symbols = list(self.builder.markets) or self.symbols
        balances, positions, books = await asyncio.gather(
            self.venue.fetch_balances(),
            self.venue.fetch_positions(symbols),
            asyncio.gather(*(self.venue.fetch_order_book(s, Leg.SPOT, 5) for s in held)),
        )
        await self._ok()
        by_wallet: dict[str, dict[str, AssetBalance]] = {"spot": {}, "futures": {}}
        for b in balances:
            by_wallet[b.wallet][b.asset] = AssetBalance(free=b.free, used=b.used, total=b.total)
        for wallet, assets in by_wallet.items():
            await self.ledger.record_balance_snapshot(
                venue=self.venue.name, wallet=Wallet(wallet), ts_ms=now, balances=assets or EMPTY_WALLET
            )
        await self.record_positions(positions, now)
        prices: dict[str, str] = {}
        for sym, book in zip(held, books, strict=True):
            if book.bids and book.asks:
                prices[sym] = str(book.mid)
            if sym in positions:
                prices[f"{sym}:USDT"] = str(positions[sym].mark_price)
        if prices:
            text = ", ".join(f"{k} {Decimal(v).normalize():f}" for k, v in sorted(prices.items()))
            await self.ledger.add_event(EventKind.INFO, f"prices: {text}", ts_ms=now, details={"prices": prices})

    async def record_positions(self, read: dict[str, Position], now: int) -> None:
        """An info event ``{"positions": {symbol: {...}}}`` when a size or liquidation price moved (>5%)."""
        positions = {s: p for s, p in read.items() if p.qty != 0}
        seen = {s: (p.qty, p.liquidation_price) for s, p in positions.items()}
        if not _positions_moved(self._positions_recorded, seen):
            return
        self._positions_recorded = seen
        details = {
            s: {
                "qty": str(p.qty),
                "entry_price": str(p.entry_price),
                "mark_price": str(p.mark_price),
                "liquidation_price": str(p.liquidation_price) if p.liquidation_price is not None else None,
                "unrealized_pnl": str(p.unrealized_pnl),
            }
            for s, p in sorted(positions.items())
        }
        text = ", ".join(
            f"{s} {p.qty:f} liq {p.liquidation_price:f}" if p.liquidation_price else f"{s} {p.qty:f}"
            for s, p in sorted(positions.items())
        )
        await self.ledger.add_event(
            EventKind.INFO, f"positions: {text or 'none'}", ts_ms=now, details={"positions": details}
        )

    async def reconcile(self) -> None:
        if self.venue_paused("reconcile"):
            return
        async with self.account_lock:
            report = await self.reconciler.run()
            if report.changed:
                await self.finish_interrupted()
        await self._ok()
        for symbol in report.quarantined:
            if self.alerter is not None:
                await self.alerter.pair_quarantined(symbol, "reconciliation could not explain the venue state")

    # -- helpers ---------------------------------------------------------------------------------------

    async def _portfolio_gauges(self, ratio: Decimal | None = None) -> None:
        if self.health is None:
            return
        pairs = await self.ledger.list_pairs(ACTIVE, venue=self.venue.name)
        notional = sum((p.perp_qty * self.last_marks.get(p.symbol, ZERO) for p in pairs), ZERO)
        earned = sum((p.funding_earned for p in await self.ledger.list_pairs(venue=self.venue.name)), ZERO)
        self.health.set_portfolio(
            pairs_open=len(pairs),
            notional_usdt=notional,
            collateral_ratio=ratio if ratio is not None else self.health.collateral_ratio,
            funding_earned_usdt=earned,
        )

    async def _ok(self, scan: bool = False) -> None:
        self.gate.ok()
        if self.health is not None:
            now = self.now()
            self.health.mark_venue_ok(now)
            if scan:
                self.health.mark_scan_ok(now)

    async def _event(
        self,
        kind: EventKind,
        message: str,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        details: dict | None = None,
    ) -> None:
        await self.ledger.add_event(kind, message, ts_ms=self.now(), symbol=symbol, pair_id=pair_id, details=details)

    async def _error(self, job: str, exc: BaseException, symbol: str | None = None) -> None:
        """Record a failed job as an error event (secrets scrubbed) and count it for /metrics."""
        if classify(exc) is ErrorClass.RATE_LIMITED:
            await self._rate_limited(job, exc)
            return
        text = safe_error_text(exc)
        if self.health is not None:
            self.health.inc_error(job)
        try:
            await self._event(
                EventKind.ERROR,
                f"{job} failed: {text}",
                symbol=symbol,
                details={"job": job, "error": type(exc).__name__},
            )
        except Exception:  # the ledger itself may be what failed
            log.exception("could not record the failure of %s", job)

    async def _rate_limited(self, job: str, exc: BaseException) -> None:
        """Close the gate and record the pause, unless the venue's gate already did (``GatedVenue``)."""
        if getattr(exc, "gated", False) or not self.gate.trip(exc):
            return
        await self.record_rate_limit(job, exc)

    async def record_rate_limit(self, where: str, exc: BaseException) -> None:
        """One ``rate_limit`` event per pause (and an alert for an IP ban), never one per skipped call."""
        banned = banned_until_ms(exc) is not None
        if self.health is not None:
            self.health.inc_error("rate_limit")
        pause = self.gate.remaining_s()
        retry = retry_after_s(exc)
        what = "IP banned (418)" if banned else "rate limited (429)"
        told = f", Retry-After {retry:g}s" if retry is not None else ""
        message = f"venue {what} on {where}: all venue work paused for {pause:.0f}s{told}, then resumes"
        details = {
            "where": where,
            "error": type(exc).__name__,
            "pause_s": round(pause, 1),
            "retry_after_s": retry,
            "until_ms": int(self.gate.until_s * 1000),
            "banned": banned,
        }
        try:
            await self._event(EventKind.RATE_LIMIT, message, details=details)
            if banned and self.alerter is not None:
                await self.alerter.alert("rate_limited", message, details=details, now_ms=self.now())
        except Exception:
            log.exception("could not record the rate-limit pause")

    async def on_job_error(self, job: str, exc: BaseException) -> None:
        await self._error(job, exc)


def _equity(balances: list[WalletBalance], account: FuturesAccount, spot_prices: dict[str, Decimal]) -> Decimal:
    """Equity in USDT from one reading of both wallets (see ``Engine.equity``)."""
    total = account.margin_balance
    for b in balances:
        if b.wallet != "spot":
            continue
        if b.asset == "USDT":
            total += b.total
        else:
            price = spot_prices.get(f"{b.asset}/USDT")
            total += b.total * price if price is not None else ZERO
    return total


def _positions_moved(
    before: dict[str, tuple[Decimal, Decimal | None]], now: dict[str, tuple[Decimal, Decimal | None]]
) -> bool:
    """True when a position appeared, went, changed size, or its liquidation price moved more than 5%."""
    if before.keys() != now.keys():
        return True
    for s, (qty, liq) in now.items():
        old_qty, old_liq = before[s]
        if qty != old_qty or (liq is None) != (old_liq is None):
            return True
        if liq is not None and old_liq and abs(liq - old_liq) / old_liq > Decimal("0.05"):
            return True
    return False


def _withhold_paused(
    snapshot: Snapshot, paused: frozenset[str], held: dict[str, PairView]
) -> tuple[Snapshot, list[str]]:
    """The snapshot without the paused symbols the bot does not hold (their capital goes elsewhere), and
    those symbols."""
    withheld = sorted(m.symbol for m in snapshot.markets if m.symbol in paused and m.symbol not in held)
    if not withheld:
        return snapshot, []
    return replace(snapshot, markets=tuple(m for m in snapshot.markets if m.symbol not in withheld)), withheld


def _no_increase(t: Target, held: dict[str, PairView], why: str) -> Target:
    """``no_entry``: a held pair is kept, not grown (as for a paused symbol)."""
    pair = held.get(t.symbol)
    if pair is not None and t.action is Action.RESIZE and t.target_qty > pair.hedged_qty:
        return Target(
            t.symbol, pair.hedged_qty, _override(t, "no_entry_no_increase", f"no increase: {why}"), Action.HOLD
        )
    return t


def _paused_skip(symbol: str) -> Target:
    message = f"paused by the operator: no entries (`fundbot control resume {symbol}` allows them)"
    return Target(symbol, ZERO, Reason("operator_pause", message), Action.SKIP)


def _orphan_skip(symbol: str) -> Target:
    message = (
        "blocked: the venue holds legs no pair explains (`fundbot control adopt "
        f"{symbol}` manages them, `fundbot control close {symbol}` trades them to flat)"
    )
    return Target(symbol, ZERO, Reason("orphan_blocked", message), Action.SKIP)


def _operator_exit(t: Target | None, r: ExitRequest, pair: PairView) -> Target:
    """The operator's exit of a held pair, with their reason; a quarantined pair waits (the executor
    refuses to trade it until reconciliation or the operator releases it)."""
    inputs = {"control_id": str(r.control_id), "requested_by": r.source, "operator_reason": r.reason or ""}
    said = f" (strategy said: {t.reason.rule})" if t is not None else ""
    reason = r.reason or "no reason given"
    if pair.state is PairState.QUARANTINED:
        message = f"operator exit requested ({reason}); waits: the pair is quarantined until reconciled{said}"
        return Target(r.symbol, pair.hedged_qty, Reason("operator_exit_blocked", message, inputs), Action.HOLD)
    return Target(r.symbol, ZERO, Reason("operator_exit", f"operator exit: {reason}{said}", inputs), Action.EXIT)


def _upcoming_spot_fees(todo: list[Target], snapshot: Snapshot | None, pairs: tuple[PairView, ...]) -> Decimal:
    """The spot fees (USDT) the targets about to be executed will pay: each one's change of the spot leg at
    the snapshot's spot mid and taker rate (the BNB rate while BNB pays)."""
    if snapshot is None:
        return ZERO
    markets = {m.symbol: m for m in snapshot.markets}
    held = {p.symbol: p.spot_qty for p in pairs}
    total = ZERO
    for t in todo:
        m = markets.get(t.symbol)
        if m is not None and t.action is not Action.HOLD and t.action is not Action.SKIP:
            total += abs(t.target_qty - held.get(t.symbol, ZERO)) * m.spot.mid * m.spot.fees.taker
    return total


def _listing_exit(t: Target | None, why: str, pair: PairView) -> Target:
    """Close a held pair whose listing ends (a delisting notice, a status change), the reason in its
    decision; a quarantined pair waits for reconciliation, as an operator exit does."""
    said = f" (strategy said: {t.reason.rule})" if t is not None else ""
    inputs = {"listing": why}
    if pair.state is PairState.QUARANTINED:
        message = f"listing ends ({why}); waits: the pair is quarantined until reconciled{said}"
        return Target(pair.symbol, pair.hedged_qty, Reason("delisting_blocked", message, inputs), Action.HOLD)
    return Target(pair.symbol, ZERO, Reason("delisting", f"closing: {why}{said}", inputs), Action.EXIT)


def _override(t: Target, rule: str, message: str) -> Reason:
    return Reason(
        rule=rule,
        message=f"{message} (strategy said: {t.reason.rule})",
        inputs=t.reason.inputs,
        economics=t.reason.economics,
    )
