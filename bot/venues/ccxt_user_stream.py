"""The live account's user-data streams through ccxt.pro: fills and forced closes as they happen.

Spot: ``executionReport`` over the WebSocket API (``watch_my_trades()``). USD-M: ``ORDER_TRADE_UPDATE``
on the listenKey socket (``watch_my_trades`` for every trade, ``watch_orders`` for a forced close that
carries no trade). Each watch runs in its own task and is reopened after a failure with a growing
pause; polling (order follow-up, reconciliation) stays the fallback for anything a broken stream missed.

Two gaps of ccxt 4.5.90 are filled here and in ``CcxtVenue.start_user_stream_keepalive``: it never
refreshes the USD-M listenKey on a mixed spot+perp instance, and it has no handler for Binance's
``listenKeyExpired`` event (its watches would then wait forever on a dead key). ``CcxtUserStream``
installs one: the pending USD-M watches fail, the key is forgotten, and the next watch asks the venue
for a new key and opens a new socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import ccxt

from bot.domain import Leg, Side, spot_symbol, to_decimal
from bot.venues.base import ForcedClose, UserEvent, VenueFill
from bot.venues.errors import Backoff

log = logging.getLogger(__name__)

LIQUIDATION_PREFIX = "autoclose-"  # Binance's client id of a liquidation order
ADL_CLIENT_ID = "adl_autoclose"  # ... and of an auto-deleveraging close
USDM = "linear"  # ccxt's options bucket of the USD-M listenKey


class ListenKeyExpired(ccxt.NetworkError):
    """Binance expired the USD-M listenKey: the stream is reopened with a new one."""


def forced_close_kind(client_order_id: str) -> Literal["liquidation", "adl"] | None:
    """``liquidation`` or ``adl`` for the venue's own closing orders, else None."""
    if client_order_id.startswith(LIQUIDATION_PREFIX):
        return "liquidation"
    if client_order_id.startswith(ADL_CLIENT_ID):
        return "adl"
    return None


def _num(raw: dict[str, Any], key: str) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        raise ccxt.BadResponse(f"user-data event lacks {key!r}: {raw.get('e') or 'order update'}")
    return value


def fill_from_event(raw: dict[str, Any], symbol: str) -> VenueFill | None:
    """The trade of one order update (spot ``executionReport`` or the USD-M ``o`` object), None when the
    update is not a trade. Same fields, same natural key (the trade id) as a polled fill."""
    if raw.get("x") != "TRADE":
        return None
    return VenueFill(
        venue_trade_id=str(_num(raw, "t")),
        venue_order_id=str(_num(raw, "i")),
        client_order_id=str(raw.get("c") or "") or None,
        symbol=spot_symbol(symbol),
        leg=Leg.PERP if ":" in symbol else Leg.SPOT,
        side=Side(str(_num(raw, "S")).lower()),
        qty=to_decimal(_num(raw, "l")),
        price=to_decimal(_num(raw, "L")),
        fee=to_decimal(raw.get("n") or "0"),
        fee_asset=str(raw.get("N") or ""),
        is_maker=bool(raw.get("m")),
        ts_ms=int(_num(raw, "T")),
    )


def event_from_update(raw: dict[str, Any], symbol: str) -> UserEvent | None:
    """A fill, or a forced close (with its fill when the update is a trade), from one order update."""
    fill = fill_from_event(raw, symbol)
    kind = forced_close_kind(str(raw.get("c") or ""))
    if kind is None or ":" not in symbol:
        return fill
    if fill is None and raw.get("x") != "CALCULATED" and raw.get("X") != "FILLED":
        return None  # the forced order was just created: its execution follows
    average = to_decimal(raw["ap"]) if raw.get("ap") not in (None, "", "0") else None
    return ForcedClose(
        symbol=spot_symbol(symbol),
        kind=kind,
        venue_order_id=str(_num(raw, "i")),
        client_order_id=str(raw["c"]),
        side=Side(str(_num(raw, "S")).lower()),
        qty=to_decimal(raw.get("z") or raw.get("l") or "0"),
        price=fill.price if fill is not None else average,
        ts_ms=int(_num(raw, "T")),
        fill=fill,
    )


class CcxtUserStream:
    """Spot and USD-M user-data watches of one ccxt.pro ``binance`` client as one stream of events."""

    def __init__(
        self,
        client: Any,
        safe_text: Callable[[BaseException], str],
        *,
        retry_s: float = 1.0,
        max_retry_s: float = 60.0,
    ) -> None:
        self.client = client
        self._safe_text = safe_text
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.reconnects = 0
        self.expired_keys = 0
        self._closing: set[asyncio.Future[Any]] = set()
        self._install_expiry_handler()

    def _install_expiry_handler(self) -> None:
        """Route ``listenKeyExpired`` to ``_on_expired`` (ccxt drops it); every other message goes on to ccxt.
        Set on the instance, so every socket ccxt opens from now on uses it."""
        if getattr(self.client, "_fundbot_expiry_handler", False):
            return
        original = self.client.handle_message

        def handle_message(ws_client: Any, message: Any) -> Any:
            if isinstance(message, dict) and message.get("e") == "listenKeyExpired":
                self._on_expired(ws_client)
                return None
            return original(ws_client, message)

        self.client.handle_message = handle_message
        self.client._fundbot_expiry_handler = True

    def _on_expired(self, ws_client: Any) -> None:
        self.expired_keys += 1
        log.warning("USD-M listenKey expired: reopening the user stream with a new key")
        self.forget_listen_key()
        (getattr(self.client, "clients", None) or {}).pop(ws_client.url, None)
        ws_client.reset(ListenKeyExpired("binance listenKeyExpired"))
        closing = asyncio.ensure_future(ws_client.close())  # the dead socket, not left to the server
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def forget_listen_key(self) -> None:
        """Make ccxt ask for a listenKey on its next USD-M watch (Binance hands back the active key, or a new
        one when it expired), instead of reusing one the venue may have dropped."""
        bucket = self.client.options.get(USDM)
        if isinstance(bucket, dict):
            bucket.pop("listenKey", None)
            bucket["lastAuthenticatedTime"] = 0

    async def events(self) -> AsyncIterator[UserEvent]:
        """Fills and forced closes as the venue pushes them, until cancelled."""
        queue: asyncio.Queue[UserEvent] = asyncio.Queue()
        client = self.client
        usdm = {"type": "swap", "subType": "linear"}
        # (name, watch, on the USD-M socket, forced closes only: the trades watch already has every fill)
        watches: list[tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]], bool, bool]] = [
            ("spot trades", lambda: client.watch_my_trades(), False, False),
            ("USD-M trades", lambda: client.watch_my_trades(None, None, None, dict(usdm)), True, False),
            ("USD-M orders", lambda: client.watch_orders(None, None, None, dict(usdm)), True, True),
        ]
        tasks = [
            asyncio.create_task(self._follow(name, watch, usdm_socket, forced_only, queue), name=f"user-stream {name}")
            for name, watch, usdm_socket, forced_only in watches
        ]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow(
        self,
        name: str,
        watch: Callable[[], Awaitable[list[dict[str, Any]]]],
        usdm_socket: bool,
        forced_only: bool,
        queue: asyncio.Queue[UserEvent],
    ) -> None:
        failures = 0
        while True:
            try:
                items = await watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.reconnects += 1
                if usdm_socket and not isinstance(exc, ListenKeyExpired):
                    self.forget_listen_key()  # a socket that died may have died with its key
                pause = Backoff(self.retry_s, self.max_retry_s).delay(failures)
                log.warning("user stream (%s) failed, reopening in %.1fs: %s", name, pause, self._safe_text(exc))
                await asyncio.sleep(pause)
                continue
            failures = 0
            for item in items:
                try:
                    event = event_from_update(item.get("info") or {}, str(item.get("symbol") or ""))
                except (ccxt.BadResponse, ValueError, KeyError) as exc:
                    log.warning("user stream (%s): unreadable update skipped (polling reads it): %s", name, exc)
                    continue
                if event is not None and not (forced_only and isinstance(event, VenueFill)):
                    queue.put_nowait(event)
