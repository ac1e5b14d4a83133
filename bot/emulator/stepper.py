"""The background task that advances the simulation and pushes what changed.

Every ``tick_ms`` of wall time: apply scenario events that are due (price shocks, funding overrides, listing changes,
forced partial fills), ``sim.step(now)``, then push user events, market streams, listenKey expiries and
scheduled WebSocket disconnects. Tests with a ``ManualClock`` call ``tick()`` directly after advancing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from bot.sim.listing import set_listing

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

log = logging.getLogger(__name__)


class Stepper:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        sc = emu.scenario
        self._shocks = sorted(sc.price_shocks, key=lambda s: s.at_ms)
        self._overrides = sorted(sc.funding_overrides, key=lambda o: o.at_ms)
        self._partials = sorted(sc.partial_fills, key=lambda p: p.at_ms)
        self._listings = sorted(sc.listings, key=lambda c: c.at_ms)
        self._disconnects = sorted(sc.ws_disconnect_at_ms)
        self._every_s = sc.ws_disconnect_every_s
        self._last_disconnect = time.monotonic()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.disconnects = 0

    def _apply_due(self, now: int) -> None:
        sim = self.emu.sim
        while self._shocks and self._shocks[0].at_ms <= now:
            shock = self._shocks.pop(0)
            sim.apply_price_shock(shock.symbol, float(shock.pct) / 100.0, shock.duration_ms)  # pct is in percent
        while self._overrides and self._overrides[0].at_ms <= now:
            ov = self._overrides.pop(0)
            sim.override_funding_rate(ov.symbol, ov.rate)
        while self._partials and self._partials[0].at_ms <= now:
            sim.force_partial_fill(self._partials.pop(0).fraction)
        while self._listings and self._listings[0].at_ms <= now:
            change = self._listings.pop(0)
            set_listing(
                sim,
                change.symbol,
                status=change.status,
                delivery_ms=change.delivery_ms,
                spot_status=change.spot_status,
            )

    async def tick(self) -> None:
        """One simulation step and its pushes (serialised: the loop and tests may both call it)."""
        async with self._lock:
            now = self.emu.clock.now_ms()
            self._apply_due(now)
            self.emu.sim.step(now)
            hub = self.emu.hub
            await hub.flush_user_events()
            await hub.push_market()
            await hub.expire_listen_keys()
            due = False
            while self._disconnects and self._disconnects[0] <= now:
                self._disconnects.pop(0)
                due = True
            if self._every_s and time.monotonic() - self._last_disconnect >= self._every_s:
                self._last_disconnect = time.monotonic()
                due = True
            if due:
                self.disconnects += 1
                await hub.disconnect_all()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.emu.tick_ms / 1000)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("emulator: simulation step failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="emulator-stepper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
