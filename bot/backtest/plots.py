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


_LINESTYLES = ("-", "--", ":", "-.")


def symbol_styles(n: int) -> list[tuple[tuple[float, float, float, float], str]]:
    """``n`` distinguishable (colour, line style) pairs: tab10, then tab20, beyond that ``n`` hues spread
    over a perceptual map with the line style cycling, so neighbours never look alike (the default
    cycle repeats its 10 colours)."""
    if n <= 10:
        colours = [matplotlib.colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colours = [matplotlib.colormaps["tab20"](i) for i in range(n)]
    else:
        colours = [matplotlib.colormaps["turbo"](x) for x in np.linspace(0.03, 0.97, n)]
    return [(c, _LINESTYLES[i % len(_LINESTYLES)] if n > 20 else "-") for i, c in enumerate(colours)]


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
    greys = matplotlib.colormaps["Greys"](np.linspace(0.45, 0.8, max(len(result.baseline_equity), 1)))
    for (name, eq), colour in zip(sorted(result.baseline_equity.items()), greys, strict=False):
        if len(eq) == len(x):
            ax.plot(
                x,
                eq - result.summary.capital,
                label=f"baseline {name}: net PnL",
                color=colour,
                linestyle="--",
                linewidth=1.2,
            )
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
    paid = [(sym, series) for sym, series in sorted(tl.funding_by_symbol.items()) if np.any(series != 0)]
    for (sym, series), (colour, style) in zip(paid, symbol_styles(len(paid)), strict=True):
        ax.plot(x, series, label=sym, color=colour, linestyle=style)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("USDT")
    ax.set_title("Funding captured per symbol (cumulative)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7, ncol=max(2, len(paid) // 8))
    else:
        ax.text(0.5, 0.5, "no funding captured", transform=ax.transAxes, ha="center")
    return _finish(fig, ax, path)


def funding_rate_plot(result: BacktestResult, path: Path) -> Path:
    """Each held symbol's settled funding rate, annualised with its own interval, over the window."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    rates = sorted(result.funding_rates.items())
    for (sym, (ts, apr)), (colour, style) in zip(rates, symbol_styles(len(rates)), strict=True):
        ax.plot(_dates(ts), apr * 100, label=sym, color=colour, linestyle=style, linewidth=0.9)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("% APR (rate x settlements per year)")
    ax.set_title("Funding rate of each held symbol (settled)")
    if rates:
        ax.legend(loc="upper left", fontsize=7, ncol=max(2, len(rates) // 8))
    else:
        ax.text(0.5, 0.5, "no symbol was held", transform=ax.transAxes, ha="center")
    return _finish(fig, ax, path)


def collateral_plot(result: BacktestResult, path: Path) -> Path:
    """Futures margin balance over perp notional, while a position is held, with the treasury's band."""
    tl = result.timeline
    x = _dates(tl.ts_ms)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(x, tl.collateral_ratio, color="tab:purple", label="collateral ratio")
    band = result.collateral_band
    for key, colour, what in (
        ("high", "tab:orange", "above: excess back to spot"),
        ("target", "tab:green", "transfers aim here"),
        ("low", "tab:red", "below: top up or shrink"),
    ):
        if key in band:
            ax.axhline(band[key], color=colour, linestyle="--", linewidth=1, label=f"{key} {band[key]:g} ({what})")
    if band:
        ax.legend(loc="upper right", fontsize=7)
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
        "funding_rates": funding_rate_plot(result, out_dir / "funding_rates.png"),
        "collateral": collateral_plot(result, out_dir / "collateral_ratio.png"),
    }
