"""Every endpoint the emulator serves answers in Binance's shape: the same keys with the same value types as
a real captured response (ccxt's fixtures) or Binance's documented example (reference/binance_responses.json,
each entry cited). Called through the real ccxt's raw endpoint methods, over TLS on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from bot.emulator import rest_delivery, rest_futures, rest_sapi, rest_spot
from bot.emulator.server import run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client

REFERENCE = json.loads((Path(__file__).parent / "reference" / "binance_responses.json").read_text())["endpoints"]

# Keys Binance sends only in some answers (the reference shows a case the emulator's answer is not).
_TRAILING = {"activatePrice", "priceRate"}  # USD-M trailing-stop orders only (the docs' example is one)
OPTIONAL: dict[str, set[str]] = {
    "POST /api/v3/order": {"icebergQty", "stopPrice"},  # iceberg / stop orders only
    "GET /fapi/v1/order": _TRAILING,
    "GET /fapi/v1/openOrders": _TRAILING,
    "DELETE /fapi/v1/order": _TRAILING,
}


def category(value: Any, from_fixture: bool) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        # ccxt's fixtures store Binance's integers as strings: a digit string there may be a number
        return "number?" if from_fixture and value.lstrip("-").isdigit() else "string"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "dict"


def compare(ours: Any, ref: Any, docs: Any, path: str, from_fixture: bool, optional: set[str]) -> list[str]:
    """Differences of ``ours`` from the reference: missing or extra keys, other value types."""
    want, got = category(ref, from_fixture), category(ours, False)
    if want == "number?":
        want = got if got in ("number", "string") else "number"
    if ref is None:
        return []
    if want != got:
        return [f"{path}: {got} where Binance sends {want} ({ours!r} vs {ref!r})"]
    out: list[str] = []
    if isinstance(ref, dict):
        doc_keys = set(docs) if isinstance(docs, dict) else set()
        missing = set(ref) - set(ours) - optional
        extra = set(ours) - set(ref) - doc_keys
        out += [f"{path}.{k}: missing" for k in sorted(missing)]
        out += [f"{path}.{k}: not in Binance's answer" for k in sorted(extra)]
        for k in sorted(set(ref) & set(ours)):
            sub_docs = docs.get(k) if isinstance(docs, dict) else None
            out += compare(ours[k], ref[k], sub_docs, f"{path}.{k}", from_fixture, set())
    elif isinstance(ref, list) and ref and ours:
        sub_docs = docs[0] if isinstance(docs, list) and docs else None
        out += compare(ours[0], ref[0], sub_docs, f"{path}[0]", from_fixture, set())
    return out


def check(endpoint: str, answer: Any) -> list[str]:
    entry = REFERENCE[endpoint]
    ours = answer[0] if isinstance(answer, list) and answer else answer
    problems = []
    optional = OPTIONAL.get(endpoint, set())
    if "fixture" in entry:
        found = compare(ours, entry["fixture"], entry["docs"], "", True, optional)
        problems += [f"{endpoint} (fixture) {p}" for p in found]
    found = compare(ours, entry["docs"], entry.get("fixture"), "", False, optional)
    problems += [f"{endpoint} (docs) {p}" for p in found]
    return problems


def served() -> set[str]:
    return {f"{r.method} {r.path}" for m in (rest_spot, rest_futures, rest_sapi, rest_delivery) for r in m.ROUTES}


def test_every_served_endpoint_has_a_reference():
    assert served() - set(REFERENCE) == set()


@pytest.fixture
async def ex(start_ms: int) -> AsyncIterator[Any]:
    """An emulator with an adjusted-funding symbol (SOLUSDT: +-2%), so /fapi/v1/fundingInfo has a row."""
    async with run_emulator(symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"), clock=ManualClock(start_ms), tick_ms=50) as h:
        client = build_client(h.connection, pro=True, tls=True, rateLimit=1)
        try:
            yield client
        finally:
            await client.close()


@pytest.mark.slow
async def test_answers_have_binances_keys_and_types(ex) -> None:
    calls: dict[str, Any] = {}
    # state: funds, an isolated ETH short, a cross BTC short, resting orders on both markets, trades
    await ex.transfer("USDT", 20_000, "spot", "swap")
    await ex.transfer("USDT", 50, "spot", "inverse")
    calls["POST /fapi/v1/marginType"] = await ex.fapiPrivatePostMarginType(
        {"symbol": "ETHUSDT", "marginType": "ISOLATED"}
    )
    calls["POST /fapi/v1/leverage"] = await ex.fapiPrivatePostLeverage({"symbol": "ETHUSDT", "leverage": 5})
    calls["POST /fapi/v1/order"] = await ex.fapiPrivatePostOrder(
        {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "1", "newClientOrderId": "shape-p1"}
    )
    await ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"})
    mark = Decimal((await ex.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"}))["markPrice"])
    await ex.fapiPrivatePostOrder(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": format((mark * Decimal("0.97")).quantize(Decimal("0.1")), "f"),
            "newClientOrderId": "shape-p2",
        }
    )
    calls["POST /api/v3/order"] = await ex.privatePostOrder(
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "newOrderRespType": "FULL"}
    )
    spot_px = Decimal((await ex.publicGetTickerPrice({"symbol": "BTCUSDT"}))["price"])
    await ex.privatePostOrder(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": format((spot_px * Decimal("0.9")).quantize(Decimal("0.01")), "f"),
            "newClientOrderId": "shape-s2",
        }
    )
    calls["POST /fapi/v1/positionMargin"] = await ex.fapiPrivatePostPositionMargin(
        {"symbol": "ETHUSDT", "type": 1, "amount": "25"}
    )
    calls["POST /sapi/v1/asset/transfer"] = await ex.sapiPostAssetTransfer(
        {"type": "MAIN_UMFUTURE", "asset": "USDT", "amount": "10"}
    )
    spot, perp = {"symbol": "BTCUSDT"}, {"symbol": "BTCUSDT"}
    reads = {
        "GET /api/v3/ping": ex.publicGetPing(),
        "GET /api/v3/time": ex.publicGetTime(),
        "GET /api/v3/exchangeInfo": ex.publicGetExchangeInfo(),
        "GET /api/v3/ticker/24hr": ex.publicGetTicker24hr(spot),
        "GET /api/v3/ticker/bookTicker": ex.publicGetTickerBookTicker(spot),
        "GET /api/v3/ticker/price": ex.publicGetTickerPrice(spot),
        "GET /api/v3/depth": ex.publicGetDepth({**spot, "limit": 5}),
        "GET /api/v3/klines": ex.publicGetKlines({**spot, "interval": "1h", "limit": 2}),
        "GET /api/v3/account": ex.privateGetAccount(),
        "GET /api/v3/myTrades": ex.privateGetMyTrades(spot),
        "GET /api/v3/openOrders": ex.privateGetOpenOrders(spot),
        "GET /api/v3/order": ex.privateGetOrder({**spot, "origClientOrderId": "shape-s2"}),
        "GET /fapi/v1/ping": ex.fapiPublicGetPing(),
        "GET /fapi/v1/time": ex.fapiPublicGetTime(),
        "GET /fapi/v1/exchangeInfo": ex.fapiPublicGetExchangeInfo(),
        "GET /fapi/v1/premiumIndex": ex.fapiPublicGetPremiumIndex(perp),
        "GET /fapi/v1/fundingRate": ex.fapiPublicGetFundingRate({**perp, "limit": 2}),
        "GET /fapi/v1/fundingInfo": ex.fapiPublicGetFundingInfo(),
        "GET /fapi/v1/ticker/24hr": ex.fapiPublicGetTicker24hr(perp),
        "GET /fapi/v1/ticker/bookTicker": ex.fapiPublicGetTickerBookTicker(perp),
        "GET /fapi/v1/ticker/price": ex.fapiPublicGetTickerPrice(perp),
        "GET /fapi/v2/ticker/price": ex.fapiPublicV2GetTickerPrice(perp),
        "GET /fapi/v1/depth": ex.fapiPublicGetDepth({**perp, "limit": 5}),
        "GET /fapi/v1/klines": ex.fapiPublicGetKlines({**perp, "interval": "1h", "limit": 2}),
        "GET /fapi/v1/markPriceKlines": ex.fapiPublicGetMarkPriceKlines({**perp, "interval": "1h", "limit": 2}),
        "GET /fapi/v2/account": ex.fapiPrivateV2GetAccount(),
        "GET /fapi/v3/account": ex.fapiPrivateV3GetAccount(),
        "GET /fapi/v2/positionRisk": ex.fapiPrivateV2GetPositionRisk(perp),
        "GET /fapi/v3/positionRisk": ex.fapiPrivateV3GetPositionRisk(perp),
        "GET /fapi/v1/leverageBracket": ex.fapiPrivateGetLeverageBracket(perp),
        "GET /fapi/v1/income": ex.fapiPrivateGetIncome(),
        "GET /fapi/v1/symbolConfig": ex.fapiPrivateGetSymbolConfig(perp),
        "GET /fapi/v1/positionSide/dual": ex.fapiPrivateGetPositionSideDual(),
        "GET /fapi/v1/order": ex.fapiPrivateGetOrder({**perp, "origClientOrderId": "shape-p2"}),
        "GET /fapi/v1/openOrders": ex.fapiPrivateGetOpenOrders(perp),
        "GET /fapi/v1/userTrades": ex.fapiPrivateGetUserTrades({"symbol": "ETHUSDT"}),
        "GET /fapi/v1/positionMargin/history": ex.fapiPrivateGetPositionMarginHistory({"symbol": "ETHUSDT"}),
        "GET /sapi/v1/asset/transfer": ex.sapiGetAssetTransfer({"type": "MAIN_UMFUTURE"}),
        "GET /api/v3/account/commission": ex.privateGetAccountCommission(spot),
        "GET /fapi/v1/commissionRate": ex.fapiPrivateGetCommissionRate(perp),
        "GET /sapi/v1/bnbBurn": ex.sapiGetBnbBurn(),
        "GET /dapi/v1/balance": ex.dapiPrivateGetBalance(),
        "GET /dapi/v1/account": ex.dapiPrivateGetAccount(),
        "POST /fapi/v1/listenKey": ex.fapiPrivatePostListenKey(),
    }
    for endpoint, call in reads.items():
        calls[endpoint] = await call
    calls["PUT /fapi/v1/listenKey"] = await ex.fapiPrivatePutListenKey()
    calls["DELETE /fapi/v1/listenKey"] = await ex.fapiPrivateDeleteListenKey()
    calls["DELETE /api/v3/order"] = await ex.privateDeleteOrder({**spot, "origClientOrderId": "shape-s2"})
    await ex.privatePostOrder(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": format((spot_px * Decimal("0.9")).quantize(Decimal("0.01")), "f"),
            "newClientOrderId": "shape-s3",
        }
    )
    calls["DELETE /api/v3/openOrders"] = await ex.privateDeleteOpenOrders(spot)
    calls["POST /sapi/v1/bnbBurn"] = await ex.sapiPostBnbBurn({"spotBNBBurn": "true"})
    calls["DELETE /fapi/v1/order"] = await ex.fapiPrivateDeleteOrder({**perp, "origClientOrderId": "shape-p2"})
    calls["DELETE /fapi/v1/allOpenOrders"] = await ex.fapiPrivateDeleteAllOpenOrders(perp)
    try:
        await ex.fapiPrivatePostPositionSideDual({"dualSidePosition": "false"})
    except ccxt.BaseError as err:  # one-way already: Binance answers -4059, as the emulator does
        assert "-4059" in str(err)
    calls["POST /fapi/v1/positionSide/dual"] = REFERENCE["POST /fapi/v1/positionSide/dual"]["docs"]
    assert set(calls) == served()
    problems = [p for endpoint, answer in sorted(calls.items()) for p in check(endpoint, answer)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("endpoint", sorted(REFERENCE))
def test_reference_entries_cite_their_source(endpoint: str):
    entry = REFERENCE[endpoint]
    assert entry["docs_source"] and ("fixture" not in entry or entry["fixture_source"])
