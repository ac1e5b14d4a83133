"""USD-M user-stream listenKeys: create, keepalive, expiry after a configurable TTL (wall time).

Binance expires a key 60 minutes after the last keepalive and then sends ``listenKeyExpired`` on its
socket, which stays open but carries no more events until a new key is used; ccxt 4.5.90 has no handler
for that event, so the bot must keep the key alive itself and reopen the stream after an expiry
(docs/ccxt-binance.md §5.4). ``keepalives`` counts the PUTs that extended a key (what a test asserts the
bot sent).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from bot.emulator.auth import wall_ms
from bot.emulator.errors import api_error


class ListenKeys:
    def __init__(self, ttl_s: float = 3600.0, now_ms: Callable[[], int] = wall_ms) -> None:
        self.ttl_ms = int(ttl_s * 1000)
        self._now = now_ms
        self._expiry: dict[str, int] = {}
        self.keepalives = 0

    def create(self) -> str:
        """Binance returns the account's active key (extending it) or a new one."""
        now = self._now()
        for key, expiry in self._expiry.items():
            if expiry > now:
                self._expiry[key] = now + self.ttl_ms
                return key
        key = secrets.token_urlsafe(48)[:64]
        self._expiry[key] = now + self.ttl_ms
        return key

    def keepalive(self, key: str | None) -> None:
        if not key or not self.is_active(key):
            raise api_error(-1125)
        self._expiry[key] = self._now() + self.ttl_ms
        self.keepalives += 1

    def close(self, key: str | None) -> None:
        if not key or key not in self._expiry:
            raise api_error(-1125)
        del self._expiry[key]

    def is_active(self, key: str) -> bool:
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > self._now()

    def pop_expired(self) -> list[str]:
        now = self._now()
        gone = [k for k, e in self._expiry.items() if e <= now]
        for k in gone:
            del self._expiry[k]
        return gone
