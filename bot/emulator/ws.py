"""WebSocket endpoints: market streams (spot and USD-M), the USD-M listenKey user stream and the spot
WebSocket API user stream.

Paths (any ``/<n>`` suffix accepted, as ccxt appends a slot index):
* spot market streams: any path under ``/stream`` (ccxt decides "spot" from ``/stream`` in the URL);
  ``/stream?streams=a/b`` gets combined ``{"stream", "data"}`` envelopes.
* USD-M market streams: ``/fstream/public/ws``, ``/fstream/market/ws`` (and ``/fstream/ws``).
* USD-M user stream: ``/fstream/private/ws?listenKey=K`` or ``/fstream/ws/K``.
* spot user stream: ``/ws-api/v3`` with ``userDataStream.subscribe.signature``; events arrive wrapped
  as ``{"subscriptionId": n, "event": {...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from bot.emulator import streams
from bot.emulator.listen_keys import ListenKeys
from bot.sim.errors import SimError

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class MarketSocket:
    ws: web.WebSocketResponse
    market: str  # "spot" or "perp"
    combined: bool = False
    streams: set[str] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class UserSocket:
    ws: web.WebSocketResponse
    listen_key: str | None = None  # USD-M
    subscriptions: set[int] = field(default_factory=set)  # spot WS-API


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, separators=(",", ":"))


class WsHub:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.market_sockets: set[MarketSocket] = set()
        self.fapi_users: set[UserSocket] = set()
        self.spot_users: set[UserSocket] = set()
        self.listen_keys = ListenKeys(emu.scenario.listen_key_ttl_s)
        self._next_subscription = 0
        self._pending_user: list[tuple[str, dict[str, Any]]] = []

    # ---- routing ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/stream{tail:.*}", self._spot_market)
        app.router.add_get("/fstream/private/ws{tail:.*}", self._fapi_private)
        app.router.add_get("/fstream/public/ws{tail:.*}", self._perp_market)
        app.router.add_get("/fstream/market/ws{tail:.*}", self._perp_market)
        app.router.add_get("/fstream/ws{tail:.*}", self._fapi_legacy)
        app.router.add_get("/ws-api/v3{tail:.*}", self._spot_ws_api)

    async def _prepare(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        return ws

    # ---- market streams --------------------------------------------------------------------

    async def _spot_market(self, request: web.Request) -> web.WebSocketResponse:
        return await self._market(request, "spot")

    async def _perp_market(self, request: web.Request) -> web.WebSocketResponse:
        return await self._market(request, "perp")

    async def _fapi_legacy(self, request: web.Request) -> web.WebSocketResponse:
        key = request.match_info.get("tail", "").strip("/").split("/")[-1]
        if key and self.listen_keys.is_active(key):
            return await self._user_socket(request, key)
        return await self._market(request, "perp")

    async def _market(self, request: web.Request, market: str) -> web.WebSocketResponse:
        ws = await self._prepare(request)
        sock = MarketSocket(ws, market)
        initial = request.query.get("streams")
        if initial:
            sock.combined = True
            sock.streams.update(s for s in initial.split("/") if s)
        self.market_sockets.add(sock)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._market_command(sock, msg.data)
        finally:
            self.market_sockets.discard(sock)
        return ws

    async def _market_command(self, sock: MarketSocket, text: str) -> None:
        try:
            msg = json.loads(text)
            method, params, req_id = msg.get("method"), msg.get("params") or [], msg.get("id")
        except (json.JSONDecodeError, AttributeError):
            await sock.ws.send_str(_dumps({"error": {"code": 2, "msg": "Invalid request"}}))
            return
        if method == "SUBSCRIBE":
            sock.streams.update(str(p) for p in params)
            await sock.ws.send_str(_dumps({"result": None, "id": req_id}))
            for name in params:
                await self._send_market(sock, str(name), self._build_market(sock.market, str(name)))
        elif method == "UNSUBSCRIBE":
            sock.streams.difference_update(str(p) for p in params)
            await sock.ws.send_str(_dumps({"result": None, "id": req_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await sock.ws.send_str(_dumps({"result": sorted(sock.streams), "id": req_id}))
        else:
            await sock.ws.send_str(_dumps({"result": None, "id": req_id}))

    def _build_market(self, market: str, stream: str) -> Any:
        try:
            return streams.market_event(self.emu, market, stream)
        except SimError:
            return None

    async def _send_market(self, sock: MarketSocket, stream: str, payload: Any) -> None:
        if payload is None or sock.ws.closed:
            return
        body = {"stream": stream, "data": payload} if sock.combined else payload
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sock.ws.send_str(_dumps(body))

    async def push_market(self) -> None:
        """One round of market-data pushes for every subscribed stream (built once per stream)."""
        now = self.emu.now_ms()
        depth_events: dict[tuple[str, str], dict[str, Any] | None] = {}
        for key in self.emu.depth.tracked():
            depth_events[key] = self.emu.depth.refresh(key[0], key[1], now)
        cache: dict[tuple[str, str], Any] = {}
        for sock in list(self.market_sockets):
            for stream in list(sock.streams):
                symbol, _, channel = stream.partition("@")
                if channel.startswith("depth"):
                    payload = depth_events.get((sock.market, symbol.upper()))
                else:
                    key = (sock.market, stream)
                    if key not in cache:
                        cache[key] = self._build_market(sock.market, stream)
                    payload = cache[key]
                await self._send_market(sock, stream, payload)

    # ---- USD-M user stream -----------------------------------------------------------------

    async def _fapi_private(self, request: web.Request) -> web.WebSocketResponse:
        key = request.query.get("listenKey") or request.match_info.get("tail", "").strip("/").split("/")[-1]
        if not key or not self.listen_keys.is_active(key):
            raise web.HTTPBadRequest(text='{"code":-1125,"msg":"This listenKey does not exist."}')
        return await self._user_socket(request, key)

    async def _user_socket(self, request: web.Request, key: str) -> web.WebSocketResponse:
        ws = await self._prepare(request)
        sock = UserSocket(ws, listen_key=key)
        self.fapi_users.add(sock)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:  # market-style commands on a user socket: just ack
                    with contextlib.suppress(json.JSONDecodeError, AttributeError):
                        await ws.send_str(_dumps({"result": None, "id": json.loads(msg.data).get("id")}))
        finally:
            self.fapi_users.discard(sock)
        return ws

    async def expire_listen_keys(self) -> None:
        expired = set(self.listen_keys.pop_expired())
        if not expired:
            return
        for sock in list(self.fapi_users):
            if sock.listen_key in expired:
                # as Binance: the event (E a string, as its current docs show), and the socket stays open
                # but carries no more user events (``flush_user_events`` skips expired keys)
                event = {"e": "listenKeyExpired", "E": str(self.emu.now_ms()), "listenKey": sock.listen_key}
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sock.ws.send_str(_dumps(event))

    # ---- spot WebSocket API user stream ----------------------------------------------------

    async def _spot_ws_api(self, request: web.Request) -> web.WebSocketResponse:
        ws = await self._prepare(request)
        sock = UserSocket(ws)
        self.spot_users.add(sock)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._ws_api_call(sock, msg.data)
        finally:
            self.spot_users.discard(sock)
        return ws

    async def _ws_api_call(self, sock: UserSocket, text: str) -> None:
        try:
            msg = json.loads(text)
            req_id, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        except (json.JSONDecodeError, AttributeError):
            await sock.ws.send_str(_dumps({"id": None, "status": 400, "error": {"code": -1100, "msg": "Bad JSON"}}))
            return
        try:
            result = self._ws_api_result(sock, method, params)
        except SimError as err:
            reply = {"id": req_id, "status": err.http_status, "error": err.body()}
        else:
            reply = {"id": req_id, "status": 200, "result": result, "rateLimits": []}
        await sock.ws.send_str(_dumps(reply))

    def _ws_api_result(self, sock: UserSocket, method: Any, params: dict[str, Any]) -> Any:
        if method == "userDataStream.subscribe.signature":
            self.emu.auth.check_ws_signature(params)
            sid = self._next_subscription
            self._next_subscription += 1
            sock.subscriptions.add(sid)
            return {"subscriptionId": sid}
        if method == "userDataStream.unsubscribe":
            which = params.get("subscriptionId")
            if which is None:
                sock.subscriptions.clear()
            else:
                sock.subscriptions.discard(int(which))
            return {}
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.emu.now_ms()}
        raise SimError(-1000, f"Unknown method: {method}")

    # ---- user events -----------------------------------------------------------------------

    def queue_user_event(self, market: str, event: dict[str, Any]) -> None:
        """Called synchronously from sim callbacks; sent by ``flush_user_events``."""
        self._pending_user.append((market, event))

    async def flush_user_events(self) -> None:
        pending, self._pending_user = self._pending_user, []
        for market, event in pending:
            if market == "spot":
                for sock in list(self.spot_users):
                    for sid in sorted(sock.subscriptions):
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await sock.ws.send_str(_dumps({"subscriptionId": sid, "event": event}))
            else:
                for sock in list(self.fapi_users):
                    if sock.listen_key and self.listen_keys.is_active(sock.listen_key):
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await sock.ws.send_str(_dumps(event))

    # ---- faults and shutdown ---------------------------------------------------------------

    async def disconnect_all(self) -> int:
        """Drop every WebSocket (scenario disconnects and shutdown); returns how many were closed."""
        sockets = [s.ws for s in self.market_sockets] + [s.ws for s in self.fapi_users | self.spot_users]
        for ws in sockets:
            with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator disconnect")
        return len(sockets)
