"""Small text helpers shared by tail, status and report: UTC ISO times, --since parsing, Decimal output."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.domain import DAY_MS, HOUR_MS, MINUTE_MS

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


def iso_utc(ts_ms: int | None) -> str:
    """Epoch ms -> '2024-05-01T08:00:00Z' (seconds precision; operators read UTC only)."""
    if ts_ms is None:
        return "-"
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str, now_ms: int) -> int:
    """'30m', '1h', '2d', '1w' (relative to now) or an ISO date/time (UTC unless it says otherwise) -> epoch ms."""
    m = _SPAN.match(text)
    if m:
        return now_ms - int(Decimal(m.group(1)) * _UNIT_MS[m.group(2).lower()])
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"--since {text!r}: use a span like 30m, 1h, 2d or an ISO date like 2024-05-01") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_kinds(text: str | None) -> list[str] | None:
    """'decision,order' -> ['decision', 'order']; empty -> None (all kinds)."""
    if not text:
        return None
    kinds = [k.strip().lower() for k in text.split(",") if k.strip()]
    return kinds or None


def fmt_dec(value: Decimal | None, places: int = 2, signed: bool = False) -> str:
    """Fixed-point text of a Decimal for humans (JSON output keeps the exact value)."""
    if value is None:
        return "-"
    q = Decimal(1).scaleb(-places)
    text = f"{value.quantize(q):,}"
    if signed and value > 0:
        text = "+" + text
    return text


def fmt_qty(value: Decimal | None) -> str:
    """A quantity without trailing zeros ('0.0100' -> '0.01')."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def fmt_pct(value: Decimal | None, places: int = 4) -> str:
    """A rate as a percentage: 0.0001 -> '0.0100%'."""
    if value is None:
        return "-"
    return f"{(value * 100).quantize(Decimal(1).scaleb(-places))}%"


def fmt_age(ms: int | None) -> str:
    """Human age: 95_000 -> '1m35s'."""
    if ms is None:
        return "-"
    sign = "-" if ms < 0 else ""
    s = abs(ms) // 1000
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600:02d}h"


def to_jsonable(value: Any) -> Any:
    """Decimals become strings (exact), everything else passes through recursively."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
