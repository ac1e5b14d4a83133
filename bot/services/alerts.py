"""Operator alerts: every alert is an ``alert`` event in the ledger; with a webhook it is also POSTed as JSON.

An alert must never break the code path that raised it: ``Alerter.alert`` catches every failure (ledger
or webhook), logs it without the webhook URL (Slack-style URLs embed a token), records webhook failures
as ``error`` events and returns. Details are scrubbed of secret-looking keys before they go anywhere.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.format import iso_utc, to_jsonable
from bot.ledger.models import EventKind
from bot.ledger.recorder import Recorder
from bot.services.health import HealthState, wall_clock_ms

log = logging.getLogger(__name__)

SECRET_MARKERS = ("secret", "password", "passwd", "token", "signature", "api_key", "apikey", "passphrase", "auth")
REDACTED = "**********"


class AlertKind(enum.StrEnum):
    HEDGE_DRIFT = "hedge_drift"
    COLLATERAL_LOW = "collateral_low"
    TRANSFER_STUCK = "transfer_stuck"
    FUNDING_MISSING = "funding_missing"
    PAIR_QUARANTINED = "pair_quarantined"


def scrub(value: Any) -> Any:
    """Copy of ``value`` with secret-looking keys and SecretStr values redacted (recursively)."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if any(m in str(k).lower() for m in SECRET_MARKERS) else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class Alerter:
    """Raise operator alerts. ``webhook_url`` may be a str or SecretStr; empty means ledger only.

    ``session``: an aiohttp session to reuse (not closed here); without one a session is created on the
    first webhook call and closed by ``close()``. ``cooldown_ms`` > 0 drops repeats of the same
    (kind, symbol) inside that time (both the event and the POST), so a condition checked every cycle
    does not flood the operator.
    """

    def __init__(
        self,
        ledger: Recorder,
        webhook_url: str | SecretStr | None = None,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout_s: float = 5.0,
        now_fn: Callable[[], int] = wall_clock_ms,
        health: HealthState | None = None,
        cooldown_ms: int = 0,
    ) -> None:
        url = webhook_url.get_secret_value() if isinstance(webhook_url, SecretStr) else webhook_url
        self._url = url or None
        self._ledger = ledger
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._now = now_fn
        self._health = health
        self._cooldown_ms = cooldown_ms
        self._last_sent: dict[tuple[str, str | None], int] = {}

    @classmethod
    def from_settings(cls, ledger: Recorder, settings: Any, **kwargs: Any) -> Alerter:
        """From ``settings.alerts`` (webhook_url, timeout_s)."""
        return cls(ledger, settings.alerts.webhook_url, timeout_s=settings.alerts.timeout_s, **kwargs)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def alert(
        self,
        kind: str,
        message: str,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        now_ms: int | None = None,
    ) -> int | None:
        """Record the alert (and POST it); returns the event id, or None when suppressed or not recorded."""
        now = self._now() if now_ms is None else now_ms
        key = (str(kind), symbol)
        last = self._last_sent.get(key)
        if self._cooldown_ms > 0 and last is not None and now - last < self._cooldown_ms:
            return None
        self._last_sent[key] = now
        clean = to_jsonable(scrub(dict(details or {})))
        body = {"alert": str(kind), **clean}
        event_id: int | None = None
        try:
            event_id = await self._ledger.add_event(
                EventKind.ALERT, message, ts_ms=now, pair_id=pair_id, symbol=symbol, details=body
            )
        except Exception as err:
            log.error("alert %s could not be written to the ledger: %s", kind, type(err).__name__)
            if self._health is not None:
                self._health.inc_error("ledger")
        if self._health is not None:
            self._health.inc_alert(str(kind))
        if self._url is not None:
            payload = {
                "source": "fundbot",
                "kind": str(kind),
                "message": message,
                "symbol": symbol,
                "ts_ms": now,
                "time": iso_utc(now),
                "event_id": event_id,
                "details": clean,
            }
            await self._post(payload, now)
        return event_id

    async def _post(self, payload: dict[str, Any], now: int) -> None:
        assert self._url is not None
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as resp:
                if resp.status >= 300:
                    raise _WebhookStatus(resp.status)
        except Exception as err:  # never raise into the caller
            reason = f"HTTP {err.status}" if isinstance(err, _WebhookStatus) else type(err).__name__
            if isinstance(err, asyncio.TimeoutError):
                reason = "timeout"
            log.warning("alert webhook failed (%s) for alert %s", reason, payload["kind"])
            if self._health is not None:
                self._health.inc_error("webhook")
            try:
                await self._ledger.add_event(
                    EventKind.ERROR,
                    f"alert webhook failed ({reason}) for {payload['kind']}",
                    ts_ms=now,
                    symbol=payload["symbol"],
                    details={"alert": payload["kind"], "reason": reason, "event_id": payload["event_id"]},
                )
            except Exception as err2:
                log.error("webhook failure could not be written to the ledger: %s", type(err2).__name__)

    # -- the specific alerts -----------------------------------------------------------------------------

    async def hedge_drift(
        self, symbol: str, spot_qty: Decimal, perp_qty: Decimal, tolerance: Decimal, *, pair_id: int | None = None
    ) -> int | None:
        """The legs differ by more than ``tolerance`` (a fraction of the larger leg)."""
        drift = spot_qty - perp_qty
        base = max(spot_qty, perp_qty)
        frac = drift / base if base > 0 else Decimal(0)
        return await self.alert(
            AlertKind.HEDGE_DRIFT,
            f"{symbol} hedge drift {drift} ({(frac * 100).quantize(Decimal('0.01'))}%): spot {spot_qty}, "
            f"perp short {perp_qty}, tolerance {(tolerance * 100).quantize(Decimal('0.01'))}%",
            symbol=symbol,
            pair_id=pair_id,
            details={"spot_qty": spot_qty, "perp_qty": perp_qty, "drift": drift, "drift_fraction": frac},
        )

    async def collateral_below_band(
        self, ratio: Decimal, low: Decimal, margin_balance: Decimal, short_notional: Decimal
    ) -> int | None:
        """Futures margin balance / short notional fell below the band's low edge."""
        return await self.alert(
            AlertKind.COLLATERAL_LOW,
            f"collateral ratio {ratio.quantize(Decimal('0.001'))} below the band's low {low} "
            f"(margin {margin_balance.quantize(Decimal('0.01'))} / short notional "
            f"{short_notional.quantize(Decimal('0.01'))} USDT)",
            details={"ratio": ratio, "low": low, "margin_balance": margin_balance, "short_notional": short_notional},
        )

    async def transfer_stuck(
        self,
        client_id: str,
        asset: str,
        amount: Decimal,
        from_wallet: str,
        to_wallet: str,
        age_ms: int,
        attempts: int,
        last_error: str | None = None,
    ) -> int | None:
        """A transfer has not completed after ``age_ms`` and ``attempts`` tries."""
        return await self.alert(
            AlertKind.TRANSFER_STUCK,
            f"transfer {client_id} of {amount} {asset} {from_wallet}->{to_wallet} not done after "
            f"{age_ms // 1000}s and {attempts} attempts",
            details={
                "client_id": client_id,
                "asset": asset,
                "amount": amount,
                "from_wallet": from_wallet,
                "to_wallet": to_wallet,
                "age_ms": age_ms,
                "attempts": attempts,
                "last_error": last_error,
            },
        )

    async def funding_missing(
        self,
        symbol: str,
        funding_time_ms: int,
        position_qty: Decimal,
        expected_rate: Decimal | None = None,
        *,
        pair_id: int | None = None,
    ) -> int | None:
        """A settlement passed while the pair held a short, and no funding payment was recorded for it."""
        return await self.alert(
            AlertKind.FUNDING_MISSING,
            f"{symbol}: no funding payment recorded for the settlement at {iso_utc(funding_time_ms)} "
            f"(short {position_qty})",
            symbol=symbol,
            pair_id=pair_id,
            details={"funding_time_ms": funding_time_ms, "position_qty": position_qty, "expected_rate": expected_rate},
        )

    async def pair_quarantined(self, symbol: str, reason: str, *, pair_id: int | None = None) -> int | None:
        """The engine stopped trading a pair until an operator looks at it."""
        return await self.alert(
            AlertKind.PAIR_QUARANTINED,
            f"{symbol} quarantined: {reason}",
            symbol=symbol,
            pair_id=pair_id,
            details={"reason": reason},
        )


class _WebhookStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
