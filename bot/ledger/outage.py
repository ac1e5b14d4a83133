"""Ledger write outages: a database that turned read-only or full for a while, then came back.

A SQLite connection opened while its file was read-only stays read-only for its whole life, and a pool
hands it out again after the file is writable: the ledger then fails half its writes until a restart. So
a connection whose transaction failed for such a reason is never given back to the pool, and while an
outage lasts no connection is kept (the pool is emptied at its first failure). The outage itself is
recorded as one ``ledger_outage`` event once a write succeeds again: start, end, failed writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, InternalError, OperationalError


def wall_ms() -> int:
    return int(time.time() * 1000)


def is_unwritable(exc: BaseException) -> bool:
    """The database refused or could not take the write (read-only, full disk, I/O error, gone), as opposed
    to a constraint or a bad statement, which no reconnection can fix."""
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, OperationalError | InternalError | InterfaceError | OSError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


@dataclass
class Outage:
    """One episode: from the first failed write to the first write that succeeds again."""

    start_ms: int
    error: str
    failed_writes: int = 1

    def message(self, end_ms: int) -> str:
        seconds = (end_ms - self.start_ms) / 1000
        return (
            f"the ledger could not be written for {seconds:.0f}s ({self.failed_writes} failed writes; no "
            f"intent could be written, so no order or transfer was started meanwhile); writable again. "
            f"First error: {self.error}"
        )

    def details(self, end_ms: int) -> dict[str, object]:
        return {
            "start_ms": self.start_ms,
            "end_ms": end_ms,
            "duration_s": round((end_ms - self.start_ms) / 1000, 1),
            "failed_writes": self.failed_writes,
            "error": self.error,
        }


class OutageTracker:
    """Counts failed writes of the current outage; ``clock`` is the run's clock (the emulator's at speed)."""

    def __init__(self, clock: Callable[[], int] = wall_ms) -> None:
        self.clock = clock
        self.current: Outage | None = None

    def failed(self, exc: BaseException) -> bool:
        """Note a failed write; True when it starts a new outage."""
        if self.current is not None:
            self.current.failed_writes += 1
            return False
        cause = getattr(exc, "orig", None) or exc  # the driver's own error, without SQLAlchemy's SQL dump
        text = f"{type(cause).__name__}: {cause}".splitlines()[0][:300]
        self.current = Outage(self.clock(), text)
        return True
