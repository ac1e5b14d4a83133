"""Build ccxt Binance clients: for the local emulator (from its connection file) or for the real venue.

Emulator clients follow the verified recipe in docs/ccxt-binance.md §1: every URL
family ccxt knows is pointed at the emulator (nothing can reach a non-loopback host), ``rateLimit`` is
set in the constructor (assigning it later has no effect), and the TLS variant uses
``https://demo-api@127.0.0.1`` / ``https://demo-fapi@127.0.0.1`` so ccxt applies Binance's production
error maps. Secrets go straight from the connection file or ``SecretStr`` into ccxt and are never logged.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from bot.emulator.connection import LOOPBACK_HOSTS, read_connection_file

# Options every client gets (docs/ccxt-binance.md §1.1, §7).
BASE_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot", "linear"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "setMarginMode": {"throwMarginModeAlreadySet": False},
    "fetchOpenOrders": {"warnWithoutSymbol": False},
}

# ccxt url sections that carry request URLs (``api`` normally; ``test``/``demo`` in sandbox/demo modes).
_URL_SECTIONS = ("api", "test", "demo")


class UnsafeUrlError(ValueError):
    """A URL of an emulator client points off the loopback interface."""


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _localise(section: Any, fallback: str) -> Any:
    """Replace every non-loopback URL in a (nested) url section with an unserved local path."""
    if isinstance(section, dict):
        return {k: _localise(v, fallback) for k, v in section.items()}
    if isinstance(section, str) and "://" in section and not _is_loopback(section):
        return fallback
    return section


def _all_urls(section: Any) -> list[str]:
    if isinstance(section, dict):
        return [u for v in section.values() for u in _all_urls(v)]
    return [section] if isinstance(section, str) and "://" in section else []


def assert_loopback_only(exchange: Any) -> None:
    """Raise ``UnsafeUrlError`` if any request URL of ``exchange`` could leave the machine."""
    for name in _URL_SECTIONS:
        for url in _all_urls(exchange.urls.get(name, {})):
            if not _is_loopback(url):
                raise UnsafeUrlError(f"urls[{name!r}] holds a non-loopback URL: {url}")


def emulator_config(conn: dict[str, Any], tls: bool = True) -> dict[str, Any]:
    """The ccxt constructor config for the emulator described by ``conn`` (a connection-file dict)."""
    variant = conn["tls" if tls else "http"]
    urls = {**variant["rest"], "ws": variant["ws"]}
    for url in _all_urls(urls):
        if not _is_loopback(url):
            raise UnsafeUrlError(f"connection file holds a non-loopback URL: {url}")
    config: dict[str, Any] = {
        "apiKey": conn["api_key"],
        "secret": conn["secret"],
        "urls": {"api": urls},
        "enableRateLimit": True,
        "rateLimit": 50,
        "options": copy.deepcopy(BASE_OPTIONS),
    }
    if tls:
        config["cafile"] = conn["ca_file"]
    return config


def build_client(conn: dict[str, Any] | Path | str, pro: bool = True, tls: bool = True, **overrides: Any) -> Any:
    """A ``ccxt.pro.binance`` (or ``ccxt.async_support.binance``) talking only to the emulator.

    ``overrides`` are deep-merged into the constructor config, e.g. ``rateLimit=1`` in tests or
    ``options={'fetchBalance': {...}}``. Close the client with ``await client.close()``.
    """
    data = conn if isinstance(conn, dict) else read_connection_file(Path(conn))
    for url in _all_urls(overrides.get("urls", {})):
        if not _is_loopback(url):
            raise UnsafeUrlError(f"override holds a non-loopback URL: {url}")
    config = _merge(emulator_config(data, tls=tls), overrides)
    cls = ccxt_pro.binance if pro else ccxt_async.binance
    exchange = cls(config)
    fallback = data["tls" if tls else "http"]["rest"]["public"].rsplit("/api/", 1)[0] + "/unemulated"
    for name in _URL_SECTIONS:
        if name in exchange.urls:
            exchange.urls[name] = _localise(exchange.urls[name], fallback)
    assert_loopback_only(exchange)
    return keep_retry_after(exchange)


def keep_retry_after(exchange: Any) -> Any:
    """Make the 429/418 exceptions of ``exchange`` carry Binance's ``Retry-After`` header.

    ccxt 4.5.90 raises ``DDoSProtection`` with the status and body only; the header, which says how long
    the venue wants every caller to wait, is dropped (``last_response_headers`` is shared by concurrent
    calls, so it cannot be read afterwards). Read by ``bot.venues.errors.retry_after_s``."""
    original = exchange.handle_errors

    def handle_errors(code: int, reason: str, url: str, method: str, headers: Any, *rest: Any) -> Any:
        try:
            return original(code, reason, url, method, headers, *rest)
        except ccxt.DDoSProtection as exc:
            value = next((v for k, v in (headers or {}).items() if str(k).lower() == "retry-after"), None)
            if value is not None:
                with contextlib.suppress(ValueError):
                    exc.retry_after_s = float(value)
            raise

    exchange.handle_errors = handle_errors
    return exchange


def build_live_client(settings: Any, pro: bool = True, **overrides: Any) -> Any:
    """A client for the real Binance from ``Settings`` (keys read from ``SecretStr`` only here)."""
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "options": copy.deepcopy(BASE_OPTIONS),
    }
    api_key = settings.api_key.get_secret_value()
    secret = settings.api_secret.get_secret_value()
    if api_key and secret:
        config["apiKey"] = api_key
        config["secret"] = secret
    config = _merge(config, overrides)
    cls = ccxt_pro.binance if pro else ccxt_async.binance
    return keep_retry_after(cls(config))
