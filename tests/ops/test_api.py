"""The operator API over the reference history (SQLite and Postgres): what it reads, the controls it writes,
the token it demands, and its OpenAPI description (the routes served are the routes described)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from bot.ledger.models import ControlKind, ControlStatus, EventKind
from bot.ledger.repository import Ledger
from bot.ops.api import API_OFF, ApiService
from bot.ops.openapi import API_PREFIX
from bot.services.health import HealthState, bound_port, start_health_server
from tests.ledger_files import open_ledger

from .history import T_END, T_FUND, Expected, build_history

TOKEN = "test-token-0123456789abcdef"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
BAND = (Decimal("0.35"), Decimal("0.5"), Decimal("0.7"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Served:
    base: str
    http: aiohttp.ClientSession
    ledger: Ledger
    api: ApiService
    changes: list[str]

    async def get(self, path: str, *, auth: bool = True, **params: Any) -> tuple[int, Any]:
        async with self.http.get(self.base + path, params=params, headers=AUTH if auth else {}) as r:
            return r.status, await r.json(content_type=None)

    async def post(self, path: str, body: Any, *, raw: str | None = None, ctype: str = "application/json") -> Any:
        data = raw if raw is not None else json.dumps(body)
        async with self.http.post(self.base + path, data=data, headers={**AUTH, "Content-Type": ctype}) as r:
            return r.status, await r.json(content_type=None)


async def serve(ledger: Ledger, token: str | None = TOKEN) -> tuple[Any, ApiService, list[str]]:
    changes: list[str] = []
    health = HealthState(now_fn=lambda: T_END)
    api = ApiService(
        ledger,
        token=token,
        now_fn=lambda: T_END,
        health=health,
        symbols=SYMBOLS,
        band=BAND,
        mode="live",
        on_control=lambda: changes.append("scan"),
        stream_interval_s=0.05,
    )
    runner = await start_health_server(health, "127.0.0.1", 0, api=api)
    return runner, api, changes


@pytest.fixture
async def served(db_url: str) -> AsyncIterator[Served]:
    ledger = await open_ledger(db_url)
    await build_history(ledger)
    runner, api, changes = await serve(ledger)
    try:
        async with aiohttp.ClientSession() as http:
            yield Served(f"http://127.0.0.1:{bound_port(runner)}", http, ledger, api, changes)
    finally:
        await runner.cleanup()
        await ledger.close()


P = API_PREFIX


# -- reads ----------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_status_shows_the_book_and_the_band(served: Served) -> None:
    status, st = await served.get(f"{P}/status")
    assert status == 200
    (pair,) = st["pairs"]
    assert (pair["symbol"], pair["state"], pair["spot_qty"], pair["perp_qty"]) == ("BTC/USDT", "open", "0.0999", "0.1")
    assert Decimal(pair["hedge_drift"]) == Expected.drift and Decimal(pair["notional"]) == Expected.notional
    assert pair["funding_earned"] == "0.6" and (pair["paused"], pair["exit_requested"]) == (False, False)
    assert Decimal(st["collateral"]["margin_balance"]) == Expected.margin
    assert Decimal(st["collateral"]["ratio"]) == Expected.margin / Expected.notional
    assert st["collateral"]["band"] == {"low": "0.35", "target": "0.5", "high": "0.7"}
    assert st["health"]["status"] == "ok" and st["mode"] == "live" and st["symbols"] == SYMBOLS
    nxt = {s["symbol"]: s for s in st["settlements"]}
    assert nxt["BTC/USDT"]["held"] and nxt["BTC/USDT"]["next_funding_ms"] > T_END
    assert nxt["ETH/USDT"]["next_funding_ms"] is None  # no rate recorded for it
    assert st["controls"]["close_only"] is False


@pytest.mark.slow
async def test_equity_curve_funding_and_pnl_match_the_hand_computed_figures(served: Served) -> None:
    status, eq = await served.get(f"{P}/equity")
    assert status == 200
    first, last = eq["points"][0], eq["points"][-1]
    assert Decimal(first["equity"]) == Expected.equity_first and Decimal(last["equity"]) == Expected.equity_last
    assert Decimal(last["pnl"]) == Expected.equity_last - Expected.equity_first
    assert Decimal(last["funding"]) == Expected.funding and Decimal(last["fees"]) == Expected.fees
    _, windowed = await served.get(f"{P}/equity", since="5m")  # only the last snapshot is in the window
    assert [p["ts_ms"] for p in windowed["points"]] == [last["ts_ms"]]
    _, funding = await served.get(f"{P}/funding")
    assert funding["total"] == "0.6" and funding["by_symbol"] == {"BTC/USDT": "0.6"}
    assert funding["payments"][0]["funding_time_ms"] == T_FUND
    _, none = await served.get(f"{P}/funding", pair="ETH/USDT")
    assert none["count"] == 0 and none["total"] == "0"
    _, pnl = await served.get(f"{P}/pnl")
    assert Decimal(pnl["total"]["net"]) == Expected.net and Decimal(pnl["total"]["fees"]) == Expected.fees


@pytest.mark.slow
async def test_event_tail_filters_and_follows(served: Served) -> None:
    _, decisions = await served.get(f"{P}/events", kind="decision")
    assert [e["kind"] for e in decisions["events"]] == ["decision", "decision"]
    assert "rule=enter_carry" in decisions["events"][-1]["summary"]  # the tail's text: why
    _, two = await served.get(f"{P}/events", limit="2")
    assert len(two["events"]) == 2 and two["events"][0]["id"] > two["events"][1]["id"]  # newest first
    top = two["events"][0]["id"]
    _, after = await served.get(f"{P}/events", after_id=str(top - 3))
    assert [e["id"] for e in after["events"]] == [top - 2, top - 1, top] and after["last_id"] == top
    _, alerts = await served.get(f"{P}/alerts")
    assert [e["details"]["alert"] for e in alerts["events"]] == ["hedge_drift"]
    # "¹" passes str.isdigit but not int(): a 500 that schemathesis found
    bads = ({"kind": "decision,nope"}, {"limit": "0"}, {"limit": "¹"}, {"since": "yesterday"}, {"pair": "DOGE/USDT"})
    for bad in bads:
        status, body = await served.get(f"{P}/events", **bad)
        assert status == 400 and next(iter(bad)) in body["error"], (bad, body)


@pytest.mark.slow
async def test_stream_sends_new_events(served: Served) -> None:
    async with served.http.get(f"{served.base}{P}/stream", headers=AUTH) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        await r.content.readuntil(b"\n\n")  # retry:
        await served.ledger.add_event(EventKind.INFO, "something new", ts_ms=T_END)
        block = (await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)).decode()
    lines = dict(line.split(": ", 1) for line in block.strip().splitlines())
    assert lines["event"] == "ledger"
    batch = json.loads(lines["data"])
    assert [e["message"] for e in batch["events"]] == ["something new"] and lines["id"] == str(batch["last_id"])


# -- controls -------------------------------------------------------------------------------------------


async def test_controls_are_written_like_the_cli_with_source_api(served: Served) -> None:
    status, res = await served.post(f"{P}/controls/pause", {"symbol": "ETH/USDT", "reason": "listing news"})
    assert status == 200 and res["changed"] and res["controls"]["paused"] == ["ETH/USDT"]
    assert served.changes == ["scan"]  # the daemon is told: it scans at once
    _, again = await served.post(f"{P}/controls/pause", {"symbol": "ETH/USDT"})
    assert not again["changed"] and "already paused" in again["message"] and served.changes == ["scan"]
    _, on = await served.post(f"{P}/controls/close-only", {"on": True, "reason": "rebalancing the book"})
    assert on["controls"]["close_only"] is True
    _, cap = await served.post(f"{P}/controls/capital-limit", {"value": 2500.125})
    assert cap["controls"]["capital_limit"] == "2500.125"  # read from the JSON text: exact
    _, ex = await served.post(f"{P}/controls/exit", {"symbol": "BTC/USDT", "reason": "funding turned", "pause": True})
    assert ex["changed"] and "pair #1" in ex["message"]
    rows = {(c.kind, c.symbol): c for c in await served.ledger.controls()}
    exit_row = rows[(ControlKind.EXIT, "BTC/USDT")]
    assert (exit_row.pair_id, exit_row.reason, exit_row.source) == (1, "funding turned", "api")
    assert rows[(ControlKind.CAPITAL_LIMIT, "*")].value == Decimal("2500.125")
    assert (ControlKind.PAUSE, "BTC/USDT") in rows  # "pause": true paused it as well
    infos = [e for e in await served.ledger.events(kinds=[EventKind.INFO]) if (e.details or {}).get("control")]
    assert all(e.details["source"] == "api" for e in infos)
    assert any(e.message == "operator (API) asked to exit BTC/USDT (pair #1): funding turned" for e in infos)
    _, status_now = await served.get(f"{P}/status")
    assert status_now["pairs"][0]["exit_requested"] and status_now["pairs"][0]["paused"]
    for path, body in (
        (f"{P}/controls/resume", {"symbol": "ETH/USDT"}),
        (f"{P}/controls/close-only", {"on": False}),
        (f"{P}/controls/capital-limit", {"value": None}),
    ):
        _, res = await served.post(path, body)
        assert res["changed"], (path, res)
    left = {(c.kind, c.symbol) for c in await served.ledger.controls()}
    assert left == {(ControlKind.EXIT, "BTC/USDT"), (ControlKind.PAUSE, "BTC/USDT")}
    history = await served.ledger.control_history([ControlKind.CLOSE_ONLY])
    assert [c.status for c in history] == [ControlStatus.CLEARED]


@pytest.mark.slow
async def test_bad_control_requests_are_refused_and_change_nothing(served: Served) -> None:
    before = len(await served.ledger.events())
    cases = [
        (f"{P}/controls/exit", {"symbol": "ETH/USDT"}, None, "application/json", 409, "holds no open pair of ETH/USDT"),
        (f"{P}/controls/pause", {"symbol": "DOGE/USDT"}, None, "application/json", 400, "expected one of"),
        (f"{P}/controls/pause", {"symbol": "ETH/USDT", "why": "x"}, None, "application/json", 400, "unknown field"),
        (f"{P}/controls/close-only", {"on": "yes"}, None, "application/json", 400, "expected true or false"),
        (f"{P}/controls/close-only", {}, None, "application/json", 400, "missing field 'on'"),
        (f"{P}/controls/capital-limit", {"value": 0.5}, None, "application/json", 400, "expected from 1"),
        (f"{P}/controls/capital-limit", {"value": "5000"}, None, "application/json", 400, "expected a number"),
        (f"{P}/controls/pause", None, "{not json", "application/json", 400, "not valid JSON"),
        (f"{P}/controls/pause", None, "symbol=ETH/USDT", "application/x-www-form-urlencoded", 415, "must be JSON"),
    ]
    for path, body, raw, ctype, code, text in cases:
        status, res = await served.post(path, body, raw=raw, ctype=ctype)
        assert status == code and text in res["error"], (path, body, raw, status, res)
    assert await served.ledger.controls() == [] and len(await served.ledger.events()) == before
    assert served.changes == []


# -- access ---------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_every_api_route_needs_the_token_and_probes_do_not(served: Served) -> None:
    spec = served.api.spec
    for path, ops in spec["paths"].items():
        for method in ops:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
                async with served.http.request(method, served.base + path, headers=headers) as r:
                    assert r.status == 401, (method, path, headers)
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for open_path in ("/healthz", "/metrics", "/", "/dashboard/dashboard.js", "/dashboard/dashboard.css"):
        async with served.http.get(served.base + open_path) as r:
            assert r.status == 200, open_path
    async with served.http.get(served.base + "/") as r:
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert TOKEN not in await r.text()


async def test_without_a_token_the_api_is_off_and_says_so(sqlite_url: str) -> None:
    ledger = await open_ledger(sqlite_url)
    runner, api, _ = await serve(ledger, token="")
    try:
        assert not api.enabled
        base = f"http://127.0.0.1:{bound_port(runner)}"
        async with aiohttp.ClientSession() as http:
            for path in (f"{P}/status", f"{P}/controls/exit"):
                async with http.post(base + path, headers=AUTH) as r:
                    assert r.status == 404 and (await r.json())["error"] == API_OFF
            async with http.get(base + "/") as r:
                assert r.status == 404 and "FUNDBOT_HTTP__API_TOKEN" in await r.text()
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
        await ledger.close()


def test_the_routes_served_are_the_routes_described(sqlite_url: str) -> None:
    from aiohttp import web

    api = ApiService(
        None, token=None, now_fn=lambda: 0, health=HealthState(now_fn=lambda: 0), symbols=SYMBOLS, band=BAND
    )
    api._token = TOKEN.encode()  # routes only; no request is served
    app = web.Application()
    api.install(app)
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith(P) and r.method != "HEAD"
    }
    described = {(m, path) for path, ops in api.spec["paths"].items() for m in ops}
    assert served == described
    schemas = api.spec["components"]["schemas"]
    assert schemas["PauseRequest"]["properties"]["symbol"]["enum"] == SYMBOLS
