"""``GET /_emulator/journal``: the venue's own log for audits, outside the Binance pipeline (no faults, no
weight), for loopback peers holding the run's API key only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from bot.emulator.admin import API_KEY_HEADER, JOURNAL_PATH
from bot.emulator.server import EmulatorHandle, run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client


def _url(conn: dict[str, Any]) -> str:
    return f"http://{conn['host']}:{conn['http_port']}{JOURNAL_PATH}"


async def test_the_journal_lists_what_the_account_did_and_needs_the_api_key(ex: Any, emu: EmulatorHandle) -> None:
    await ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "audit-me-1"})
    await ex.transfer("USDT", 2500, "spot", "swap")
    async with aiohttp.ClientSession() as http:
        async with http.get(_url(emu.connection)) as answer:
            assert answer.status == 401
        async with http.get(_url(emu.connection), headers={API_KEY_HEADER: "not-the-key"}) as answer:
            assert answer.status == 401
        async with http.get(_url(emu.connection), headers={API_KEY_HEADER: emu.connection["api_key"]}) as answer:
            assert answer.status == 200
            journal = await answer.json()
    (order,) = journal["orders"]
    assert order["clientOrderId"] == "audit-me-1" and order["status"] == "FILLED"
    assert Decimal(order["executedQty"]) == Decimal("0.01")
    assert [t["orderId"] for t in journal["trades"]] == [order["orderId"]] * len(journal["trades"])
    (transfer,) = journal["transfers"]
    assert transfer["type"] == "MAIN_UMFUTURE" and Decimal(transfer["amount"]) == 2500
    assert Decimal(journal["balances"]["BTC"]["free"]) == Decimal("0.00999")
    assert Decimal(journal["markets"]["spot:BTCUSDT"]["stepSize"]) > 0 and journal["now"] == emu.clock.now_ms()


async def test_the_journal_is_read_without_faults_and_counts_what_fired(start_ms: int) -> None:
    """Every Binance path answers 503 here; the journal still answers, and says how often each rule fired."""
    scenario = {"faults": [{"endpoint": "*", "kind": "503"}]}
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as emu:
        client = build_client(emu.connection, pro=False, tls=False, rateLimit=1)
        try:
            for _ in range(3):
                with pytest.raises(ccxt.BaseError):
                    await client.fetch_time()
        finally:
            await client.close()
        async with aiohttp.ClientSession() as http:
            headers = {API_KEY_HEADER: emu.connection["api_key"]}
            async with http.get(_url(emu.connection), headers=headers) as answer:
                assert answer.status == 200
                journal = await answer.json()
    assert journal["faults"] == [{"endpoint": "*", "kind": "503", "rate": 1.0, "fired": 3}]
    assert journal["orders"] == [] and journal["transfers"] == []
