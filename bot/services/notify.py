"""Notifications to the operator's phone through Apprise (Telegram, Discord, Slack, e-mail, ntfy, a JSON
webhook... from one setting of Apprise URLs): alerts, entries and exits, a daily summary, each with a
severity, sent when it reaches the threshold.

- alerts: every ``alert`` event the ledger receives (whoever wrote it: engine, executor, treasury,
  reconciliation), followed by id; critical for a quarantined pair, collateral below the band and an IP
  ban, warning otherwise;
- entries and exits: the engine reports each executed one (``Engine.on_trade``), info (a failed one
  is a warning);
- the daily summary at ``alerts.summary_hour_utc`` on the daemon's clock: equity, funding, fees and the
  net over the last 24 h, the pairs held, the alerts and errors of the day; info.

Sending never blocks or breaks the engine: notes go through a bounded queue to one sender task, a failure
is logged, counted (``fundbot_errors_total{kind="notify"}``) and recorded as an error event at most once
an hour. The URLs hold tokens and passwords: they are never logged, neither by us (targets are named by
scheme and host only) nor by Apprise (its logger gets a filter that masks every part of every URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from bot.domain import DAY_MS, HOUR_MS
from bot.format import fmt_age, fmt_dec, fmt_pct, fmt_qty, iso_utc
from bot.ledger.models import EventKind
from bot.ledger.reads import last_event_id, select_events
from bot.ledger.repository import Ledger
from bot.services.alerts import AlertKind
from bot.services.health import HealthState

if TYPE_CHECKING:
    from bot.execution.executor import ExecutionResult
    from strategies.base import Target

log = logging.getLogger(__name__)

MASK = "****"
QUEUE_SIZE = 200
FAILURE_EVENT_EVERY_MS = HOUR_MS
CRITICAL_ALERTS = frozenset({AlertKind.PAIR_QUARANTINED.value, AlertKind.COLLATERAL_LOW.value, "rate_limited"})
_SPLIT = re.compile(r"\s+|,(?=\s*[A-Za-z][A-Za-z0-9+.\-]*://)")


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"{text!r} is not a severity: use info, warning or critical") from None


def split_urls(text: str) -> list[str]:
    """Apprise URLs from one setting: separated by spaces, or by commas before the next ``scheme://``
    (a comma inside a URL, as in ``?to=a,b``, stays)."""
    return [u.strip() for u in _SPLIT.split(text or "") if u and u.strip()]


def secret_parts(url: str) -> list[str]:
    """Every piece of ``url`` that may be a secret (credentials, host, path segments, query values),
    longest first, raw and percent-decoded: what the log filter masks."""
    parts = {url}
    try:
        s = urlsplit(url)
    except ValueError:
        return [url]
    pieces = [s.netloc, *re.split(r"[:@]", s.netloc), *s.path.split("/"), s.fragment]
    for pair in s.query.split("&"):
        pieces += pair.split("=", 1)[1:]
    for p in pieces:
        for form in (p, unquote(p)):
            if len(form) >= 4:
                parts.add(form)
    return sorted(parts, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Masks the given secrets in a record's message (Apprise logs URLs and hosts at several levels)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = text
        for s in self.secrets:
            masked = masked.replace(s, MASK)
        if masked != text:
            record.msg, record.args = masked, None
        return True


# Apprise logs hosts, paths and shortened URLs; urllib3 (under requests) logs each request line at DEBUG.
GUARDED_LOGGERS = ("apprise", "urllib3.connectionpool")


def _guard(secrets: RedactSecrets) -> None:
    for name in GUARDED_LOGGERS:
        logging.getLogger(name).addFilter(secrets)


def _unguard(secrets: RedactSecrets) -> None:
    for name in GUARDED_LOGGERS:
        logging.getLogger(name).removeFilter(secrets)


def check_urls(text: str) -> list[str]:
    """The URLs of the setting, each one Apprise can load; ValueError naming the entry by position and
    scheme (never the URL itself) otherwise."""
    import apprise

    urls = split_urls(text)
    guard = RedactSecrets(p for u in urls for p in secret_parts(u))
    _guard(guard)
    try:
        for i, url in enumerate(urls, 1):
            if not apprise.Apprise().add(url):
                scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
                raise ValueError(
                    f"entry {i} ({scheme}://...) is not a URL Apprise can load; see "
                    "https://github.com/caronc/apprise/wiki for each service's form"
                )
    finally:
        _unguard(guard)
    return urls


def target_name(server: Any) -> str:
    """'json://127.0.0.1:9' for a loaded Apprise service: scheme and host only (paths hold tokens)."""
    text = server.url(privacy=True)
    scheme, _, rest = text.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{host.rsplit('@', 1)[-1]}"


@dataclass(frozen=True, slots=True)
class Note:
    severity: Severity
    title: str
    body: str
    kind: str  # alert, entry, exit, summary


# The daily summary's text from the ledger at a time: a view (``bot.ops.summary.daily_summary``), passed in
# by the daemon so this runtime service never imports bot.ops.
DailySummary = Callable[[Ledger, int], Awaitable[str]]


class Notifier:
    """Sends notes to the Apprise URLs of ``urls`` when their severity reaches ``level``."""

    def __init__(
        self,
        urls: str | SecretStr,
        *,
        ledger: Ledger,
        now_fn: Callable[[], int],
        level: Severity | str = Severity.INFO,
        summary: DailySummary,
        summary_hour_utc: int = 0,
        timeout_s: float = 10.0,
        health: HealthState | None = None,
        follow_interval_s: float = 2.0,
    ) -> None:
        import apprise

        text = urls.get_secret_value() if isinstance(urls, SecretStr) else urls
        self.urls = check_urls(text)
        if not self.urls:
            raise ValueError("no notification URL given")
        self._guard = RedactSecrets(p for u in self.urls for p in secret_parts(u))
        _guard(self._guard)
        self._apprise = apprise.Apprise()
        for url in self.urls:
            self._apprise.add(url)
        self.targets = [target_name(s) for s in self._apprise]
        self.ledger = ledger
        self.now = now_fn
        self.level = Severity.parse(level) if isinstance(level, str) else level
        self.summary = summary
        self.summary_hour_utc = summary_hour_utc
        self.timeout_s = timeout_s
        self.health = health
        self.follow_interval_s = follow_interval_s
        self._queue: asyncio.Queue[Note] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._tasks: list[asyncio.Task] = []
        self._last_alert_id = 0
        self._next_summary_ms: int | None = None
        self._last_failure_event_ms: int | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    @classmethod
    def from_settings(cls, settings: Any, ledger: Ledger, now_fn: Callable[[], int], **kwargs: Any) -> Notifier | None:
        """None when ``alerts.notify_urls`` is empty."""
        a = settings.alerts
        if not a.notify_urls.get_secret_value().strip():
            return None
        return cls(
            a.notify_urls,
            ledger=ledger,
            now_fn=now_fn,
            level=a.notify_level,
            summary_hour_utc=a.summary_hour_utc,
            timeout_s=a.timeout_s,
            **kwargs,
        )

    # -- what is sent ---------------------------------------------------------------------------------

    def wants(self, severity: Severity) -> bool:
        return severity >= self.level

    def send(self, note: Note) -> bool:
        """Queue ``note`` when it reaches the threshold; False when filtered out or the queue is full."""
        if not self.wants(note.severity):
            return False
        try:
            self._queue.put_nowait(note)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("notification queue full: %s dropped (%d so far)", note.kind, self.dropped)
            return False
        return True

    def alert_note(self, kind: str | None, message: str, symbol: str | None) -> Note:
        severity = Severity.CRITICAL if kind in CRITICAL_ALERTS else Severity.WARNING
        what = (kind or "alert").replace("_", " ")
        title = f"fundbot {'CRITICAL' if severity is Severity.CRITICAL else 'alert'}: {what}"
        return Note(severity, title + (f" ({symbol})" if symbol else ""), message, "alert")

    async def on_trade(self, target: Target, result: ExecutionResult) -> None:
        """The engine executed an entry or an exit (``Engine.on_trade``)."""
        action = target.action.value
        if action not in ("enter", "exit"):
            return
        done = result.status in ("done", "repaired")
        reason = target.reason
        if action == "enter":
            econ = reason.economics
            terms = []
            if econ is not None:
                terms.append(f"~{fmt_dec(econ.notional, 0)} USDT a leg")
                terms.append(f"forecast {fmt_pct(econ.forecast_apr, 2)} APR")
                if econ.break_even_hours is not None:
                    terms.append(f"break-even {fmt_dec(econ.break_even_hours, 1)} h")
            if done:
                title = f"fundbot entered {target.symbol}"
                body = f"long {fmt_qty(result.spot_qty)} spot, short {fmt_qty(result.perp_qty)} perp"
                body += f" ({', '.join(terms)})" if terms else ""
            else:
                title = f"fundbot entry of {target.symbol} failed ({result.status})"
                body = "; ".join(result.errors) or "see `fundbot tail`"
            body += f": {reason.message}" if reason.message else ""
            self.send(Note(Severity.INFO if done else Severity.WARNING, title, body, "entry"))
            return
        pair = await self.ledger.get_pair(result.pair_id) if result.pair_id is not None else None
        held = ""
        if pair is not None:
            held = f"; funding earned {fmt_dec(pair.funding_earned, 4, signed=True)} USDT"
            held += f" over {fmt_age(self.now() - pair.opened_ms)}"
        if done:
            title = f"fundbot exited {target.symbol}"
            body = f"{reason.message or reason.rule}{held}"
        else:
            title = f"fundbot exit of {target.symbol} failed ({result.status})"
            body = ("; ".join(result.errors) or reason.message) + " (the next scan tries again)"
        self.send(Note(Severity.INFO if done else Severity.WARNING, title, body, "exit"))

    async def summary_note(self, now_ms: int) -> Note:
        """The day in a few lines, from the ledger (the text is the daemon's ``summary``, a view)."""
        body = await self.summary(self.ledger, now_ms)
        return Note(Severity.INFO, f"fundbot daily summary {iso_utc(now_ms)[:10]}", body, "summary")

    # -- running --------------------------------------------------------------------------------------

    async def begin(self) -> None:
        """Mark where the ledger is now (alerts written from here on are sent) and plan the first summary;
        call before the engine starts, so alerts of its start are sent too."""
        self._last_alert_id = await last_event_id(self.ledger)
        self._next_summary_ms = next_summary_ms(self.now(), self.summary_hour_utc)

    def start(self) -> None:
        """The sender and the ledger follower, as background tasks (``close`` ends them)."""
        self._tasks = [asyncio.ensure_future(self._sender()), asyncio.ensure_future(self._follow())]

    async def poll(self) -> None:
        """One round of the follower: new alert events, and the summary when its time has come."""
        rows = await select_events(self.ledger, after_id=self._last_alert_id, kinds=[EventKind.ALERT.value])
        for ev, sym in rows:
            self._last_alert_id = max(self._last_alert_id, ev.id)
            kind = (ev.details or {}).get("alert") if isinstance(ev.details, dict) else None
            self.send(self.alert_note(kind, ev.message, sym))
        now = self.now()
        if self._next_summary_ms is not None and now >= self._next_summary_ms:
            self._next_summary_ms = next_summary_ms(now, self.summary_hour_utc)
            if self.wants(Severity.INFO):
                self.send(await self.summary_note(now))

    async def _follow(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the ledger may be busy or gone for a moment: next round
                log.warning("notifications: reading the ledger failed (%s)", type(err).__name__)
            await asyncio.sleep(self.follow_interval_s)

    async def _sender(self) -> None:
        while True:
            note = await self._queue.get()
            try:
                await self.deliver(note)
            finally:
                self._queue.task_done()

    async def deliver(self, note: Note) -> bool:
        """Send one note to every URL now; True when all took it."""
        import apprise

        kinds = {
            Severity.INFO: apprise.NotifyType.SUCCESS if note.kind in ("entry", "exit") else apprise.NotifyType.INFO,
            Severity.WARNING: apprise.NotifyType.WARNING,
            Severity.CRITICAL: apprise.NotifyType.FAILURE,
        }
        try:
            ok = bool(
                await self._apprise.async_notify(
                    body=note.body, title=note.title, notify_type=kinds[note.severity], timeout=self.timeout_s
                )
            )
        except Exception as err:  # a plugin raising must not end the sender
            log.warning("notification %r raised %s", note.kind, type(err).__name__)
            ok = False
        if ok:
            self.sent += 1
            return True
        self.failed += 1
        log.warning("notification %r not delivered to every target (%s)", note.kind, ", ".join(self.targets))
        if self.health is not None:
            self.health.inc_error("notify")
        now = self.now()
        if self._last_failure_event_ms is None or now - self._last_failure_event_ms >= FAILURE_EVENT_EVERY_MS:
            self._last_failure_event_ms = now
            with contextlib.suppress(Exception):
                await self.ledger.add_event(
                    EventKind.ERROR,
                    f"notification {note.kind} not delivered to every target ({', '.join(self.targets)}); "
                    "later failures within the hour are only counted in /metrics",
                    ts_ms=now,
                    details={"notification": note.kind, "targets": self.targets},
                )
        return False

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until the queued notes are sent; True when the queue emptied."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (bounded), then stop the tasks and unhook the log filter."""
        if self._tasks:
            await self.flush(timeout_s)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        _unguard(self._guard)


def next_summary_ms(now_ms: int, hour_utc: int) -> int:
    """The first ``hour_utc``:00 UTC strictly after ``now_ms``."""
    day_start = now_ms - now_ms % DAY_MS
    at = day_start + hour_utc * HOUR_MS
    return at if at > now_ms else at + DAY_MS
