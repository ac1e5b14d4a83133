"""A SIGTERM that arrives while the command line is still importing its modules (about a second).

Python's default handler would end the process with 143 before the daemon's own handlers exist, so a
`docker compose stop` right after `up` looked like a crash. ``install`` records the signal instead;
``release`` gives the default back to commands that do not stop cleanly themselves, and delivers a
signal that came meanwhile as it would have been; ``requested`` tells the daemon to stop at once.
"""

from __future__ import annotations

import signal
from types import FrameType

_seen = False


def _note(_signum: int, _frame: FrameType | None) -> None:
    global _seen
    _seen = True


def install() -> None:
    signal.signal(signal.SIGTERM, _note)


def release() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _seen:
        signal.raise_signal(signal.SIGTERM)


def requested() -> bool:
    return _seen
