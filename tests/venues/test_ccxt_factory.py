"""The ccxt factory: emulator clients never point off loopback; live clients take keys from SecretStr."""

from __future__ import annotations

import copy
from pathlib import Path

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.emulator.connection import ConnectionInfo, write_connection_file
from bot.venues.ccxt_factory import (
    UnsafeUrlError,
    assert_loopback_only,
    build_client,
    build_live_client,
)

INFO = ConnectionInfo(
    host="127.0.0.1",
    http_port=18080,
    https_port=18443,
    api_key="k" * 64,
    secret="s" * 64,
    ca_file="/tmp/ca.pem",
    sim_start_ms=1_735_689_600_000,
    wall_start_ms=1_700_000_000_000,
    speed=60.0,
    symbols=("BTCUSDT",),
    pid=1,
)


def _urls(section) -> list[str]:
    if isinstance(section, dict):
        return [u for v in section.values() for u in _urls(v)]
    return [section] if isinstance(section, str) and "://" in section else []


async def test_tls_client_points_every_family_locally() -> None:
    ex = build_client(INFO.as_dict(), rateLimit=1)
    try:
        assert isinstance(ex, ccxt_pro.binance)
        for section in ("api", "test", "demo"):
            for url in _urls(ex.urls.get(section, {})):
                assert "127.0.0.1" in url, (section, url)
        api = ex.urls["api"]
        assert api["fapiPrivate"] == "https://demo-fapi@127.0.0.1:18443/fapi/v1"
        assert api["sapi"] == "https://demo-api@127.0.0.1:18443/sapi/v1"
        assert api["dapiPublic"].startswith("https://demo-api@127.0.0.1:18443/")
        assert api["ws"]["spot"] == "wss://127.0.0.1:18443/stream/ws"
        assert api["ws"]["ws-api"]["spot"] == "wss://127.0.0.1:18443/ws-api/v3"
        assert ex.cafile == "/tmp/ca.pem" and ex.apiKey == "k" * 64
        assert ex.rateLimit == 1 and ex.tokenBucket["refillRate"] == 1.0  # set in the constructor
        opts = ex.options
        assert opts["fetchMarkets"]["types"] == ["spot", "linear"]
        assert opts["fetchCurrencies"] is False and opts["fetchMargins"] is False
        assert opts["setMarginMode"]["throwMarginModeAlreadySet"] is False
        assert opts["fetchOpenOrders"]["warnWithoutSymbol"] is False
    finally:
        await ex.close()


async def test_plain_http_async_client_and_overrides() -> None:
    ex = build_client(INFO.as_dict(), pro=False, tls=False, options={"fetchBalance": {"useV2": True}})
    try:
        assert isinstance(ex, ccxt_async.binance) and not isinstance(ex, ccxt_pro.binance)
        assert ex.urls["api"]["public"] == "http://127.0.0.1:18080/api/v3"
        assert ex.options["fetchBalance"]["useV2"] is True and ex.options["fetchCurrencies"] is False
        assert ex.rateLimit == 50
    finally:
        await ex.close()


def test_connection_with_remote_url_is_refused() -> None:
    conn = copy.deepcopy(INFO.as_dict())
    conn["tls"]["rest"]["fapiPrivate"] = "https://fapi.binance.com/fapi/v1"
    with pytest.raises(UnsafeUrlError):
        build_client(conn)


async def test_override_cannot_smuggle_a_remote_url() -> None:
    with pytest.raises(UnsafeUrlError):
        build_client(INFO.as_dict(), urls={"api": {"public": "https://api.binance.com/api/v3"}})


async def test_from_file(tmp_path: Path) -> None:
    path = write_connection_file(INFO, tmp_path / "emu.json")
    ex = build_client(path, rateLimit=1)
    try:
        assert_loopback_only(ex)
        assert ex.secret == "s" * 64
    finally:
        await ex.close()


async def test_live_client_reads_secret_str() -> None:
    settings = Settings(api_key=SecretStr("live-key"), api_secret=SecretStr("live-secret"))
    ex = build_live_client(settings)
    try:
        assert ex.apiKey == "live-key" and ex.secret == "live-secret"
        assert "live-secret" not in repr(settings) and "live-secret" not in str(settings)
        assert ex.urls["api"]["fapiPrivate"].startswith("https://fapi.binance.com")
        assert ex.options["fetchCurrencies"] is False
    finally:
        await ex.close()
