"""Column types that keep money exact on every backend.

SQLite has no decimal type: a ``NUMERIC`` column stores a REAL (a float) whenever the text looks like a
number, so ``Decimal('123456789.123456789')`` would come back rounded. ``Money`` therefore stores the
canonical fixed-point text on SQLite (TEXT affinity, never converted) and ``NUMERIC(38, 18)`` elsewhere,
and always returns ``Decimal``. Values are quantized to 18 decimal places the way Postgres does it
(half away from zero), so both backends hand back the same value.

Consequence: on SQLite, SQL comparisons and SUM over money columns would be textual. The repository
never does arithmetic or ordering on money in SQL; do the same (load rows, add Decimals in Python).
"""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_PRECISION = 38
MONEY_SCALE = 18
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_MAX_INT_DIGITS = MONEY_PRECISION - MONEY_SCALE
_CONTEXT = decimal.Context(prec=MONEY_PRECISION + 2, rounding=decimal.ROUND_HALF_UP)


def to_money(value: Decimal | int | str) -> Decimal:
    """``value`` as the Decimal a NUMERIC(38, 18) column holds; floats are refused (use Decimal)."""
    if isinstance(value, bool | float):
        raise TypeError(f"money must be Decimal, int or str, not {type(value).__name__}: {value!r}")
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"money must be finite, got {d}")
    q = d.quantize(_QUANTUM, context=_CONTEXT) if d.adjusted() < _MAX_INT_DIGITS else d
    if q.adjusted() >= _MAX_INT_DIGITS:
        raise ValueError(f"{d} does not fit NUMERIC({MONEY_PRECISION}, {MONEY_SCALE})")
    return q


class Money(TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC(38, 18) on Postgres, fixed-point text on SQLite."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = to_money(value)
        return format(d, "f") if dialect.name == "sqlite" else d

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        if isinstance(value, str):
            return Decimal(value)
        raise TypeError(f"money column returned {type(value).__name__} {value!r}; expected text or Decimal")


def _json_default(obj: Any) -> Any:
    """Decimals go into JSON as fixed-point strings so no digit is lost; other unknown objects are an error."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def json_dumps(obj: Any) -> str:
    """Serializer for JSON columns (set on the engine): Decimal -> str, everything else strict."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"), allow_nan=False)
