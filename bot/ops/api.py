"""The operator API and the dashboard, on the daemon's HTTP server beside /healthz and /metrics.

Read-mostly: the book, equity and PnL, the event tail, funding, alerts (all read from the ledger by
``bot.ops.views``), and the operator controls as POSTs (the same actions as ``fundbot control``,
``bot.ops.controls``, recorded with source ``api``). After a control changes, ``on_control`` is called:
the daemon runs a scan at once, so an exit from the dashboard does not wait for the next scheduled scan.

Access: every /api route needs ``Authorization: Bearer <token>`` (``http.api_token``, a SecretStr,
compared in constant time); without a token setting the API is off and says so. Open: /healthz and
/metrics (for probes and Prometheus), and the dashboard's static files (``bot/ops/dashboard``: the page,
its script and style, no data): a browser cannot send a bearer header when it loads a page, so the page
asks for the token and sends it with every request it makes. The spec is ``bot.ops.openapi``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bot.format import parse_since, to_jsonable
from bot.ledger.controls import API_SOURCE
from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import Ledger
from bot.ops import controls as actions
from bot.ops.openapi import (
    API_PREFIX,
    CAPITAL_MAX,
    CAPITAL_MIN,
    MAX_ID,
    MAX_LIMIT,
    MAX_MS,
    MAX_REASON,
    SPAN_PATTERN,
    openapi_spec,
)
from bot.ops.report import collect_report
from bot.ops.views import LedgerViews
from bot.services.health import HealthState

log = logging.getLogger(__name__)

API_OFF = "the operator API and dashboard are off: set FUNDBOT_HTTP__API_TOKEN (16 characters or more) to turn them on"
DASHBOARD_PATH = "/dashboard/"
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/", "/favicon.ico"})
STREAM_KEEPALIVE_S = 15.0
REPORT_CACHE_S = 5.0
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
APPLIES_NOW = "the daemon applies it at a scan it starts now"
_SPAN = re.compile(SPAN_PATTERN)
ANSWERS_NOW = "at a scan it starts now"
CLOSES_NOW = "the daemon closes it at a scan it starts now"


class BadInput(ValueError):
    """A parameter or body field is wrong; the message names it and the expected form (HTTP 400)."""


def dashboard_dir() -> Path:
    """The dashboard's static files, shipped in the package (no build step)."""
    return Path(str(resources.files("bot.ops") / "dashboard"))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ApiService:
    """The API over one daemon's ledger; ``token`` empty means off (every /api route answers 404 saying so).

    ``now_fn`` is the daemon's clock (simulated against the emulator); ``band`` the treasury's collateral
    band (low, target, high) shown beside the ratio; ``where`` names the ledger in control messages.
    """

    def __init__(
        self,
        ledger: Ledger | None,
        *,
        token: str | SecretStr | None,
        now_fn: Callable[[], int],
        health: HealthState,
        symbols: list[str],
        band: tuple[Decimal, Decimal, Decimal],
        mode: str = "dry-run",
        venue: str | None = None,
        where: str = "the daemon's ledger",
        on_control: Callable[[], None] | None = None,
        stream_interval_s: float = 1.0,
    ) -> None:
        raw = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._token = (raw or "").encode() or None
        if self._token is not None and ledger is None:
            raise ValueError("the API needs the daemon's ledger")
        self.ledger = ledger
        self.now = now_fn
        self.health = health
        self.symbols = list(symbols)
        self.band = band
        self.mode = mode
        self.where = where
        self.on_control = on_control
        self.stream_interval_s = stream_interval_s
        self.views = LedgerViews(ledger, venue=venue) if ledger is not None else None
        self.spec = openapi_spec(self.symbols)
        self.query_names = {  # per route, the query parameters it takes (others are refused: a typo is told)
            path: {p["name"] for op in ops.values() for p in op.get("parameters", []) if p["in"] == "query"}
            for path, ops in self.spec["paths"].items()
        }
        self._closing = asyncio.Event()
        self._report_cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}

    @property
    def enabled(self) -> bool:
        return self._token is not None

    # -- wiring ---------------------------------------------------------------------------------------

    def middlewares(self) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
        return [self._errors_middleware, self._auth_middleware]

    def install(self, app: web.Application) -> None:
        app.on_shutdown.append(self._on_shutdown)
        if not self.enabled:
            app.router.add_get("/", self._off_page)
            app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._off)
            return
        app.router.add_get("/", self._page)
        app.router.add_static(DASHBOARD_PATH, dashboard_dir(), append_version=False)
        p = API_PREFIX
        app.router.add_get(f"{p}/openapi.json", self._openapi)
        app.router.add_get(f"{p}/status", self._status)
        app.router.add_get(f"{p}/equity", self._equity)
        app.router.add_get(f"{p}/pnl", self._pnl)
        app.router.add_get(f"{p}/events", self._events)
        app.router.add_get(f"{p}/alerts", self._alerts)
        app.router.add_get(f"{p}/funding", self._funding)
        app.router.add_get(f"{p}/controls", self._controls)
        app.router.add_post(f"{p}/controls/close-only", self._close_only)
        app.router.add_post(f"{p}/controls/pause", self._pause)
        app.router.add_post(f"{p}/controls/resume", self._resume)
        app.router.add_post(f"{p}/controls/exit", self._exit)
        app.router.add_post(f"{p}/controls/capital-limit", self._capital_limit)
        app.router.add_post(f"{p}/controls/adopt", self._adopt)
        app.router.add_post(f"{p}/controls/close", self._close_orphan)
        app.router.add_get(f"{p}/stream", self._stream)

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing.set()  # open event streams end, so the server stops at once

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        path = request.path
        if not self.enabled or path in OPEN_PATHS or path.startswith(DASHBOARD_PATH):
            return await handler(request)
        assert self._token is not None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="fundbot"'}
        if scheme.lower() != "bearer" or not given.strip():
            return _error(401, "this route needs Authorization: Bearer <FUNDBOT_HTTP__API_TOKEN>", challenge)
        if not hmac.compare_digest(given.strip().encode(), self._token):
            return _error(401, "the bearer token is not this daemon's FUNDBOT_HTTP__API_TOKEN", challenge)
        known = self.query_names.get(path)
        unknown = sorted(set(request.query) - known) if known is not None else []
        if unknown:  # a misspelt filter would silently be ignored otherwise
            expected = ", ".join(sorted(known or ())) or "none"
            raise BadInput(f"unknown query parameter {unknown[0]!r}; this route takes: {expected}")
        return await handler(request)

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        """JSON errors on /api (400 for bad input, aiohttp's 404/405 kept with their headers), security headers."""
        try:
            response = await handler(request)
        except BadInput as err:
            response = _error(400, str(err))
        except web.HTTPException as exc:
            if not request.path.startswith(API_PREFIX) or exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            response = _error(exc.status, exc.reason, headers)
        except actions.ControlRefused as err:
            response = _error(409, str(err))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as err:  # never a stack trace (or a database URL) to the client
            log.exception("API %s %s failed", request.method, request.path)
            response = _error(500, f"internal error ({type(err).__name__}); see the daemon's log")
        if not response.prepared:
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
        return response

    # -- pages ----------------------------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        html = (dashboard_dir() / "index.html").read_text(encoding="utf-8")
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
        )

    async def _off_page(self, _request: web.Request) -> web.Response:
        text = f"<!doctype html><title>fundbot</title><p>{API_OFF}.</p><p>/healthz and /metrics are served.</p>"
        return web.Response(text=text, content_type="text/html", status=404)

    async def _off(self, _request: web.Request) -> web.Response:
        return _error(404, API_OFF)

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(self.spec)

    # -- reads ----------------------------------------------------------------------------------------

    def _views(self) -> LedgerViews:
        assert self.views is not None
        return self.views

    async def _status(self, _request: web.Request) -> web.Response:
        now = self.now()
        st = await self._views().status(now)
        controls = await actions.read_controls(self._ledger(), self.where)
        paused = set(controls["paused"])
        exits = {c["pair_id"] for c in controls["active"] if c["kind"] == "exit"}
        for p in st["pairs"]:
            p["paused"] = p["symbol"] in paused
            p["exit_requested"] = p["id"] in exits
        low, target, high = self.band
        st["collateral"]["band"] = {"low": low, "target": target, "high": high}
        body = {
            **st,
            "mode": self.mode,
            "account": self._views().account(),
            "symbols": self.symbols,
            "health": self.health.health(),
            "controls": controls,
            "settlements": await self._views().settlements(self.symbols, now),
        }
        return web.json_response(to_jsonable(body))

    async def _equity(self, request: web.Request) -> web.Response:
        q = _Query(request, self)
        since, points = q.since(), q.integer("points", 2, 2000, 300)
        now = self.now()
        return web.json_response(to_jsonable(await self._views().equity_curve(since, now, points)))

    async def _pnl(self, request: web.Request) -> web.Response:
        q = _Query(request, self)
        key = (request.query.get("since"), request.query.get("since_ms"), q.pair())
        hit = self._report_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < REPORT_CACHE_S:
            return web.json_response(hit[1])  # the attribution reads the whole ledger: not on every poll
        rep = to_jsonable(await collect_report(self._ledger(), self.now(), since_ms=q.since(), pair_symbol=q.pair()))
        self._report_cache[key] = (time.monotonic(), rep)
        return web.json_response(rep)

    async def _events(self, request: web.Request) -> web.Response:
        q = _Query(request, self)
        body = await self._views().events(
            kinds=q.kinds(), pair=q.pair(), since_ms=q.since(), after_id=q.after_id(), limit=q.limit(100)
        )
        return web.json_response(body)

    async def _alerts(self, request: web.Request) -> web.Response:
        q = _Query(request, self)
        body = await self._views().events(kinds=[EventKind.ALERT.value], since_ms=q.since(), limit=q.limit(50))
        return web.json_response(body)

    async def _funding(self, request: web.Request) -> web.Response:
        q = _Query(request, self)
        body = await self._views().funding(q.since(), q.pair(), q.limit(100))
        return web.json_response(to_jsonable(body))

    async def _controls(self, _request: web.Request) -> web.Response:
        return web.json_response(await actions.read_controls(self._ledger(), self.where))

    def _ledger(self) -> Ledger:
        assert self.ledger is not None
        return self.ledger

    # -- controls -------------------------------------------------------------------------------------

    async def _changed(self, outcome: actions.ControlOutcome) -> web.Response:
        if outcome.changed and self.on_control is not None:
            self.on_control()
        controls = await actions.read_controls(self._ledger(), self.where)
        return web.json_response({"changed": outcome.changed, "message": outcome.message, "controls": controls})

    async def _close_only(self, request: web.Request) -> web.Response:
        body = await _Body.read(request, required={"on"}, optional={"reason"})
        outcome = await actions.set_close_only(
            self._ledger(), body.boolean("on"), reason=body.reason(), **self._who(APPLIES_NOW)
        )
        return await self._changed(outcome)

    async def _pause(self, request: web.Request) -> web.Response:
        body = await _Body.read(request, required={"symbol"}, optional={"reason"})
        outcome = await actions.pause(
            self._ledger(), body.symbol(self.symbols), reason=body.reason(), **self._who(APPLIES_NOW)
        )
        return await self._changed(outcome)

    async def _resume(self, request: web.Request) -> web.Response:
        body = await _Body.read(request, required={"symbol"})
        outcome = await actions.resume(self._ledger(), body.symbol(self.symbols), **self._who(APPLIES_NOW))
        return await self._changed(outcome)

    async def _exit(self, request: web.Request) -> web.Response:
        body = await _Body.read(request, required={"symbol"}, optional={"reason", "pause"})
        also_pause = body.boolean("pause") if "pause" in body.data else False
        outcome = await actions.request_exit(
            self._ledger(),
            body.symbol(self.symbols),
            reason=body.reason(),
            also_pause=also_pause,
            pause_hint='ask with "also pause" ("pause": true)',
            **self._who(CLOSES_NOW),
        )
        return await self._changed(outcome)

    async def _capital_limit(self, request: web.Request) -> web.Response:
        body = await _Body.read(request, required={"value"})
        outcome = await actions.set_capital_limit(self._ledger(), body.capital(), **self._who(APPLIES_NOW))
        return await self._changed(outcome)

    async def _adopt(self, request: web.Request) -> web.Response:
        return await self._orphan_answer(request, ControlKind.ADOPT)

    async def _close_orphan(self, request: web.Request) -> web.Response:
        return await self._orphan_answer(request, ControlKind.CLOSE_ORPHAN)

    async def _orphan_answer(self, request: web.Request, kind: ControlKind) -> web.Response:
        """Adopt or close the venue's orphan legs on a symbol (``bot.orphans``); 409 when there are none."""
        body = await _Body.read(request, required={"symbol"}, optional={"reason"})
        outcome = await actions.request_orphan_answer(
            self._ledger(), body.symbol(self.symbols), kind, reason=body.reason(), **self._who(ANSWERS_NOW)
        )
        return await self._changed(outcome)

    def _who(self, when: str) -> dict[str, Any]:
        return {"now_ms": self.now(), "source": API_SOURCE, "where": self.where, "when": when}

    # -- live -----------------------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each batch of new ledger events as ``event: ledger`` (``Last-Event-ID`` or
        ``after_id`` resumes after that id; without either it starts from now)."""
        q = _Query(request, self)
        after = q.after_id()
        resume = request.headers.get("Last-Event-ID", "")
        if resume.isdigit():
            after = int(resume)
        views = self._views()
        if after is None:
            after = (await views.events(limit=1))["last_id"]
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        quiet_since = time.monotonic()
        try:
            await resp.write(b"retry: 3000\n\n")
            while not self._closing.is_set():
                batch = await views.events(after_id=after, limit=200)
                if batch["events"]:
                    after = batch["last_id"]
                    data = json.dumps(batch, separators=(",", ":"))
                    await resp.write(f"id: {after}\nevent: ledger\ndata: {data}\n\n".encode())
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= STREAM_KEEPALIVE_S:
                    await resp.write(b": keepalive\n\n")
                    quiet_since = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=self.stream_interval_s)
        except (ConnectionResetError, RuntimeError):  # the client went away
            return resp
        return resp


class _Query:
    """Typed query parameters; BadInput names the parameter and the expected form."""

    def __init__(self, request: web.Request, api: ApiService) -> None:
        self.q = request.query
        self.api = api

    def _int(self, name: str, low: int, high: int | None) -> int | None:
        text = self.q.get(name)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit()) or (high is not None and int(text) > high) or int(text) < low:
            bound = f"{low} to {high}" if high is not None else f"{low} or more"
            raise BadInput(f"{name}={text!r}: expected an integer from {bound}")
        return int(text)

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        value = self._int(name, low, high)
        return default if value is None else value

    def limit(self, default: int) -> int:
        return self.integer("limit", 1, MAX_LIMIT, default)

    def after_id(self) -> int | None:
        return self._int("after_id", 0, MAX_ID)

    def since(self) -> int | None:
        """``since_ms`` (epoch ms) wins; else ``since`` (30m, 24h, 7d, 2w) back from the daemon's clock."""
        since_ms = self._int("since_ms", 0, MAX_MS)
        span = self.q.get("since")
        if span is not None and not _SPAN.match(span):
            raise BadInput(f"since={span!r}: expected a span like 30m, 24h, 7d or 2w (or since_ms=<epoch ms>)")
        if since_ms is not None:
            return since_ms
        return parse_since(span, self.api.now()) if span is not None else None

    def pair(self) -> str | None:
        text = self.q.get("pair")
        if text is None:
            return None
        if text not in self.api.symbols:
            raise BadInput(f"pair={text!r}: expected one of {', '.join(self.api.symbols)}")
        return text

    def kinds(self) -> list[str] | None:
        text = self.q.get("kind")
        if text is None:
            return None
        kinds = text.split(",")
        valid = [k.value for k in EventKind]
        if not text or any(k not in valid for k in kinds):
            raise BadInput(f"kind={text!r}: expected a comma-separated list of {', '.join(valid)}")
        return kinds


class _Body:
    """A control request's JSON object: unknown fields refused, each field's type checked."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    async def read(
        cls, request: web.Request, *, required: set[str], optional: set[str] | frozenset[str] = frozenset()
    ) -> _Body:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(reason="the body must be JSON (Content-Type: application/json)")
        try:
            data = json.loads(await request.text(), parse_float=Decimal, parse_int=Decimal)
        except (ValueError, UnicodeDecodeError) as err:
            raise BadInput(f"the body is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise BadInput("the body must be a JSON object")
        unknown = sorted(set(data) - required - optional)
        if unknown:
            raise BadInput(f"unknown field {unknown[0]!r}; expected {', '.join(sorted(required | optional))}")
        missing = sorted(required - set(data))
        if missing:
            raise BadInput(f"missing field {missing[0]!r}")
        return cls(data)

    def boolean(self, name: str) -> bool:
        value = self.data.get(name)
        if not isinstance(value, bool):
            raise BadInput(f"{name}: expected true or false, got {_what(value)}")
        return value

    def reason(self) -> str | None:
        if "reason" not in self.data:
            return None
        value = self.data["reason"]
        if not isinstance(value, str) or len(value) > MAX_REASON:
            raise BadInput(f"reason: expected text of at most {MAX_REASON} characters")
        return _storable(value).strip() or None

    def symbol(self, symbols: list[str]) -> str:
        value = self.data.get("symbol")
        if not isinstance(value, str) or value not in symbols:
            shown = json.dumps(_storable(value))[:60] if isinstance(value, str) else _what(value)
            raise BadInput(f"symbol: expected one of {', '.join(symbols)}, got {shown}")
        return value

    def capital(self) -> Decimal | None:
        value = self.data.get("value")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
            raise BadInput("value: expected a number of USDT, or null to clear the limit")
        if not CAPITAL_MIN <= value <= CAPITAL_MAX:
            raise BadInput(f"value: expected from {CAPITAL_MIN} to {CAPITAL_MAX} USDT, got {value}")
        return value.quantize(Decimal("0.00000001")).normalize()


def _what(value: Any) -> str:
    """The JSON type of a wrong value (the value itself is not echoed: it may be anything)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _storable(text: str) -> str:
    """``text`` as every ledger backend stores it: a lone surrogate (JSON allows one) becomes "?" and NUL
    (which Postgres refuses) is dropped."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
