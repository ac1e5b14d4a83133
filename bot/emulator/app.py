"""The aiohttp application: one host:port serving Binance's REST families and WebSocket paths.

Every REST call goes through one pipeline, in Binance's order: request weight (429 / 418), scenario
faults (latency, timeouts, 5xx, injected error codes), API key / signature / timestamp, then the
handler over ``SimExchange``. Errors leave as ``{"code", "msg"}`` with Binance's HTTP status. Answer
faults (truncated, empty, null, garbage bodies) break the 200 answer of an executed request (``after``)
or, not executed, of a busy gateway.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.emulator.auth import Authenticator, Credentials, parse_request, wall_ms
from bot.emulator.errors import MESSAGES, api_error
from bot.emulator.faults import FaultDecision, FaultInjector, Scenario, garble_answer
from bot.emulator.routing import Route
from bot.emulator.weights import RateLimiter, family, request_weight, retry_after_header
from bot.sim.clock import Clock
from bot.sim.errors import SimError

log = logging.getLogger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(body, default=_json_default, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


class Emulator:
    """Holds the simulation, the gateway state (auth, limits, faults) and the WebSocket hub."""

    def __init__(
        self,
        sim: Any,
        clock: Clock,
        credentials: Credentials,
        scenario: Scenario | None = None,
        tick_ms: int = 200,
    ) -> None:
        from bot.emulator.depth import DepthTracker
        from bot.emulator.ws import WsHub

        self.sim = sim
        self.symbols: tuple[str, ...] = tuple(sim.symbols)
        self.clock = clock
        self.credentials = credentials
        self.scenario = scenario or Scenario()
        self.auth = Authenticator(credentials)
        self.limiter = RateLimiter(self.scenario.rate_limits)
        self.faults = FaultInjector(self.scenario.faults, self.scenario.seed)
        self.depth = DepthTracker(sim)
        self.hub = WsHub(self)
        self.tick_ms = tick_ms
        self.routes: list[Route] = []

    def now_ms(self) -> int:
        """Simulated time: every timestamp the emulator reports comes from here."""
        return self.clock.now_ms()

    def order_trades(self, market: str, order: Any) -> list[Any]:
        """The fills of one order (for the spot FULL response), oldest first."""
        ids = set(order.trade_ids)
        if not ids:
            return []
        return [t for t in self.sim.my_trades(market, order.symbol, limit=None) if t.trade_id in ids]

    # ---- REST pipeline -------------------------------------------------------------------------

    def _wrap(self, route: Route):
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                req = await parse_request(request)
                used = self.limiter.charge(family(route.path), request_weight(route.method, route.path, req.params))
                decision = self.faults.decide(route.method, route.path, self.now_ms())
                if decision.latency_ms:
                    await asyncio.sleep(decision.latency_ms / 1000)
                if decision.kind not in (None, "partial_fill", "timeout") and not decision.garbles_answer:
                    return self._fault_response(decision)
                self.auth.check(req, route.security)
                if decision.garbles_answer and not decision.after:
                    return self._garbled(decision, {"code": -1008, "msg": MESSAGES[-1008]}, used)
                if decision.kind == "timeout":
                    await asyncio.sleep(decision.hang_ms / 1000)
                    return json_response({"code": -1007, "msg": MESSAGES[-1007]}, status=408)
                if decision.kind == "partial_fill" and decision.fraction is not None:
                    self.sim.force_partial_fill(decision.fraction)
                result = route.handler(self, req)
                if inspect.isawaitable(result):
                    result = await result
            except SimError as err:
                retry_after = getattr(err, "retry_after_s", None)
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
                return json_response(err.body(), status=err.http_status, headers=headers)
            except Exception:
                log.exception("emulator: %s %s failed", route.method, route.path)
                internal = api_error(-1000, http_status=500)
                return json_response(internal.body(), status=500)
            await self.hub.flush_user_events()
            if decision.garbles_answer:
                return self._garbled(decision, result, used)
            return json_response(result, headers={"X-MBX-USED-WEIGHT-1M": str(used)})

        return handle

    @staticmethod
    def _garbled(decision: FaultDecision, answer: Any, used: int) -> web.Response:
        """HTTP 200 whose body is broken: the executed request's answer, or (not executed) a busy error's."""
        body = json.dumps(answer, default=_json_default, separators=(",", ":")).encode()
        return web.Response(
            body=garble_answer(decision.kind or "", body, decision.fraction),
            status=200,
            content_type="application/json",
            headers={"X-MBX-USED-WEIGHT-1M": str(used)},
        )

    @staticmethod
    def _fault_response(decision: FaultDecision) -> web.StreamResponse:
        if decision.kind == "502":
            return web.Response(status=502, body=b"")
        if decision.kind == "404":
            return web.Response(
                status=404, text="<html><body><h1>404 Not Found</h1></body></html>", content_type="text/html"
            )
        if decision.kind == "503":
            return json_response({"code": -1008, "msg": MESSAGES[-1008]}, status=503)
        code = decision.code if decision.code is not None else -1000
        body = {"code": code, "msg": decision.msg or MESSAGES.get(code, "")}
        status = decision.status or 400
        headers = retry_after_header(status, str(body["msg"]), wall_ms()) if status in (418, 429) else None
        return json_response(body, status=status, headers=headers)

    def build_app(self) -> web.Application:
        from bot.emulator import admin, rest_delivery, rest_futures, rest_sapi, rest_spot

        app = web.Application()
        self.routes = [*rest_spot.ROUTES, *rest_sapi.ROUTES, *rest_futures.ROUTES, *rest_delivery.ROUTES]
        for route in self.routes:
            app.router.add_route(route.method, route.path, self._wrap(route))
        self.hub.add_routes(app)
        admin.add_routes(app, self)  # the venue's log for audits, outside the Binance pipeline
        return app
