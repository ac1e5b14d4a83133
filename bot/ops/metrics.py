"""Prometheus text exposition (format 0.0.4) of a ``HealthState``, written by hand: a handful of series
does not justify a client library, and the names stay stable for dashboards."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.ops.health import HealthState

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: Decimal | int | float | None) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return repr(value) if isinstance(value, float) else str(value)


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], Decimal | int | float | None]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ""
        if labels:
            label_text = "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items())) + "}"
        lines.append(f"{name}{label_text} {_num(value)}")
    return lines


def _age_s(marked_ms: int | None, now_ms: int) -> float | None:
    return None if marked_ms is None else (now_ms - marked_ms) / 1000


def render_metrics(state: HealthState, now_ms: int) -> str:
    """All fundbot series as Prometheus text. Ages never marked are NaN (not a misleading 0)."""
    lines: list[str] = []
    lines += _family(
        "fundbot_up", "gauge", "1 when /healthz is ok, 0 when not", [({}, 1 if state.healthy(now_ms) else 0)]
    )
    lines += _family("fundbot_pairs_open", "gauge", "pairs not closed", [({}, state.pairs_open)])
    lines += _family(
        "fundbot_notional_usdt", "gauge", "total short notional of open pairs", [({}, state.notional_usdt)]
    )
    lines += _family(
        "fundbot_collateral_ratio",
        "gauge",
        "futures margin balance / total short notional",
        [({}, state.collateral_ratio)],
    )
    lines += _family(
        "fundbot_funding_earned_usdt",
        "gauge",
        "funding received minus paid since the ledger began",
        [({}, state.funding_earned_usdt)],
    )
    lines += _family(
        "fundbot_errors_total",
        "counter",
        "errors by kind since start",
        [({"kind": k}, v) for k, v in sorted(state.errors.items())] or [({"kind": "none"}, 0)],
    )
    lines += _family(
        "fundbot_alerts_total",
        "counter",
        "alerts by kind since start",
        [({"kind": k}, v) for k, v in sorted(state.alerts.items())] or [({"kind": "none"}, 0)],
    )
    lines += _family(
        "fundbot_transfer_retries_total",
        "counter",
        "wallet transfer retries since start",
        [({}, state.transfer_retries)],
    )
    lines += _family(
        "fundbot_last_scan_age_seconds",
        "gauge",
        "age of the last successful funding scan",
        [({}, _age_s(state.scan_ok_ms, now_ms))],
    )
    lines += _family(
        "fundbot_last_venue_ok_age_seconds",
        "gauge",
        "age of the last successful venue call",
        [({}, _age_s(state.venue_ok_ms, now_ms))],
    )
    lines += _family(
        "fundbot_scheduler_heartbeat_age_seconds",
        "gauge",
        "age of the last scheduler heartbeat",
        [({}, _age_s(state.scheduler_ms, now_ms))],
    )
    return "\n".join(lines) + "\n"
