"""Scenario files: seeded, reproducible fault injection and market events for the emulator.

A scenario is JSON (``.json``) or TOML (``.toml``); the format is documented in SCENARIOS.md. REST
faults are decided per request with one ``random.Random(seed)``, drawn only for matching rules, so the
same request sequence meets the same faults. Timed events (price shocks, funding overrides, forced
partial fills, WebSocket disconnects) fire when the simulated clock passes their instant.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import random
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain import exchange_id
from bot.emulator.errors import MESSAGES, STATUS_BY_CODE
from bot.emulator.weights import RateLimits

ANSWER_FAULT_KINDS = frozenset({"truncate", "empty", "null", "garbage"})
FAULT_KINDS = frozenset({"error", "timeout", "503", "502", "latency", "partial_fill", "404"}) | ANSWER_FAULT_KINDS
GARBAGE_BODY = b"\x1f\x8b\x08\x00\xff\xfe<!-- upstream reset -->\x00\x9c"
_REL = re.compile(r"^\+(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the entry and the field."""


def parse_instant(value: Any, sim_start_ms: int, where: str) -> int:
    """Epoch ms from an int (ms), an ISO-8601 UTC string, or ``+<n><ms|s|m|h|d>`` after the sim start."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _REL.match(value.strip())
        if m:
            return sim_start_ms + int(Decimal(m.group(1)) * _UNIT_MS[m.group(2)])
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return int(parsed.timestamp() * 1000)
    raise ScenarioError(f"{where}: {value!r} is not epoch ms, an ISO UTC time or '+<n>h' (ms|s|m|h|d)")


def parse_duration_ms(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _REL.match("+" + value.strip().lstrip("+"))
        if m:
            return int(Decimal(m.group(1)) * _UNIT_MS[m.group(2)])
    raise ScenarioError(f"{where}: {value!r} is not a duration (ms or '<n><ms|s|m|h|d>')")


@dataclass(slots=True)
class FaultRule:
    """One REST fault: ``endpoint`` is ``"METHOD /path"`` with shell wildcards (``"* /fapi/*"``)."""

    endpoint: str
    kind: str = "error"
    rate: float = 1.0
    code: int | None = None
    msg: str | None = None
    status: int | None = None
    latency_ms: int = 0
    hang_ms: int = 1000
    fraction: Decimal = Decimal("0.5")
    after: bool = True
    count: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    fired: int = 0

    def matches(self, method: str, path: str, sim_now_ms: int) -> bool:
        pattern_method, _, pattern_path = self.endpoint.partition(" ")
        if not pattern_path:
            pattern_method, pattern_path = "*", pattern_method
        if not fnmatch.fnmatchcase(method.upper(), pattern_method.upper()):
            return False
        if not fnmatch.fnmatchcase(path, pattern_path):
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        if self.start_ms is not None and sim_now_ms < self.start_ms:
            return False
        return not (self.end_ms is not None and sim_now_ms >= self.end_ms)


@dataclass(frozen=True, slots=True)
class PriceShock:
    symbol: str
    pct: Decimal
    at_ms: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class FundingOverride:
    symbol: str
    rate: Decimal
    at_ms: int


@dataclass(frozen=True, slots=True)
class PartialFill:
    fraction: Decimal
    at_ms: int


@dataclass(slots=True)
class Scenario:
    seed: int = 0
    faults: list[FaultRule] = field(default_factory=list)
    price_shocks: list[PriceShock] = field(default_factory=list)
    funding_overrides: list[FundingOverride] = field(default_factory=list)
    partial_fills: list[PartialFill] = field(default_factory=list)
    ws_disconnect_at_ms: list[int] = field(default_factory=list)
    ws_disconnect_every_s: float | None = None
    listen_key_ttl_s: float = 3600.0
    rate_limits: RateLimits = field(default_factory=RateLimits)


_FAULT_KEYS = {
    "endpoint",
    "kind",
    "rate",
    "code",
    "msg",
    "status",
    "latency_ms",
    "hang_ms",
    "fraction",
    "after",
    "count",
    "start",
    "end",
}
_TOP_KEYS = {
    "seed",
    "faults",
    "price_shocks",
    "funding_overrides",
    "partial_fills",
    "ws_disconnects",
    "listen_key_ttl_s",
    "rate_limits",
}


def _check_keys(entry: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ScenarioError(f"{where}: expected a table/object")
    unknown = set(entry) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return entry


def _need(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise ScenarioError(f"{where}: '{key}' is required")
    return entry[key]


def _fault(entry: dict[str, Any], sim_start_ms: int, where: str) -> FaultRule:
    _check_keys(entry, _FAULT_KEYS, where)
    kind = str(entry.get("kind", "error" if "code" in entry else "latency" if "latency_ms" in entry else ""))
    if kind not in FAULT_KINDS:
        raise ScenarioError(f"{where}: kind must be one of {sorted(FAULT_KINDS)} (or give 'code')")
    rate = float(entry.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise ScenarioError(f"{where}: rate must be within 0..1")
    code = entry.get("code")
    if kind == "error" and code is None:
        raise ScenarioError(f"{where}: an 'error' fault needs 'code' (e.g. -5013)")
    after = entry.get("after", True)
    if not isinstance(after, bool):
        raise ScenarioError(f"{where}: 'after' must be true or false (is the request executed first?)")
    if "after" in entry and kind not in ANSWER_FAULT_KINDS:
        raise ScenarioError(f"{where}: 'after' applies only to {sorted(ANSWER_FAULT_KINDS)}")
    fraction = Decimal(str(entry.get("fraction", "0.5")))
    if kind == "truncate" and not Decimal(0) < fraction < Decimal(1):
        raise ScenarioError(f"{where}: a 'truncate' fraction (of the body kept) must be strictly between 0 and 1")
    return FaultRule(
        endpoint=str(_need(entry, "endpoint", where)),
        kind=kind,
        rate=rate,
        code=int(code) if code is not None else None,
        msg=entry.get("msg"),
        status=int(entry["status"]) if "status" in entry else None,
        latency_ms=int(entry.get("latency_ms", 0)),
        hang_ms=int(entry.get("hang_ms", 1000)),
        fraction=fraction,
        after=after,
        count=int(entry["count"]) if "count" in entry else None,
        start_ms=parse_instant(entry["start"], sim_start_ms, where) if "start" in entry else None,
        end_ms=parse_instant(entry["end"], sim_start_ms, where) if "end" in entry else None,
    )


def scenario_from_dict(data: dict[str, Any], sim_start_ms: int) -> Scenario:
    """Validate and resolve a scenario (relative times are resolved against ``sim_start_ms``)."""
    _check_keys(data, _TOP_KEYS, "scenario")
    sc = Scenario(seed=int(data.get("seed", 0)))
    for i, entry in enumerate(data.get("faults", [])):
        sc.faults.append(_fault(entry, sim_start_ms, f"faults[{i}]"))
    for i, entry in enumerate(data.get("price_shocks", [])):
        where = f"price_shocks[{i}]"
        _check_keys(entry, {"symbol", "pct", "at", "duration"}, where)
        sc.price_shocks.append(
            PriceShock(
                symbol=exchange_id(str(_need(entry, "symbol", where))),
                pct=Decimal(str(_need(entry, "pct", where))),
                at_ms=parse_instant(_need(entry, "at", where), sim_start_ms, where),
                duration_ms=parse_duration_ms(entry.get("duration", 0), where),
            )
        )
    for i, entry in enumerate(data.get("funding_overrides", [])):
        where = f"funding_overrides[{i}]"
        _check_keys(entry, {"symbol", "rate", "at"}, where)
        sc.funding_overrides.append(
            FundingOverride(
                symbol=exchange_id(str(_need(entry, "symbol", where))),
                rate=Decimal(str(_need(entry, "rate", where))),
                at_ms=parse_instant(entry.get("at", sim_start_ms), sim_start_ms, where),
            )
        )
    for i, entry in enumerate(data.get("partial_fills", [])):
        where = f"partial_fills[{i}]"
        _check_keys(entry, {"fraction", "at"}, where)
        fraction = Decimal(str(_need(entry, "fraction", where)))
        if not Decimal(0) < fraction < Decimal(1):
            raise ScenarioError(f"{where}: fraction must be strictly between 0 and 1")
        sc.partial_fills.append(
            PartialFill(fraction, parse_instant(entry.get("at", sim_start_ms), sim_start_ms, where))
        )
    ws = _check_keys(data.get("ws_disconnects", {}), {"at", "every_seconds"}, "ws_disconnects")
    sc.ws_disconnect_at_ms = [
        parse_instant(v, sim_start_ms, f"ws_disconnects.at[{i}]") for i, v in enumerate(ws.get("at", []))
    ]
    sc.ws_disconnect_every_s = float(ws["every_seconds"]) if "every_seconds" in ws else None
    sc.listen_key_ttl_s = float(data.get("listen_key_ttl_s", 3600.0))
    rl = _check_keys(data.get("rate_limits", {}), {"per_minute", "ban_after", "ban_seconds"}, "rate_limits")
    limits = RateLimits()
    limits.per_minute.update({str(k): int(v) for k, v in rl.get("per_minute", {}).items()})
    limits.ban_after = int(rl.get("ban_after", limits.ban_after))
    limits.ban_ms = int(float(rl.get("ban_seconds", limits.ban_ms / 1000)) * 1000)
    sc.rate_limits = limits
    return sc


def load_scenario(path: Path, sim_start_ms: int) -> Scenario:
    """Read a ``.json`` or ``.toml`` scenario file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ScenarioError(f"{path}: {err}") from None
    return scenario_from_dict(data, sim_start_ms)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: wait ``latency_ms`` then, unless ``kind`` is None, fail or alter it."""

    latency_ms: int = 0
    kind: str | None = None
    code: int | None = None
    msg: str | None = None
    status: int | None = None
    hang_ms: int = 0
    fraction: Decimal | None = None
    after: bool = True

    @property
    def garbles_answer(self) -> bool:
        return self.kind in ANSWER_FAULT_KINDS


class FaultInjector:
    """Decides per request, reproducibly for a given seed and request sequence."""

    def __init__(self, rules: list[FaultRule], seed: int) -> None:
        self.rules = rules
        self.rng = random.Random(seed)

    def decide(self, method: str, path: str, sim_now_ms: int) -> FaultDecision:
        latency = 0
        for rule in self.rules:
            if not rule.matches(method, path, sim_now_ms):
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            rule.fired += 1
            if rule.kind == "latency":
                latency += rule.latency_ms
                continue
            code = rule.code
            status = rule.status
            msg = rule.msg
            if rule.kind == "error" and code is not None:
                status = status or STATUS_BY_CODE.get(code, 400)
                msg = msg or MESSAGES.get(code, "An unknown error occurred while processing the request.")
            return FaultDecision(
                latency_ms=latency + rule.latency_ms,
                kind=rule.kind,
                code=code,
                msg=msg,
                status=status,
                hang_ms=rule.hang_ms,
                fraction=rule.fraction if rule.kind in ("partial_fill", "truncate") else None,
                after=rule.after,
            )
        return FaultDecision(latency_ms=latency)


def _null_numbers(value: Any) -> Any:
    """Numbers, and strings that read as numbers (Binance quotes most of them), become null."""
    if isinstance(value, dict):
        return {k: _null_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_numbers(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return None
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError:
            return value
        return None if number.is_finite() else value
    return value


def garble_answer(kind: str, body: bytes, fraction: Decimal | None) -> bytes:
    """The body a broken network or gateway delivers instead of ``body`` (a JSON answer)."""
    if kind == "truncate":
        keep = int(len(body) * (fraction if fraction is not None else Decimal("0.5")))
        return body[: max(1, min(keep, len(body) - 1))] if len(body) > 1 else b""
    if kind == "empty":
        return b""
    if kind == "garbage":
        return GARBAGE_BODY
    if kind == "null":
        return json.dumps(_null_numbers(json.loads(body)), separators=(",", ":")).encode()
    raise ValueError(f"not an answer fault: {kind!r}")
