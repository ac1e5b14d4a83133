"""Backtest parameters: what ``--config`` (TOML or JSON) may set, validated before anything runs.

File shape (every section optional)::

    [strategy]   # CarryParams fields (strategies/params.py), shared by the baselines' sizing
    entry_threshold_apr = "0.12"
    [treasury]   # TreasuryConfig fields (bot/config.py)
    low_ratio = "0.3"
    [execution]  # ExecutionConfig fields (bot/config.py)
    [backtest]   # BacktestOptions below
    snapshot_every_hours = 24
    eval_every_hours = 8   # scan like a daemon with scan_interval_s = 28800 (CLI: --eval-every 8)

``eval_every_hours`` is an operator choice, not a shortcut: results differ from an hourly scan (entries,
exits and resizes wait for the next scan), while funding, liquidation and the collateral/hedge check
still run every hour (and every minute inside 1m windows), as the daemon's faster jobs do.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.config import ExecutionConfig, TreasuryConfig
from strategies.base import Strategy
from strategies.baselines import AlwaysOn, AlwaysOnBTC, TopNByLastRate
from strategies.funding_carry import FundingCarry
from strategies.params import CarryParams, ParamsError, load_params

STRATEGIES = ("carry", "always-on", "always-on-btc", "top-n")


class BacktestConfigError(ValueError):
    """The --config file or an option is invalid; the message says which key and why."""


class BacktestOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gap_lookahead_hours: int = Field(
        8, ge=0, description="no new pair when the symbol's data has a gap within this many hours"
    )
    snapshot_every_hours: int = Field(24, ge=1, description="balance snapshot cadence in the ledger")
    eval_every_hours: int = Field(
        1,
        ge=1,
        le=24 * 7,
        description=(
            "funding scan + strategy + execution every this many hours from the first hour (a daemon with "
            "scan_interval_s = hours * 3600); funding, liquidation and collateral checks still run every hour"
        ),
    )
    minute_checks: bool = Field(True, description="check collateral every minute where 1m data exists")
    skip_idle_hours: bool = Field(True, description="skip hours where nothing can change (flat book, no entry)")
    fast_forward: bool = Field(
        True,
        description="jump over hours where strategy, treasury and margin provably do nothing "
        "(identical ledger, faster; see bot/backtest/fastforward.py)",
    )
    collateral_gate: bool = Field(
        True, description="run the treasury only when the collateral band is left (identical results, faster)"
    )
    capital_limit: Decimal | None = Field(
        None,
        gt=0,
        description="cap on the USDT equity the strategy may allocate (the daemon's engine.capital_limit); "
        "empty means the whole account",
    )
    memory_ledger: bool = Field(
        True,
        description="record the ledger in memory and write it to the file in bulk (identical ledger, faster; "
        "see bot/ledger/memory.py)",
    )
    spot_fee_rate: Decimal = Field(Decimal("0.001"), ge=0, description="spot taker/maker fee rate")
    perp_taker_fee_rate: Decimal = Field(Decimal("0.0005"), ge=0, description="perp taker fee rate")
    perp_maker_fee_rate: Decimal = Field(Decimal("0.0002"), ge=0, description="perp maker fee rate")


@dataclass(frozen=True)
class BacktestParams:
    strategy: CarryParams = field(default_factory=CarryParams)
    treasury: TreasuryConfig = field(default_factory=TreasuryConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    options: BacktestOptions = field(default_factory=BacktestOptions)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise BacktestConfigError(f"{path}: cannot be read ({err})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise BacktestConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {err}") from None
    if not isinstance(data, dict):
        raise BacktestConfigError(f"{path}: the top level must be a table/object of sections")
    return data


def load_backtest_params(path: Path | None) -> BacktestParams:
    """Read and validate a --config file; None gives every default."""
    if path is None:
        return BacktestParams()
    return parse_backtest_config(read_backtest_config(path), str(path))


SECTIONS = ("strategy", "treasury", "execution", "backtest")
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "strategy": CarryParams,
    "treasury": TreasuryConfig,
    "execution": ExecutionConfig,
    "backtest": BacktestOptions,
}


def parse_backtest_config(data: dict[str, Any], where: str) -> BacktestParams:
    """Validate the sections of a --config document (``where`` names it in messages); a sweep builds each
    trial's parameters through here too, so a trial runs exactly what that --config file would."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise BacktestConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; use strategy, treasury, execution, backtest"
        )
    for key, value in data.items():
        if not isinstance(value, dict):
            raise BacktestConfigError(f"{where}: [{key}] must be a table of settings (key = value), not {value!r}")
    try:
        strategy = load_params(data.get("strategy"))
    except ParamsError as err:
        raise BacktestConfigError(f"{where}: [strategy] {err}") from None
    out: dict[str, Any] = {"strategy": strategy}
    for key in ("treasury", "execution", "backtest"):
        model = SECTION_MODELS[key]
        try:
            out[key] = model(**(data.get(key) or {}))
        except ValidationError as err:
            lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
            raise BacktestConfigError(f"{where}: [{key}] " + "; ".join(lines)) from None
    execution = out["execution"]
    if execution.style == "maker" and execution.maker_timeout_s >= 3600:
        # a maker action's pauses move simulated time; the hourly replay must not find its clock ahead
        raise BacktestConfigError(
            f"{where}: [execution] maker_timeout_s must be below 3600 in a backtest, got {execution.maker_timeout_s}"
        )
    if "spot_fee_in_base" not in (data.get("execution") or {}) and not out["treasury"].bnb_fees:
        # the simulator takes the spot fee in the coin bought at [backtest] spot_fee_rate: gross the buy up
        # by that rate, or the spot leg ends short of (or beyond) the perp leg
        execution = execution.model_copy(update={"spot_fee_in_base": out["backtest"].spot_fee_rate})
    return BacktestParams(out["strategy"], out["treasury"], execution, out["backtest"])


def read_backtest_config(path: Path) -> dict[str, Any]:
    """The raw sections of a --config file (checked to exist and parse), for tools that extend it."""
    path = Path(path)
    if not path.exists():
        raise BacktestConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise BacktestConfigError(f"{path} is a folder; --config takes a TOML or JSON file")
    return _read(path)


def with_backtest_options(params: BacktestParams, **update: Any) -> BacktestParams:
    """``params`` with some ``[backtest]`` options replaced (validated like the file's)."""
    try:
        options = BacktestOptions(**{**params.options.model_dump(), **update})
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise BacktestConfigError("[backtest] " + "; ".join(lines)) from None
    return BacktestParams(params.strategy, params.treasury, params.execution, options)


def build_strategy(name: str, params: CarryParams) -> Strategy:
    if name == "carry":
        return FundingCarry(params)
    if name == "always-on":
        return AlwaysOn(params)  # every symbol of the run: the carry's own universe
    if name == "always-on-btc":
        return AlwaysOnBTC(params)
    if name == "top-n":
        return TopNByLastRate(params)
    raise BacktestConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
