"""``CarryParams``: every knob of the carry strategy, with description, default and unit.

It is a frozen pydantic model that rejects unknown keys, so a typo fails at load. It deliberately does
not import ``bot.config`` (so ``bot.config`` can nest it as a settings section without an import cycle);
its shape matches ``bot.config.Section`` and ``unit`` metadata, so ``fundbot config example`` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

HOURS_PER_YEAR = Decimal(8760)


def _unit(u: str) -> dict[str, Any]:
    return {"unit": u}


class ParamsError(ValueError):
    """Invalid strategy parameters; the message names each field and what is expected."""


class CarryParams(BaseModel):
    """Parameters of ``FundingCarry`` (and the sizing shared with the baselines)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hold_horizon_hours: Decimal = Field(
        Decimal(720),
        gt=0,
        description="intended hold; funding and costs are compared over it",
        json_schema_extra=_unit("hours"),
    )
    max_symbols: int = Field(
        4, ge=1, description="hold at most this many pairs (the best by score)", json_schema_extra=_unit("count")
    )
    max_per_symbol_fraction: Decimal = Field(
        Decimal("0.225"),
        gt=0,
        le=1,
        description="capital one pair may use (both legs and perp collateral)",
        json_schema_extra=_unit("fraction of capital"),
    )
    max_total_fraction: Decimal = Field(
        Decimal("0.9"),
        gt=0,
        le=1,
        description="capital all pairs together may use",
        json_schema_extra=_unit("fraction of capital"),
    )
    liquidity_fraction: Decimal = Field(
        Decimal("0.1"),
        gt=0,
        le=1,
        description="largest share of the visible book depth one leg may take",
        json_schema_extra=_unit("fraction of depth"),
    )
    max_slippage_bps: Decimal = Field(
        Decimal(20),
        gt=0,
        description="size cap when only a slippage model is known: impact at most this",
        json_schema_extra=_unit("bps per side"),
    )
    max_break_even_fraction: Decimal = Field(
        Decimal("0.5"),
        gt=0,
        le=1,
        description="enter (or grow, or switch in) only when the round trip is paid back within this share of "
        "the hold horizon",
        json_schema_extra=_unit("fraction of horizon"),
    )
    entry_threshold_apr: Decimal = Field(
        Decimal("0.10"),
        description="enter only when forecast funding is at least this",
        json_schema_extra=_unit("fraction per year"),
    )
    predicted_weight: Decimal = Field(
        Decimal("0.1"),
        ge=0,
        le=1,
        description="weight of the predicted rate for settlements after the next (the rest: decayed history "
        "and the baseline rate)",
        json_schema_extra=_unit("fraction"),
    )
    baseline_weight: Decimal = Field(
        Decimal("0.6"),
        ge=0,
        le=1,
        description="weight of baseline_rate_per_8h for settlements after the next (predicted_weight + this <= 1)",
        json_schema_extra=_unit("fraction"),
    )
    baseline_rate_per_8h: Decimal = Field(
        Decimal("0.0001"),
        description="the rate most symbols pay most of the time (Binance's interest rate, 0.01% per 8 h; "
        "scaled per hour for other intervals)",
        json_schema_extra=_unit("fraction per 8 h"),
    )
    history_half_life_hours: Decimal = Field(
        Decimal(72),
        gt=0,
        description="age at which a past settlement counts half in the forecast",
        json_schema_extra=_unit("hours"),
    )
    settlement_guard_minutes: int = Field(
        15,
        ge=0,
        description="no exit this close before a paying settlement; no entry this soon after one "
        "when the next is unattractive",
        json_schema_extra=_unit("minutes"),
    )
    hedge_tolerance_fraction: Decimal = Field(
        Decimal("0.02"),
        ge=0,
        lt=1,
        description="leg mismatch (of the larger leg) that triggers a rebalance",
        json_schema_extra=_unit("fraction"),
    )
    resize_tolerance_fraction: Decimal = Field(
        Decimal("0.3"),
        ge=0,
        description="keep a held pair's size unless the target differs by more",
        json_schema_extra=_unit("fraction"),
    )
    basis_cost_bps: Decimal = Field(
        Decimal(5),
        ge=0,
        description="expected adverse spot/perp basis move over a round trip",
        json_schema_extra=_unit("bps of notional"),
    )
    perp_leverage: Decimal = Field(
        Decimal(3),
        ge=1,
        le=125,
        description="perp leverage; the futures wallet holds notional/leverage",
        json_schema_extra=_unit("x"),
    )
    margin_buffer_fraction: Decimal = Field(
        Decimal("0.17"),
        ge=0,
        description="extra futures collateral beyond initial margin (1/leverage + this should reach the "
        "treasury's target ratio, 0.5 by default, or entries are trimmed to what the treasury can fund)",
        json_schema_extra=_unit("fraction of notional"),
    )
    fee_kind: Literal["taker", "maker"] = Field(
        "taker",
        description="fee rate assumed for every fill in the cost estimate",
        json_schema_extra=_unit("taker|maker"),
    )

    @model_validator(mode="after")
    def _consistent(self) -> CarryParams:
        if self.predicted_weight + self.baseline_weight > 1:
            raise ValueError(
                f"predicted_weight ({self.predicted_weight}) + baseline_weight ({self.baseline_weight}) must be "
                "at most 1 (the rest weighs the decayed history)"
            )
        if self.max_per_symbol_fraction > self.max_total_fraction:
            raise ValueError(
                f"max_per_symbol_fraction ({self.max_per_symbol_fraction}) cannot exceed "
                f"max_total_fraction ({self.max_total_fraction})"
            )
        return self

    @property
    def capital_per_notional(self) -> Decimal:
        """USDT of capital one USDT of pair notional uses: spot leg + perp margin + buffer."""
        return 1 + 1 / self.perp_leverage + self.margin_buffer_fraction

    @property
    def baseline_per_hour(self) -> Decimal:
        return self.baseline_rate_per_8h / 8

    @property
    def guard_ms(self) -> int:
        return self.settlement_guard_minutes * 60_000


def load_params(values: Mapping[str, Any] | None = None) -> CarryParams:
    """Build ``CarryParams`` from plain values; raise ``ParamsError`` naming each bad field and its unit."""
    try:
        return CarryParams(**dict(values or {}))
    except ValidationError as err:
        lines = []
        for e in err.errors():
            name = ".".join(str(p) for p in e.get("loc", ())) or "params"
            f = CarryParams.model_fields.get(name)
            extra = f.json_schema_extra if f is not None and isinstance(f.json_schema_extra, dict) else {}
            hint = f" (unit: {extra['unit']})" if "unit" in extra else ""
            msg = "unknown parameter" if e.get("type") == "extra_forbidden" else e.get("msg", "invalid")
            lines.append(f"{name}: {msg}{hint}")
        raise ParamsError("invalid strategy parameters:\n  " + "\n  ".join(lines)) from None


def params_table_markdown() -> str:
    """The parameter table of strategies/README.md (a test keeps the two in step)."""
    rows = ["| parameter | default | unit | meaning |", "|---|---|---|---|"]
    for name, f in CarryParams.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        unit = str(extra.get("unit", "")).replace("|", "\\|")
        rows.append(f"| `{name}` | {f.default} | {unit} | {f.description} |")
    return "\n".join(rows)
