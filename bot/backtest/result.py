"""What a backtest produces: the hourly timeline, the money summary, per-symbol rows and run figures.

Analytics are floats (the report's arithmetic on already-settled Decimal facts from the ledger);
nothing here feeds back into trading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HOURS_PER_YEAR = 8760.0


@dataclass
class Timeline:
    """One row per grid hour (the state after that hour's jobs ran)."""

    ts_ms: np.ndarray
    equity: np.ndarray
    funding_cum: np.ndarray
    fees_cum: np.ndarray
    slippage_cum: np.ndarray
    collateral_ratio: np.ndarray  # futures margin balance / perp notional; NaN while flat
    notional: np.ndarray  # gross perp notional held
    funding_by_symbol: dict[str, np.ndarray] = field(default_factory=dict)  # cumulative per symbol
    capital: float = 0.0  # equity before the first hour: the PnL components start from it

    @classmethod
    def empty(cls, ts_ms: np.ndarray, symbols: list[str], capital: float) -> Timeline:
        n = len(ts_ms)
        return cls(
            ts_ms=ts_ms,
            equity=np.full(n, np.nan),
            funding_cum=np.zeros(n),
            fees_cum=np.zeros(n),
            slippage_cum=np.zeros(n),
            collateral_ratio=np.full(n, np.nan),
            notional=np.zeros(n),
            funding_by_symbol={s: np.zeros(n) for s in symbols},
            capital=capital,
        )

    @property
    def basis_cum(self) -> np.ndarray:
        """Price and basis PnL: what equity moved beyond funding and fees (slippage is inside it), from the
        starting capital, so funding - fees + this = net PnL at every hour (the first hour's trades
        included)."""
        return self.equity - self.capital - self.funding_cum + self.fees_cum


@dataclass
class Summary:
    strategy: str
    capital: float
    start_ms: int
    end_ms: int
    hours: int
    final_equity: float
    net_pnl: float
    apr: float  # net_pnl / capital, annualised over the window
    funding_income: float
    fees: float
    basis_pnl: float
    slippage: float  # cost vs the replayed reference price, already inside basis_pnl
    max_drawdown: float  # fraction of the running equity peak
    max_drawdown_usdt: float
    min_collateral_ratio: float | None
    liquidations: int
    transfers: int
    transfer_volume: float
    trades: int
    time_in_market: float  # fraction of hours with a perp position
    sharpe: float | None = None  # daily, annualised: see bot.backtest.analytics
    sortino: float | None = None
    calmar: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SymbolRow:
    symbol: str
    funding_income: float
    fees: float
    slippage: float
    trades: int
    hours_in_market: int
    settlements_paid: int
    gap_hours: int
    mark_fallback_hours: int
    interval_changes: int

    @property
    def traded(self) -> bool:
        """Ever held or paid: a row worth a line (the others are summarised in one)."""
        return bool(self.trades or self.hours_in_market or self.settlements_paid or self.funding_income)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunStats:
    symbol_hours: int
    ticks_evaluated: int
    ticks_skipped: int
    minute_checks: int
    seconds: float
    sim_events: int = 0  # simulator events (prices, orders, funding, account, ...) the run processed
    treasury_runs: int = 0  # collateral checks that ran the treasury (the others were inside the band)
    scans: int = 0  # hours the strategy was evaluated (every hour stepped, or every eval_every_hours)
    scan_hours: int = 0  # hours on the scan cadence (evaluated, or proven quiet by fast-forward)
    fast_forwarded: int = 0  # hours run in simulator jumps (bot.backtest.fastforward), part of ticks_skipped
    stretches: int = 0  # how many such jumps

    @property
    def symbol_hours_per_second(self) -> float:
        return self.symbol_hours / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["symbol_hours_per_second"] = round(self.symbol_hours_per_second, 1)
        return d


@dataclass
class BacktestResult:
    summary: Summary
    symbols: list[SymbolRow]
    timeline: Timeline
    data_notes: dict[str, dict[str, Any]]
    stats: RunStats
    ledger_url: str
    out_dir: str | None = None
    baselines: dict[str, Summary] = field(default_factory=dict)
    predictor: dict[str, Any] | None = None  # how the predicted funding rate tracked the settled one
    monthly: list[Any] = field(default_factory=list)  # bot.backtest.analytics.MonthRow
    round_trips: list[Any] = field(default_factory=list)  # bot.ledger.round_trips.RoundTrip
    baseline_equity: dict[str, np.ndarray] = field(default_factory=dict)  # per baseline, on this grid
    funding_rates: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # held symbols: (settlement times, rate annualised with that settlement's interval)
    collateral_band: dict[str, float] = field(default_factory=dict)  # the treasury's low/target/high ratios

    @property
    def traded_symbols(self) -> list[SymbolRow]:
        return [r for r in self.symbols if r.traded]

    @property
    def untraded_symbols(self) -> list[str]:
        return [r.symbol for r in self.symbols if not r.traded]

    def relocate(self, old_dir: Path, new_dir: Path) -> None:
        """The run was written into ``old_dir`` (a staging folder) and is moved to ``new_dir``."""
        self.ledger_url = self.ledger_url.replace(Path(old_dir).as_posix(), Path(new_dir).as_posix())
        self.out_dir = str(new_dir)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no timeline arrays)."""
        from bot.backtest.analytics import RATIO_BASIS, round_trip_stats

        return {
            "summary": self.summary.to_dict(),
            "ratio_basis": RATIO_BASIS,
            "symbols": [r.to_dict() for r in self.traded_symbols],
            "untraded_symbols": self.untraded_symbols,
            "monthly": [m.to_dict() for m in self.monthly],
            "round_trips": [t.to_dict() for t in self.round_trips],
            "round_trip_stats": round_trip_stats(self.round_trips),
            "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
            "data": self.data_notes,
            "run": self.stats.to_dict(),
            "predictor": self.predictor,
            "ledger_url": self.ledger_url,
            "out_dir": self.out_dir,
        }


def max_drawdown(equity: np.ndarray, capital: float) -> tuple[float, float]:
    """(largest fall from a running peak as a fraction of that peak, the same in USDT); the starting
    capital is the first peak, so a loss in the first hour counts."""
    eq = np.concatenate(([capital], equity[~np.isnan(equity)]))
    peak = np.maximum.accumulate(eq)
    dd = peak - eq
    i = int(np.argmax(dd))
    return (float(dd[i] / peak[i]) if peak[i] > 0 else 0.0), float(dd[i])


def annualised(net_pnl: float, capital: float, hours: int) -> float:
    if capital <= 0 or hours <= 0:
        return 0.0
    return net_pnl / capital * HOURS_PER_YEAR / hours
