"""The OpenAPI 3.1 description of the operator API (``bot.ops.api``), served at /api/v1/openapi.json.

Built per daemon: the pair parameters and bodies list the symbols that daemon trades, so the spec says
exactly what the server accepts (a test runs schemathesis against it: every response must match, every
request the spec calls invalid must be refused). Money is a decimal string (exact), time epoch ms.
"""

from __future__ import annotations

from typing import Any

from bot.domain import PairState
from bot.ledger.models import ControlKind, ControlStatus, EventKind

API_PREFIX = "/api/v1"
SPAN_PATTERN = r"^[0-9]{1,6}[smhdw]$"
MAX_LIMIT = 1000
MAX_MS = 10**15  # year 33658: any real instant, and inside every database's BIGINT
MAX_ID = 2**63 - 1
MAX_REASON = 500
CAPITAL_MIN = 1
CAPITAL_MAX = 1_000_000_000_000

DEC = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "exact decimal"}
DEC_OR_NULL = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
MS = {"type": "integer", "description": "UTC epoch milliseconds"}
MS_OR_NULL = {"type": ["integer", "null"]}
STR_OR_NULL = {"type": ["string", "null"]}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": required or list(props)}
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad input (the message names the parameter and the expected form)",
        401: "no bearer token, or a wrong one",
        404: "not found",
        409: "the request conflicts with the book (e.g. no open pair to exit)",
        415: "the body must be JSON (Content-Type: application/json)",
    }
    return {str(c): _json(ERROR_REF, text[c]) for c in (401, *codes)}


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


def _schemas(symbols: list[str]) -> dict[str, Any]:
    symbol = {"type": "string", "enum": symbols, "description": "a pair the daemon trades, spot spelling"}
    reason = {"type": "string", "maxLength": MAX_REASON, "description": "why (kept with the control and the event)"}
    control = _obj(
        {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": [k.value for k in ControlKind]},
            "symbol": {"type": "string"},
            "pair_id": {"type": ["integer", "null"]},
            "status": {"type": "string", "enum": [s.value for s in ControlStatus]},
            "value": DEC_OR_NULL,
            "reason": STR_OR_NULL,
            "source": {"type": "string"},
            "note": STR_OR_NULL,
            "created_ms": MS,
            "updated_ms": MS,
        }
    )
    controls = _obj(
        {
            "ledger": {"type": "string"},
            "close_only": {"type": "boolean"},
            "capital_limit": DEC_OR_NULL,
            "paused": {"type": "array", "items": {"type": "string"}},
            "orphans": {"type": "array", "items": {"type": "string"}},
            "active": {"type": "array", "items": _ref("Control")},
            "recent_exits": {"type": "array", "items": _ref("Control")},
        }
    )
    pair = _obj(
        {
            "id": {"type": "integer"},
            "symbol": {"type": "string"},
            "perp_symbol": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in PairState]},
            "target_qty": DEC,
            "spot_qty": DEC,
            "perp_qty": DEC,
            "hedge_drift": DEC,
            "hedge_drift_pct": DEC,
            "spot_price": DEC_OR_NULL,
            "perp_price": DEC_OR_NULL,
            "notional": DEC_OR_NULL,
            "entry_basis": DEC_OR_NULL,
            "funding_earned": DEC,
            "next_funding_ms": MS_OR_NULL,
            "next_funding_rate": DEC_OR_NULL,
            "rate_kind": STR_OR_NULL,
            "liquidation_price": DEC_OR_NULL,
            "liquidation_distance": {**DEC_OR_NULL, "description": "(liquidation - perp price) / perp price"},
            "opened_ms": MS,
            "paused": {"type": "boolean"},
            "exit_requested": {"type": "boolean"},
        }
    )
    wallet = _obj(
        {
            "venue": {"type": "string"},
            "wallet": {"type": "string"},
            "ts_ms": MS,
            "assets": {
                "type": "object",
                "additionalProperties": _obj({"free": DEC, "used": DEC, "total": DEC}),
            },
        }
    )
    check = _obj({"ok": {"type": "boolean"}, "age_s": {"type": ["number", "null"]}, "max_age_s": {"type": "number"}})
    health = _obj(
        {
            "status": {"type": "string", "enum": ["ok", "unhealthy"]},
            "now_ms": MS,
            "checks": {"type": "object", "additionalProperties": check},
        }
    )
    settlement = _obj(
        {
            "symbol": {"type": "string"},
            "held": {"type": "boolean"},
            "next_funding_ms": MS_OR_NULL,
            "predicted_rate": DEC_OR_NULL,
            "interval_hours": {"type": ["integer", "null"]},
            "last_rate_ms": MS_OR_NULL,
        }
    )
    band = _obj({"low": DEC, "target": DEC, "high": DEC})
    status = _obj(
        {
            "as_of_ms": MS,
            "mode": {"type": "string"},
            "account": STR_OR_NULL,
            "symbols": {"type": "array", "items": {"type": "string"}},
            "health": _ref("Health"),
            "controls": _ref("Controls"),
            "pairs": {"type": "array", "items": _ref("Pair")},
            "wallets": {"type": "array", "items": _ref("Wallet")},
            "earlier_accounts": {"type": "array", "items": {"type": "string"}},
            "collateral": _obj(
                {"margin_balance": DEC_OR_NULL, "short_notional": DEC, "ratio": DEC_OR_NULL, "band": band}
            ),
            "open_intents": {"type": "array", "items": {"type": "object"}},
            "recent_errors": {"type": "array", "items": {"type": "object"}},
            "settlements": {"type": "array", "items": _ref("Settlement")},
        }
    )
    event = _obj(
        {
            "id": {"type": "integer"},
            "ts_ms": MS,
            "time": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in EventKind]},
            "symbol": STR_OR_NULL,
            "pair_id": {"type": ["integer", "null"]},
            "message": {"type": "string"},
            "summary": {"type": "string", "description": "the `fundbot tail` text: decisions say why"},
            "details": {"type": ["object", "null"]},
        }
    )
    events = _obj({"events": {"type": "array", "items": _ref("Event")}, "last_id": {"type": "integer"}})
    point = _obj({"ts_ms": MS, "equity": DEC, "pnl": DEC, "funding": DEC, "fees": DEC})
    equity = _obj(
        {
            "account": STR_OR_NULL,
            "since_ms": MS_OR_NULL,
            "until_ms": MS,
            "points": {"type": "array", "items": point},
            "unvalued": {"type": "array", "items": {"type": "string"}},
        }
    )
    pnl_row = _obj(
        {
            "symbol": {"type": "string"},
            "funding": DEC,
            "price": DEC_OR_NULL,
            "basis": DEC_OR_NULL,
            "fees": DEC,
            "net": DEC_OR_NULL,
            "spot_mtm": DEC_OR_NULL,
            "perp_mtm": DEC_OR_NULL,
            "slippage_cost": DEC,
            "fills": {"type": "integer"},
            "funding_payments": {"type": "integer"},
        }
    )
    pnl = _obj(
        {
            "as_of_ms": MS,
            "since_ms": MS_OR_NULL,
            "pair": STR_OR_NULL,
            "pairs": {"type": "array", "items": _ref("PnlRow")},
            "total": _ref("PnlRow"),
            "transfers": {"type": "object"},
            "equity": {"type": "object"},
            "explained": DEC_OR_NULL,
            "residual": DEC_OR_NULL,
            "notes": {"type": "array", "items": {"type": "string"}},
        }
    )
    payment = _obj(
        {
            "id": {"type": "integer"},
            "symbol": {"type": "string"},
            "funding_time_ms": MS,
            "time": {"type": "string"},
            "amount": DEC,
            "asset": {"type": "string"},
            "rate": DEC_OR_NULL,
            "position_size": DEC_OR_NULL,
            "pair_id": {"type": ["integer", "null"]},
        }
    )
    funding = _obj(
        {
            "account": STR_OR_NULL,
            "since_ms": MS_OR_NULL,
            "count": {"type": "integer"},
            "total": DEC,
            "by_symbol": {"type": "object", "additionalProperties": DEC},
            "payments": {"type": "array", "items": payment},
        }
    )
    change = _obj({"changed": {"type": "boolean"}, "message": {"type": "string"}, "controls": _ref("Controls")})
    return {
        "Error": _obj({"error": {"type": "string"}}),
        "Control": control,
        "Controls": controls,
        "Pair": pair,
        "Wallet": wallet,
        "Health": health,
        "Settlement": settlement,
        "Status": status,
        "Event": event,
        "Events": events,
        "Equity": equity,
        "PnlRow": pnl_row,
        "Pnl": pnl,
        "Funding": funding,
        "ControlChange": change,
        "CloseOnlyRequest": _obj({"on": {"type": "boolean"}, "reason": reason}, ["on"], extra=False),
        "PauseRequest": _obj({"symbol": symbol, "reason": reason}, ["symbol"], extra=False),
        "ResumeRequest": _obj({"symbol": symbol}, ["symbol"], extra=False),
        "OrphanRequest": _obj({"symbol": symbol, "reason": reason}, ["symbol"], extra=False),
        "ExitRequest": _obj(
            {
                "symbol": symbol,
                "reason": reason,
                "pause": {"type": "boolean", "description": "also pause the symbol, so it is not entered again"},
            },
            ["symbol"],
            extra=False,
        ),
        "CapitalLimitRequest": _obj(
            {
                "value": {
                    "type": ["number", "null"],
                    "minimum": CAPITAL_MIN,
                    "maximum": CAPITAL_MAX,
                    "description": "USDT the strategy may allocate at most (read exactly, kept to 8 decimals); "
                    "null clears it (the setting engine.capital_limit applies again)",
                }
            },
            ["value"],
            extra=False,
        ),
    }


def openapi_spec(symbols: list[str], version: str = "0.1.0") -> dict[str, Any]:
    """The spec of a daemon trading ``symbols``."""
    kinds = [k.value for k in EventKind]
    since = _query("since", {"type": "string", "pattern": SPAN_PATTERN}, "window: the last 30m, 24h, 7d, 2w...")
    since_ms = _query(
        "since_ms", {"type": "integer", "minimum": 0, "maximum": MAX_MS}, "window start, UTC epoch ms (wins over since)"
    )
    pair = _query("pair", {"type": "string", "enum": symbols}, "only this pair")
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "at most this many rows")
    kind = _query(
        "kind",
        {"type": "array", "items": {"type": "string", "enum": kinds}, "minItems": 1},
        "only these kinds (comma-separated: decision,alert)",
        style="form",
        explode=False,
    )
    after_id = _query(
        "after_id",
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        "only events after this id, oldest first (to follow)",
    )
    points = _query("points", {"type": "integer", "minimum": 2, "maximum": 2000}, "at most this many points")

    def get(op_id: str, summary: str, schema: str, params: list[dict[str, Any]], *errors: int) -> dict[str, Any]:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "parameters": params,
                "responses": {"200": _json(_ref(schema), summary), **_errors(*errors)},
            }
        }

    def post(op_id: str, summary: str, body: str, *errors: int) -> dict[str, Any]:
        return {
            "post": {
                "operationId": op_id,
                "summary": summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(body)}}},
                "responses": {
                    "200": _json(_ref("ControlChange"), "written to the ledger's controls (or already so)"),
                    **_errors(400, 415, *errors),
                },
            }
        }

    p = API_PREFIX
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fundbot operator API",
            "version": version,
            "description": "Read the book and the ledger of a running fundbot daemon, and change the operator "
            "controls it reads at every scan. Every route needs `Authorization: Bearer <FUNDBOT_HTTP__API_TOKEN>`; "
            "/healthz and /metrics (not described here) are open. Money is a decimal string, time UTC epoch ms.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            f"{p}/status": get(
                "getStatus", "the book now: pairs, legs, collateral, controls, settlements", "Status", []
            ),
            f"{p}/equity": get(
                "getEquity",
                "equity at each balance snapshot, with funding received and fees paid",
                "Equity",
                [since, since_ms, points],
                400,
            ),
            f"{p}/pnl": get(
                "getPnl",
                "PnL attribution (funding, price, basis, fees) over a window",
                "Pnl",
                [since, since_ms, pair],
                400,
            ),
            f"{p}/events": get(
                "getEvents",
                "the ledger's event tail, filtered",
                "Events",
                [kind, pair, since, since_ms, after_id, limit],
                400,
            ),
            f"{p}/alerts": get("getAlerts", "alerts, newest first", "Events", [since, since_ms, limit], 400),
            f"{p}/funding": get(
                "getFunding", "funding payments received (and paid)", "Funding", [since, since_ms, pair, limit], 400
            ),
            f"{p}/controls": get("getControls", "the operator controls in force", "Controls", []),
            f"{p}/controls/close-only": post(
                "setCloseOnly", "close-only on (no entries, wind down) or off", "CloseOnlyRequest"
            ),
            f"{p}/controls/pause": post("pauseSymbol", "no entries or increases on a symbol", "PauseRequest"),
            f"{p}/controls/resume": post("resumeSymbol", "entries allowed again on a symbol", "ResumeRequest"),
            f"{p}/controls/exit": post(
                "exitPair", "close the pair held on a symbol, with a reason", "ExitRequest", 409
            ),
            f"{p}/controls/capital-limit": post(
                "setCapitalLimit", "cap the equity the strategy allocates (or clear the cap)", "CapitalLimitRequest"
            ),
            f"{p}/controls/adopt": post(
                "adoptOrphan", "make the venue's orphan legs on a symbol a managed pair", "OrphanRequest", 409
            ),
            f"{p}/controls/close": post(
                "closeOrphan", "trade the venue's orphan legs on a symbol to flat", "OrphanRequest", 409
            ),
            f"{p}/stream": {
                "get": {
                    "operationId": "streamEvents",
                    "summary": "server-sent events: `ledger` with each batch of new events (as /events), "
                    "a comment every 15 s to keep the connection open",
                    "parameters": [after_id],
                    "responses": {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(400),
                    },
                }
            },
            f"{p}/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "this description",
                    "responses": {"200": _json({"type": "object"}, "the OpenAPI document"), **_errors()},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(symbols),
        },
    }
