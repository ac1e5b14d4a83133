"""``GET /_emulator/journal``: the venue's own log, read-only, for audits run from outside the daemon.

An audit of the bot (benchmarks/chaos.py) compares the ledger with what the venue really did: every
order (with its client id, status and executed quantity), trade, transfer, funding payment, the wallets
and positions, and how often each scenario fault fired. The REST API cannot serve that honestly: its
reads go through the same faults and weight limits as the bot's. This endpoint is outside that
pipeline, changes nothing, answers only loopback peers holding the run's API key (from the connection
file), and is not part of Binance's API.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.formats import fmt

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

JOURNAL_PATH = "/_emulator/journal"
API_KEY_HEADER = "X-MBX-APIKEY"


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _order(o: Any) -> dict[str, Any]:
    return {
        "market": o.market,
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "side": o.side,
        "type": o.type,
        "status": o.status,
        "origQty": fmt(o.orig_qty),
        "executedQty": fmt(o.executed_qty),
        "cumQuote": fmt(o.cum_quote),
        "reduceOnly": o.reduce_only,
        "time": o.time_ms,
        "updateTime": o.update_ms,
        "tradeIds": list(o.trade_ids),
    }


def _trade(t: Any) -> dict[str, Any]:
    return {
        "market": t.market,
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "side": t.side,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "commission": fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time_ms,
    }


def journal(emu: Emulator) -> dict[str, Any]:
    """Everything the account did, as the simulator holds it (its reads catch up with the clock)."""
    sim = emu.sim
    orders = [_order(o) for market in ("spot", "perp") for o in sim.order_history(market)]
    trades = [
        _trade(t)
        for market in ("spot", "perp")
        for symbol in emu.symbols
        for t in sim.my_trades(market, symbol, limit=None)
    ]
    income = [
        {
            "symbol": r.symbol,
            "incomeType": r.income_type,
            "income": fmt(r.income),
            "asset": r.asset,
            "time": r.time_ms,
            "tranId": r.tran_id,
        }
        for r in sim.income(limit=None)
    ]
    transfers = [
        {
            "tranId": r.tran_id,
            "asset": r.asset,
            "amount": fmt(r.amount),
            "type": r.kind,
            "status": r.status,
            "timestamp": r.time_ms,
        }
        for r in sim.transfer_history()
    ]
    spot = sim.spot_account()
    balances = {asset: {"free": fmt(free), "locked": fmt(locked)} for asset, (free, locked) in spot.balances.items()}
    positions = [
        {"symbol": p.symbol, "positionAmt": fmt(p.position_amt), "entryPrice": fmt(p.entry_price)}
        for p in sim.position_risk()
        if p.position_amt
    ]
    markets = {
        f"{market}:{symbol}": {
            "stepSize": fmt(sim.spec(market, symbol).step_size),
            "minNotional": fmt(sim.spec(market, symbol).min_notional),
        }
        for market in ("spot", "perp")
        for symbol in emu.symbols
        if sim.has_market(market, symbol)
    }
    faults = [{"endpoint": r.endpoint, "kind": r.kind, "rate": r.rate, "fired": r.fired} for r in emu.faults.rules]
    return {
        "now": emu.now_ms(),
        "orders": orders,
        "trades": trades,
        "income": income,
        "transfers": transfers,
        "balances": balances,
        "futuresWallet": fmt(sim.futures.wallet),
        "positions": positions,
        "markets": markets,
        "faults": faults,
    }


def add_routes(app: web.Application, emu: Emulator) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not _loopback(request.remote):
            return web.json_response({"error": "the journal answers loopback peers only"}, status=403)
        key = request.headers.get(API_KEY_HEADER, "")
        if not hmac.compare_digest(key.encode(), emu.credentials.api_key.encode()):
            return web.json_response({"error": f"{API_KEY_HEADER} must be the run's api_key"}, status=401)
        return web.json_response(journal(emu))

    app.router.add_get(JOURNAL_PATH, handle)
