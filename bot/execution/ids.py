"""Deterministic client ids: the write-ahead intent and the venue order share one id.

An id is derived from the pair, the pair's action sequence number, the leg and (for follow-up orders of
the same action) a step letter and attempt number, so that after a crash the same decision yields the
same id and reconciliation can ask the venue about it. Binance accepts ``^[.A-Z:/a-z0-9_-]{1,36}$``.
"""

from __future__ import annotations

import re

from bot.domain import Leg

PREFIX = "fb"
BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_LEG_CODE = {Leg.SPOT: "s", Leg.PERP: "p"}
_CODE_LEG = {v: k for k, v in _LEG_CODE.items()}
_ORDER_ID = re.compile(r"^fb-(?P<pair>[A-Za-z0-9_]+)-(?P<seq>\d+)-(?P<leg>[sp])(?:-(?P<step>[a-z])(?P<n>\d+))?$")


class ClientIdError(ValueError):
    """The id would not be accepted by the venue (too long or bad characters)."""


def pair_key(pair_id: object) -> str:
    """The pair part of an id: the ledger pair id with anything but [A-Za-z0-9_] replaced by '_'."""
    key = _UNSAFE.sub("_", str(pair_id))
    if not key:
        raise ClientIdError("empty pair id")
    return key


def check(client_id: str) -> str:
    """Return ``client_id`` if Binance would accept it, else raise ClientIdError."""
    if not BINANCE_CLIENT_ID.fullmatch(client_id):
        raise ClientIdError(f"client id {client_id!r} is not valid for Binance (max 36 of [.A-Z:/a-z0-9_-])")
    return client_id


def order_id(pair_id: object, seq: int, leg: Leg, step: str = "", attempt: int = 0) -> str:
    """``fb-<pair>-<seq>-<s|p>`` for an action's first order; ``...-<step><attempt>`` for follow-ups.

    Steps: ``t`` top-up / retry of the hedge, ``u`` unwind of the leading leg.
    """
    if seq < 0 or attempt < 0:
        raise ClientIdError("seq and attempt must be >= 0")
    base = f"{PREFIX}-{pair_key(pair_id)}-{seq}-{_LEG_CODE[Leg(leg)]}"
    if step:
        if not re.fullmatch(r"[a-z]", step):
            raise ClientIdError(f"step must be one lower-case letter, got {step!r}")
        base += f"-{step}{attempt}"
    return check(base)


def cancel_id(client_order_id: str) -> str:
    """Ledger key of the intent to cancel ``client_order_id`` (never sent to the venue as an order id)."""
    return check(f"{client_order_id}.x")


def transfer_id(ts_ms: int, n: int = 0) -> str:
    """Ledger key of a transfer intent; the venue has no client id for transfers, so time keys it."""
    return check(f"{PREFIX}-tr-{ts_ms}-{n}")


def margin_id(ts_ms: int, n: int = 0) -> str:
    """Ledger key of an isolated-margin change intent (the venue has no client id for those either)."""
    return check(f"{PREFIX}-mg-{ts_ms}-{n}")


def parse_order_id(client_id: str) -> tuple[str, int, Leg, str, int] | None:
    """(pair key, seq, leg, step, attempt) of one of our order ids, or None for anything else."""
    m = _ORDER_ID.fullmatch(client_id)
    if not m:
        return None
    return m["pair"], int(m["seq"]), _CODE_LEG[m["leg"]], m["step"] or "", int(m["n"] or 0)
