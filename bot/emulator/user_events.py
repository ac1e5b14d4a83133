"""Simulation events -> Binance user-data stream payloads.

Spot: ``executionReport`` and ``outboundAccountPosition`` (sent wrapped by the WS-API subscription).
USD-M: ``ORDER_TRADE_UPDATE`` (a liquidation first as ``NEW``, then its trade) and ``ACCOUNT_UPDATE``
(sent on listenKey sockets). The sim calls the
listener synchronously; payloads are queued and flushed by the REST pipeline and the stepper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.emulator.formats import fmt

if TYPE_CHECKING:
    from bot.emulator.app import Emulator


def _exec_type(order: Any, trade: Any) -> str:
    if trade is not None:
        return "TRADE"
    if order.status in ("NEW", "PARTIALLY_FILLED"):
        return "NEW"
    if order.status == "FILLED":
        return "TRADE"
    return order.status  # CANCELED / EXPIRED / REJECTED


def execution_report(order: Any, trade: Any, now: int) -> dict[str, Any]:
    """Binance's spot order update. Its conditional fields as Binance sends them: ``W`` (working time)
    only while the order is on the book; ``v`` (prevented match id) never, as no order here expires by
    self-trade prevention."""
    last_qty = trade.qty if trade is not None else 0
    last_px = trade.price if trade is not None else 0
    on_book = order.status in ("NEW", "PARTIALLY_FILLED")
    report = {
        "e": "executionReport",
        "E": now,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "P": "0",
        "F": "0",
        "g": -1,
        "C": order.client_order_id if order.status == "CANCELED" else "",
        "x": _exec_type(order, trade),
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(last_qty),
        "z": fmt(order.executed_qty),
        "L": fmt(last_px),
        "n": fmt(trade.commission) if trade is not None else "0",
        "N": trade.commission_asset if trade is not None else None,
        "T": trade.time_ms if trade is not None else order.update_ms,
        "t": trade.trade_id if trade is not None else -1,
        "I": order.order_id,
        "w": on_book,
        "m": bool(trade.maker) if trade is not None else False,
        "M": False,
        "O": order.time_ms,
        "Z": fmt(order.cum_quote),
        "Y": fmt(trade.quote_qty) if trade is not None else "0",
        "Q": fmt(order.quote_order_qty),
        "V": "EXPIRE_MAKER",
    }
    if on_book:
        report["W"] = order.time_ms
    return report


def account_position(balances: dict[str, tuple[Any, Any]], now: int) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": now,
        "u": now,
        "B": [{"a": asset, "f": fmt(free), "l": fmt(locked)} for asset, (free, locked) in sorted(balances.items())],
    }


def order_trade_update(order: Any, trade: Any, now: int) -> dict[str, Any]:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now,
        "T": now,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.orig_type if order.orig_type == "LIQUIDATION" else order.type,
            "f": order.time_in_force,
            "q": fmt(order.orig_qty),
            "p": fmt(order.price),
            "ap": fmt(order.avg_price),
            "sp": "0",
            "x": _exec_type(order, trade),
            "X": order.status,
            "i": order.order_id,
            "l": fmt(trade.qty) if trade is not None else "0",
            "z": fmt(order.executed_qty),
            "L": fmt(trade.price) if trade is not None else "0",
            "N": trade.commission_asset if trade is not None else "USDT",
            "n": fmt(trade.commission) if trade is not None else "0",
            "T": trade.time_ms if trade is not None else order.update_ms,
            "t": trade.trade_id if trade is not None else 0,
            "b": "0",
            "a": "0",
            "m": bool(trade.maker) if trade is not None else False,
            "R": bool(order.reduce_only),
            "wt": "CONTRACT_PRICE",
            "ot": order.orig_type or order.type,
            "ps": "BOTH",
            "cp": False,
            "rp": fmt(trade.realized_pnl) if trade is not None else "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def forced_order_accepted(order: Any, now: int) -> dict[str, Any]:
    """A liquidation order as Binance first announces it (``c`` ``autoclose-...``, ``X`` ``NEW``), before
    the update that carries its execution."""
    event = order_trade_update(order, None, now)
    event["o"].update({"x": "NEW", "X": "NEW", "z": "0", "ap": "0", "l": "0", "L": "0", "t": 0, "n": "0"})
    return event


def account_update(data: dict[str, Any], now: int) -> dict[str, Any]:
    positions = [
        {
            "s": p.symbol,
            "pa": fmt(p.position_amt),
            "ep": fmt(p.entry_price),
            "bep": fmt(p.break_even_price),
            "cr": "0",
            "up": fmt(p.unrealized_profit),
            "mt": "isolated" if p.margin_type == "ISOLATED" else "cross",
            "iw": fmt(p.isolated_wallet),
            "ps": "BOTH",
        }
        for p in data.get("positions", [])
    ]
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": data.get("reason", "ORDER"),
            "B": [{"a": "USDT", "wb": fmt(data["wallet"]), "cw": fmt(data["cross_wallet"]), "bc": "0"}],
            "P": positions,
        },
    }


def attach_user_events(emu: Emulator) -> None:
    """Subscribe to the sim and queue the matching user-stream payloads on the hub."""

    def on_event(ev: Any) -> None:
        now = ev.time_ms
        if ev.kind == "order":
            order, trade = ev.data["order"], ev.data.get("trade")
            if ev.market == "spot":
                emu.hub.queue_user_event("spot", execution_report(order, trade, now))
            else:
                emu.hub.queue_user_event("perp", order_trade_update(order, trade, now))
        elif ev.kind == "liquidation":  # the sim's "order" event of the same close follows with the trade
            emu.hub.queue_user_event("perp", forced_order_accepted(ev.data["order"], now))
        elif ev.kind == "balance":
            emu.hub.queue_user_event("spot", account_position(ev.data["balances"], now))
        elif ev.kind == "account":
            emu.hub.queue_user_event("perp", account_update(ev.data, now))

    emu.sim.subscribe(on_event)
