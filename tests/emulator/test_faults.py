"""Scenario parsing (JSON and TOML), reproducible per-request fault decisions, and answer faults as
the real ccxt meets them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from bot.emulator.faults import FaultInjector, ScenarioError, garble_answer, load_scenario, scenario_from_dict
from bot.emulator.server import run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client

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


@pytest.mark.parametrize(
    "bad",
    [
        {"faults": [{"endpoint": "GET /x", "kind": "truncate", "after": "yes"}]},
        {"faults": [{"endpoint": "GET /x", "kind": "truncate", "fraction": 1}]},
        {"faults": [{"endpoint": "GET /x", "kind": "503", "after": True}]},
    ],
)
def test_malformed_answer_faults_are_rejected(bad: dict) -> None:
    with pytest.raises(ScenarioError, match="faults\\[0\\]"):
        scenario_from_dict(bad, START)


def test_garbled_bodies() -> None:
    body = b'{"symbol":"BTCUSDT","orderId":7,"positionAmt":"-0.002","reduceOnly":false,"rows":[{"qty":"1.5"}]}'
    cut = garble_answer("truncate", body, Decimal("0.5"))
    assert cut == body[: len(body) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    assert garble_answer("empty", body, None) == b""
    with pytest.raises(UnicodeDecodeError):
        garble_answer("garbage", body, None).decode()
    nulled = json.loads(garble_answer("null", body, None))
    assert nulled == {
        "symbol": "BTCUSDT",
        "orderId": None,
        "positionAmt": None,
        "reduceOnly": False,
        "rows": [{"qty": None}],
    }


PERP = "BTC/USDT:USDT"


async def _order_through(start_ms: int, kind: str, after: bool) -> tuple[Any, Any, list[Any]]:
    """One perp market order whose answer is garbled: (ccxt's answer, the order looked up, positions)."""
    scenario = {"faults": [{"endpoint": "POST /fapi/v1/order", "kind": kind, "after": after}]}
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            await ex.transfer("USDT", 1000, "spot", "swap")
            answer = await ex.create_order(PERP, "market", "sell", 0.002, None, {"newClientOrderId": "r1-cid-1"})
            try:
                found = await ex.fetch_order(None, PERP, {"origClientOrderId": "r1-cid-1"})
            except ccxt.OrderNotFound:
                found = None
            positions = [p for p in await ex.fetch_positions([PERP]) if p["contracts"]]
            return answer, found, positions
        finally:
            await ex.close()


@pytest.mark.parametrize("kind", ["truncate", "empty", "null", "garbage"])
async def test_answer_fault_after_execution_loses_the_answer_not_the_order(start_ms: int, kind: str) -> None:
    answer, found, positions = await _order_through(start_ms, kind, after=True)
    info = answer["info"]
    if kind == "null":  # the JSON parses, its numbers are gone
        assert info["orderId"] is None and info["executedQty"] is None and info["clientOrderId"] == "r1-cid-1"
    else:  # ccxt hands back the text it could not parse
        assert isinstance(info, str) and answer["id"] is None
        assert (info == "") == (kind == "empty")
    assert found is not None and found["status"] == "closed" and found["filled"] == 0.002
    assert [(p["side"], p["contracts"]) for p in positions] == [("short", 0.002)]


@pytest.mark.parametrize("kind", ["truncate", "garbage"])
async def test_answer_fault_before_execution_nothing_happened(start_ms: int, kind: str) -> None:
    answer, found, positions = await _order_through(start_ms, kind, after=False)
    assert isinstance(answer["info"], str) and answer["id"] is None
    assert found is None and positions == []


async def test_null_position_read_through_ccxt(start_ms: int) -> None:
    scenario = {"faults": [{"endpoint": "GET /fapi/v3/positionRisk", "kind": "null", "count": 2}]}
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            await ex.transfer("USDT", 1000, "spot", "swap")
            await ex.create_order(PERP, "market", "sell", 0.002)
            (raw,) = [r for r in await ex.fapiPrivateV3GetPositionRisk() if r["symbol"] == "BTCUSDT"]
            assert raw["positionAmt"] is None and raw["entryPrice"] is None
            assert await ex.fetch_positions([PERP]) == []  # ccxt drops the row: it reads as "no position"
            (read,) = await ex.fetch_positions([PERP])  # count = 2: the next read is whole
            assert (read["side"], read["contracts"]) == ("short", 0.002)
        finally:
            await ex.close()


def test_listing_changes_parse_and_need_a_change() -> None:
    sc = scenario_from_dict(
        {"listings": [{"symbol": "SOL/USDT", "at": "+1h", "delivery": "+3d", "status": "pre_delivering"}]}, 0
    )
    [change] = sc.listings
    assert (change.symbol, change.at_ms, change.delivery_ms, change.status) == (
        "SOLUSDT",
        3_600_000,
        3 * 86_400_000,
        "PRE_DELIVERING",
    )
    with pytest.raises(ScenarioError, match=r"listings\[0\]: give status, delivery or spot_status"):
        scenario_from_dict({"listings": [{"symbol": "SOL/USDT", "at": "+1h"}]}, 0)
