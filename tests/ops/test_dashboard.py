"""The dashboard in a real headless browser (Debian's chromium driven by Playwright) against a daemon trading
the emulator: the page shows the pairs the ledger holds, and "exit" on a pair closes it through the engine
with the operator's reason. The same daemon sends its entry and exit notifications (Apprise's json:// to a
local endpoint).

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run); Playwright never downloads a browser here.
Without chromium the test skips, except under CI=true where it fails.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import Mode, load_settings
from bot.domain import PairState
from bot.engine.daemon import Daemon, build_runtime
from bot.ledger.models import ControlKind, ControlStatus, EventKind
from bot.ledger.repository import Ledger

pytestmark = pytest.mark.slow  # every test here is over ~2 s

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "dashboard-test-token-0123456789"
SPEED = 120.0
SYMBOLS = ["SOL/USDT", "XRP/USDT"]
START = "2025-07-21"
REASON = "funding is turning; closing from the dashboard"


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    why = f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_page_shows_the_ledgers_pairs_and_exit_closes_one_through_the_engine(tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright

    from bot.emulator.server import run_emulator
    from bot.engine.demo import _ms, demo_scenario

    notes: list[dict[str, Any]] = []  # the daemon's notifications, in Apprise's JSON form

    async def take(request: web.Request) -> web.Response:
        notes.append(await request.json())
        return web.Response()

    hook = web.AppRunner(web.Application(), access_log=None)
    hook.app.router.add_post("/notes", take)
    await hook.setup()
    await web.TCPSite(hook, "127.0.0.1", 0).start()
    hook_port = hook.addresses[0][1]

    db = f"sqlite+aiosqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    settings = load_settings(
        mode=Mode.LIVE,
        data_dir=tmp_path,
        database_url=db,
        symbols=SYMBOLS,
        http={"enabled": True, "host": "127.0.0.1", "port": 0, "api_token": TOKEN},
        alerts={"notify_urls": f"json://127.0.0.1:{hook_port}/notes"},
        engine={"shutdown_timeout_s": 10},
        log_level="WARNING",
    )
    start_ms = _ms(START)
    conn = tmp_path / "emulator.json"
    async with run_emulator(
        symbols=SYMBOLS,
        start_ms=start_ms,
        speed=SPEED,
        connection_file=conn,
        state_dir=tmp_path / "emulator",
        scenario=demo_scenario(None, start_ms, SPEED),
    ):
        rt = await build_runtime(settings, mode=Mode.LIVE, connection_file=conn)
        daemon = Daemon(rt, settings)
        running = asyncio.ensure_future(daemon.run())
        reader = await Ledger.open(db, migrate=False)
        try:

            async def held() -> list[Any]:
                if running.done():
                    running.result()  # the daemon died: show why
                return await reader.list_pairs([PairState.OPEN])

            pairs = await eventually(held, "the daemon to open a pair")
            base = f"http://127.0.0.1:{daemon.http_port}"
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
                try:
                    page = await browser.new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(f"{base}/")
                    await page.fill("#login-token", TOKEN)  # what an operator does on first visit
                    await page.click("#login-ok")
                    rows = page.locator("#pairs tbody tr")
                    await rows.first.wait_for(timeout=20_000)

                    async def page_shows_the_ledger() -> set[str] | None:
                        """The rows are the ledger's pairs not closed (read again: one may be opening)."""
                        shown = await rows.evaluate_all(
                            "rows => rows.map(r => r.dataset.pairId + ' ' + r.dataset.symbol)"
                        )
                        ledger = await reader.list_pairs([s for s in PairState if s is not PairState.CLOSED])
                        return set(shown) if set(shown) == {f"{p.id} {p.symbol}" for p in ledger} else None

                    shown = await eventually(page_shows_the_ledger, "the page to show the ledger's pairs", 20)
                    shown = {text.split(" ", 1)[1] for text in shown}
                    assert await page.locator("#live").text_content() in {"live", "connecting"}

                    pair = next(p for p in pairs if p.symbol in shown)
                    row = page.locator(f'#pairs tbody tr[data-symbol="{pair.symbol}"]')
                    await row.locator("button.exit").click()
                    assert await page.locator("#confirm").is_visible()  # a confirmation, not a one-click exit
                    assert pair.symbol in (await page.locator("#confirm-title").text_content() or "")
                    await page.fill("#confirm-reason", REASON)
                    await page.check("#confirm-pause")
                    await page.click("#confirm-ok")
                    await page.locator("#toast").wait_for(state="visible", timeout=10_000)
                    assert f"pair #{pair.id}" in (await page.locator("#toast").text_content() or "")

                    async def closed() -> Any:
                        p = await reader.get_pair(pair.id)
                        return p if p is not None and p.state is PairState.CLOSED else None

                    await eventually(closed, f"pair #{pair.id} closed by the engine")
                    gone = page.locator(f'#pairs tbody tr[data-pair-id="{pair.id}"]')
                    await gone.wait_for(state="detached", timeout=20_000)  # the page follows the ledger
                    assert pair.symbol in (await page.locator("#paused-list").text_content() or "")
                    assert not errors, errors
                finally:
                    await browser.close()

            decisions = await reader.events(kinds=[EventKind.DECISION], symbol=pair.symbol)
            exits = [e for e in decisions if (e.details or {}).get("rule") == "operator_exit"]
            assert exits, [e.message for e in decisions]
            assert exits[0].details["inputs"]["operator_reason"] == REASON
            assert exits[0].details["inputs"]["requested_by"] == "api"
            request = (await reader.control_history([ControlKind.EXIT], limit=1))[0]
            assert (request.status, request.pair_id, request.reason) == (ControlStatus.DONE, pair.id, REASON)
            assert request.note == f"pair #{pair.id} closed by the engine"
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(running, 30) == 0
            await reader.close()
            await hook.cleanup()
    titles = [n["title"] for n in notes]  # the daemon's notifier was flushed at its stop
    assert f"fundbot entered {pair.symbol}" in titles and f"fundbot exited {pair.symbol}" in titles, titles
    exited = next(n for n in notes if n["title"] == f"fundbot exited {pair.symbol}")
    assert exited["message"].startswith(f"operator exit: {REASON}")
