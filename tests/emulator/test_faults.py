"""Scenario parsing (JSON and TOML) and reproducible per-request fault decisions."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.emulator.faults import FaultInjector, ScenarioError, load_scenario, scenario_from_dict

START = 1_700_000_000_000
EXAMPLE = Path(__file__).resolve().parents[2] / "bot" / "emulator" / "scenarios" / "stress.json"


def test_example_scenario_loads() -> None:
    sc = load_scenario(EXAMPLE, START)
    assert sc.faults and sc.price_shocks and sc.funding_overrides
    assert sc.price_shocks[0].pct == Decimal("35")


def test_toml_and_relative_times(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'seed = 3\nlisten_key_ttl_s = 5\n[[price_shocks]]\nsymbol = "BTC/USDT"\npct = -10\nat = "+2h"\n'
        'duration = "30m"\n[[faults]]\nendpoint = "GET /api/v3/*"\nkind = "503"\nrate = 0.25\n'
    )
    sc = load_scenario(path, START)
    assert sc.seed == 3 and sc.listen_key_ttl_s == 5
    shock = sc.price_shocks[0]
    assert (shock.symbol, shock.at_ms, shock.duration_ms) == ("BTCUSDT", START + 7_200_000, 1_800_000)


def test_same_seed_same_faults() -> None:
    data = {"seed": 11, "faults": [{"endpoint": "POST /sapi/v1/asset/transfer", "rate": 0.5, "code": -5013}]}

    def run() -> list[bool]:
        inj = FaultInjector(scenario_from_dict(json.loads(json.dumps(data)), START).faults, 11)
        return [inj.decide("POST", "/sapi/v1/asset/transfer", START).kind == "error" for _ in range(200)]

    first = run()
    assert first == run()
    assert 60 < sum(first) < 140  # about half
    inj = FaultInjector(scenario_from_dict(data, START).faults, 11)
    assert inj.decide("GET", "/sapi/v1/asset/transfer", START).kind is None


def test_error_fault_gets_binance_message_and_status() -> None:
    inj = FaultInjector(scenario_from_dict({"faults": [{"endpoint": "* /fapi/*", "code": -1008}]}, START).faults, 0)
    d = inj.decide("POST", "/fapi/v1/order", START)
    assert (d.kind, d.code, d.status) == ("error", -1008, 503) and "overloaded" in (d.msg or "")


def test_count_and_window_limit_firing() -> None:
    rules = scenario_from_dict(
        {"faults": [{"endpoint": "GET /x", "kind": "502", "count": 1, "start": "+1h"}]}, START
    ).faults
    inj = FaultInjector(rules, 0)
    assert inj.decide("GET", "/x", START).kind is None
    assert inj.decide("GET", "/x", START + 3_600_000).kind == "502"
    assert inj.decide("GET", "/x", START + 3_600_000).kind is None


@pytest.mark.parametrize(
    "bad",
    [
        {"faults": [{"endpoint": "GET /x", "kind": "error"}]},
        {"faults": [{"endpoint": "GET /x", "code": -1, "rate": 2}]},
        {"price_shocks": [{"symbol": "BTCUSDT", "pct": 5}]},
        {"unknown": 1},
        {"partial_fills": [{"fraction": 1.5}]},
    ],
)
def test_malformed_scenarios_are_rejected(bad: dict) -> None:
    with pytest.raises(ScenarioError):
        scenario_from_dict(bad, START)
