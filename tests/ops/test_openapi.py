"""schemathesis against the API's own OpenAPI description, served by a real server over the reference
history: every response (success or error) must match the spec, schema-valid requests must be accepted,
requests the spec calls invalid must be refused with a 4xx, and no route may answer without the token.

The server runs on its own event loop in a thread (schemathesis' test functions are synchronous). The
event stream never ends by design, so it is tested in test_api.py instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from bot.ledger.repository import Ledger
from bot.ops.api import ApiService
from bot.ops.openapi import openapi_spec
from bot.services.health import HealthState, bound_port, start_health_server

from .history import T_END, build_history
from .test_api_orphans import block_orphan_legs

TOKEN = "schemathesis-token-0123456789"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]

# The token through the spec's own security scheme (not a header on every call): the cases that leave it
# out on purpose then really go without it, and must be refused.
CONFIG = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": TOKEN}}}})
schema = schemathesis.openapi.from_dict(openapi_spec(SYMBOLS), config=CONFIG).exclude(operation_id="streamEvents")
ANSWERS: dict[str, set[int]] = {}  # operation -> the statuses it answered in the conformance run


class ServerThread:
    """The API over a ledger holding the reference history, on an event loop of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.base = ""
        self.failure: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as err:
            self.failure = err
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        self.ledger = await Ledger.open(self.url, migrate=True)
        await build_history(self.ledger)
        await block_orphan_legs(self.ledger, "ETH/USDT")  # so adopt and close can be answered with a 2xx
        health = HealthState(now_fn=lambda: T_END)
        api = ApiService(
            self.ledger,
            token=TOKEN,
            now_fn=lambda: T_END,
            health=health,
            symbols=SYMBOLS,
            band=(Decimal("0.35"), Decimal("0.5"), Decimal("0.7")),
        )
        self.runner = await start_health_server(health, "127.0.0.1", 0, api=api)
        self.base = f"http://127.0.0.1:{bound_port(self.runner)}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.ledger.close()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.ready.wait(30)
        if self.failure is not None:
            raise self.failure
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    db = Path(tmp_path_factory.mktemp("openapi")) / "ledger.db"
    with ServerThread(f"sqlite+aiosqlite:///{db.as_posix()}") as srv:
        yield srv


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.slow
@pytest.mark.timeout(300)  # 30 s on a loaded 2-core machine
def test_api_conforms_to_its_openapi(case: schemathesis.Case, server: ServerThread) -> None:
    response = case.call_and_validate(base_url=server.base)
    ANSWERS.setdefault(case.operation.label, set()).add(response.status_code)


def test_every_operation_was_served_with_the_token(server: ServerThread) -> None:
    """Not only refusals: the conformance run reached every operation with the token (a 2xx each)."""
    if not ANSWERS:
        pytest.skip("reads what the conformance run above recorded; run the module")
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert labels and labels <= set(ANSWERS), labels - set(ANSWERS)
    assert all(any(200 <= code < 300 for code in ANSWERS[label]) for label in labels), ANSWERS
    assert all(401 in ANSWERS[label] for label in labels), ANSWERS  # and refused without it


def test_the_spec_is_served(server: ServerThread) -> None:
    import requests

    r = requests.get(f"{server.base}/api/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200 and r.json() == openapi_spec(SYMBOLS)
