"""Fixtures for the operator commands: a ledger URL holding the reference history, and a CLI runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner, Result

from bot.ops.cli import register
from tests.ledger_files import open_ledger

from .history import build_history


async def _write_history(url: str) -> None:
    led = await open_ledger(url)
    try:
        await build_history(led)
    finally:
        await led.close()


@pytest.fixture
def history_url(db_url: str) -> str:
    """``db_url`` (SQLite and Postgres) holding the reference history (for sync CLI tests)."""
    asyncio.run(_write_history(db_url))
    return db_url


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke the ops commands on an app of their own (other parts' commands stay out of the way)."""
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke
