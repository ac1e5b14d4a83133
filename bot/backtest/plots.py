"""PNG charts of a backtest (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from bot.backtest.result import BacktestResult


def _dates(ts_ms: np.ndarray) -> np.ndarray:
    return ts_ms.astype("datetime64[ms]")


def _finish(fig: plt.Figure, ax: plt.Axes, path: Path) -> Path:
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def equity_plot(result: BacktestResult, path: Path) -> Path:
    """Equity minus capital, split into funding, fees (negative) and price/basis PnL."""
    tl = result.timeline
    x = _dates(tl.ts_ms)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x, tl.equity - result.summary.capital, label="net PnL", color="black", linewidth=1.6)
    ax.plot(x, tl.funding_cum, label="funding", color="tab:green")
    ax.plot(x, -tl.fees_cum, label="fees", color="tab:red")
    ax.plot(x, tl.basis_cum, label="price/basis (incl. slippage)", color="tab:blue", alpha=0.8)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("USDT")
    ax.set_title(f"{result.summary.strategy}: PnL and its components")
    ax.legend(loc="upper left", fontsize=8)
    return _finish(fig, ax, path)


def funding_plot(result: BacktestResult, path: Path) -> Path:
    """Cumulative funding captured per symbol."""
    tl = result.timeline
    x = _dates(tl.ts_ms)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for sym, series in sorted(tl.funding_by_symbol.items()):
        if np.any(series != 0):
            ax.plot(x, series, label=sym)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("USDT")
    ax.set_title("Funding captured per symbol (cumulative)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, ncol=2)
    else:
        ax.text(0.5, 0.5, "no funding captured", transform=ax.transAxes, ha="center")
    return _finish(fig, ax, path)


def collateral_plot(result: BacktestResult, path: Path) -> Path:
    """Futures margin balance over perp notional, while a position is held."""
    tl = result.timeline
    x = _dates(tl.ts_ms)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(x, tl.collateral_ratio, color="tab:purple")
    ax.set_ylabel("margin balance / notional")
    ax.set_title("Collateral ratio (futures wallet), gaps = no position")
    if np.all(np.isnan(tl.collateral_ratio)):
        ax.text(0.5, 0.5, "never held a perp position", transform=ax.transAxes, ha="center")
    return _finish(fig, ax, path)


def write_plots(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "equity": equity_plot(result, out_dir / "equity.png"),
        "funding": funding_plot(result, out_dir / "funding_by_symbol.png"),
        "collateral": collateral_plot(result, out_dir / "collateral_ratio.png"),
    }
