"""The route table type shared by the REST modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.emulator.auth import ParsedRequest, Security

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

Handler = Callable[["Emulator", ParsedRequest], Any | Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One Binance REST endpoint: ``handler(emulator, request)`` returns the JSON body."""

    method: str
    path: str
    handler: Handler
    security: Security = Security.NONE
