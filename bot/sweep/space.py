"""The search space of a sweep: ``SPACE.toml`` in the sections a backtest's ``--config`` uses.

Each key is a parameter of that section (``CarryParams``, ``TreasuryConfig``, ``ExecutionConfig``,
``BacktestOptions``) and its value one of::

    entry_threshold_apr = ["0.08", "0.12", "0.2"]              # a list of values
    hold_horizon_hours = { low = 168, high = 720, step = 168 }  # a range with a step (both ends included)
    predicted_weight = { low = 0.0, high = 1.0 }               # a distribution (uniform; log = true for
                                                               #   log-uniform): random and tpe only

Decimal fields get exact decimal values (a step of 0.05 gives 0.15, never 0.15000000000000002); a trial's
values are the ``--config`` document that reproduces it (``SweepSpace.config``).
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
import types
import typing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.backtest.params import SECTION_MODELS, BacktestConfigError, BacktestParams, parse_backtest_config

MAX_GRID = 100_000  # a grid larger than this is a typo (a tiny step), not a sweep


class SpaceError(ValueError):
    """The space file is invalid; the message names the file, the parameter and the fix."""


Value = str | int | float | bool


@dataclass(frozen=True)
class Dimension:
    """One swept parameter: ``choices`` (a list or an enumerated stepped range) or a continuous range."""

    section: str
    field: str
    kind: str  # "decimal" | "int" | "float" | "other" (bool, literal: lists only)
    choices: tuple[Value, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    stepped: bool = False  # choices came from a range with a step (ordered numbers)

    @property
    def name(self) -> str:
        return f"{self.section}.{self.field}"

    @property
    def numeric(self) -> bool:
        return self.kind in ("decimal", "int", "float")


@dataclass(frozen=True)
class SweepSpace:
    """The dimensions and the base document (``--config``) each trial's values are laid over."""

    dimensions: tuple[Dimension, ...]
    base: dict[str, dict[str, Any]]
    source: str

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def dimension(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise SpaceError(f"{self.source}: {name} is not swept; swept: {', '.join(self.names)}")

    def grid(self) -> list[dict[str, Value]]:
        """Every combination, in file order (the last parameter varies fastest)."""
        for d in self.dimensions:
            if d.choices is None:
                raise SpaceError(
                    f"{self.source}: {d.name} is a distribution (no step); --method grid needs a list or "
                    "a range with a step (or use --method random/tpe)"
                )
        combos = itertools.product(*(d.choices or () for d in self.dimensions))
        return [dict(zip(self.names, combo, strict=True)) for combo in combos]

    def grid_size(self) -> int:
        n = 1
        for d in self.dimensions:
            n *= len(d.choices) if d.choices is not None else 0
        return n

    def config(self, values: dict[str, Value]) -> dict[str, dict[str, Any]]:
        """The ``--config`` document of one trial: the base with ``values`` laid over it."""
        doc = {k: dict(v) for k, v in self.base.items()}
        for name, value in values.items():
            section, field = name.split(".", 1)
            doc.setdefault(section, {})[field] = value
        return doc

    def params(self, values: dict[str, Value]) -> BacktestParams:
        """The validated parameters of one trial; ``BacktestConfigError`` when the combination is invalid
        (e.g. an entry threshold below the exit threshold)."""
        return parse_backtest_config(self.config(values), "trial")


def _field_kind(model: type[BaseModel], field: str) -> str:
    ann = model.model_fields[field].annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)] if isinstance(ann, types.UnionType) else [ann]
    ann = args[0] if len(args) == 1 else ann
    if ann is bool:
        return "other"
    if ann is Decimal:
        return "decimal"
    if ann is int:
        return "int"
    if ann is float:
        return "float"
    return "other"


def _number(text: Any, kind: str, where: str) -> Decimal:
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise SpaceError(f"{where}: {text!r} is not a number")
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise SpaceError(f"{where}: {text!r} is not a number") from None
    if not value.is_finite():
        raise SpaceError(f"{where}: {text!r} is not a finite number")
    if kind == "int" and value != value.to_integral_value():
        raise SpaceError(f"{where}: {text!r} is not a whole number (the parameter is an integer)")
    return value


def _typed(value: Decimal, kind: str) -> Value:
    """A number as the --config document holds it: Decimal fields as exact strings."""
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return format(value.normalize(), "f") if value != 0 else "0"


def _dimension(section: str, field: str, spec: Any, where: str) -> Dimension:
    kind = _field_kind(SECTION_MODELS[section], field)
    if isinstance(spec, list):
        if not spec:
            raise SpaceError(f"{where}: the list is empty; give at least one value")
        if kind in ("decimal", "int", "float"):
            values = tuple(_typed(_number(v, kind, where), kind) for v in spec)
        else:
            values = tuple(spec)
        if len(set(values)) != len(values):
            raise SpaceError(f"{where}: the list repeats a value; give each value once")
        return Dimension(section, field, kind, choices=values)
    if not isinstance(spec, dict):
        raise SpaceError(
            f"{where}: give a list [a, b], a range {{ low = a, high = b, step = s }} or a distribution "
            f"{{ low = a, high = b }}, not {spec!r}"
        )
    if kind == "other":
        raise SpaceError(f"{where}: is not a number; give a list of its values")
    unknown = sorted(set(spec) - {"low", "high", "step", "log"})
    if unknown or "low" not in spec or "high" not in spec:
        extra = f" (unknown key {', '.join(unknown)})" if unknown else ""
        raise SpaceError(f"{where}: a range needs low and high (and step, or log = true){extra}")
    low, high = _number(spec["low"], kind, f"{where} low"), _number(spec["high"], kind, f"{where} high")
    if high < low:
        raise SpaceError(f"{where}: empty range: low {low} is above high {high}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false")
    if "step" in spec:
        if log:
            raise SpaceError(f"{where}: give step or log = true, not both")
        step = _number(spec["step"], kind, f"{where} step")
        if step <= 0:
            raise SpaceError(f"{where}: step must be positive, got {step}")
        count = int((high - low) / step) + 1
        if count > MAX_GRID:
            raise SpaceError(f"{where}: {count} values from low to high in steps of {step}; use a larger step")
        values = tuple(_typed(low + k * step, kind) for k in range(count))
        return Dimension(section, field, kind, choices=values, stepped=True)
    if log and low <= 0:
        raise SpaceError(f"{where}: log = true needs low > 0, got {low}")
    if high == low:
        raise SpaceError(f"{where}: empty range: low equals high ({low}); give a list of one value instead")
    return Dimension(section, field, kind, low=float(low), high=float(high), log=log)


def _check_values(space: SweepSpace, dim: Dimension, where: str) -> None:
    """Each value (or end of a range) on its own over the base must validate: a value the field refuses
    (a leverage of 200) is a typo in the file, named now rather than in every trial that draws it."""
    probes = (
        list(dim.choices)
        if dim.choices is not None
        else [_typed(Decimal(str(v)), dim.kind) for v in (dim.low, dim.high)]
    )
    if dim.kind == "int" and dim.choices is None:
        probes = [int(dim.low or 0), int(dim.high or 0)]
    for value in probes:
        model = SECTION_MODELS[dim.section]
        merged = {**space.base.get(dim.section, {}), dim.field: value}
        try:
            model(**merged)
        except Exception as err:  # pydantic's ValidationError: keep only this field's complaint
            errors: list[dict[str, Any]] = getattr(err, "errors", lambda: [])()
            mine = [e["msg"] for e in errors if tuple(e.get("loc", ())) == (dim.field,)]
            if mine:
                raise SpaceError(f"{where} = {value}: {mine[0]}") from None


def load_space(path: Path, base: dict[str, dict[str, Any]] | None = None) -> SweepSpace:
    """Read and check ``SPACE.toml``; ``base`` is the ``--config`` document the values are laid over."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"space file not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"{path}: cannot be read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise SpaceError(f"{path}: not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(SECTION_MODELS))
    if unknown:
        raise SpaceError(f"{path}: unknown section(s) {', '.join(unknown)}; use {', '.join(SECTION_MODELS)}")
    space = SweepSpace((), base or {}, str(path))
    dims = []
    for section, table in data.items():
        if not isinstance(table, dict):
            raise SpaceError(f"{path}: [{section}] must be a table of parameters")
        fields = SECTION_MODELS[section].model_fields
        for field, spec in table.items():
            where = f"{path}: [{section}] {field}"
            if field not in fields:
                close = difflib.get_close_matches(field, list(fields), n=1)
                hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(fields)}"
                raise SpaceError(f"{where} is not a parameter of [{section}]; {hint}")
            dim = _dimension(section, field, spec, where)
            _check_values(space, dim, where)
            dims.append(dim)
    if not dims:
        raise SpaceError(f'{path}: no parameter to sweep; add e.g. [strategy] entry_threshold_apr = ["0.1", "0.2"]')
    try:
        parse_backtest_config(space.base, "--config")
    except BacktestConfigError as err:
        raise SpaceError(str(err)) from None
    return SweepSpace(tuple(dims), space.base, str(path))
