"""``fundbot db upgrade`` / ``fundbot db current`` on SQLite and Postgres."""

from __future__ import annotations

import asyncio

import typer
from typer.testing import CliRunner

from bot import cli as root_cli
from bot.ledger import db
from bot.ledger.cli import register

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep "db" a sub-command even with a single group
        pass

    return app


def test_db_upgrade_creates_the_schema_then_current_reports_head(db_url: str):
    app = _app()
    head = db.head_revision()

    res = runner.invoke(app, ["db", "current", "--url", db_url])
    assert res.exit_code == 1 and "not migrated" in res.output

    res = runner.invoke(app, ["db", "upgrade", "--url", db_url])
    assert res.exit_code == 0, res.output
    assert f"upgraded empty -> {head}" in res.output
    assert asyncio.run(db.current(db_url)) == head

    res = runner.invoke(app, ["db", "current", "--url", db_url])
    assert res.exit_code == 0, res.output
    assert f"{head} (head)" in res.output

    res = runner.invoke(app, ["db", "upgrade", "--url", db_url])
    assert res.exit_code == 0 and f"already at {head}" in res.output


def test_db_commands_use_the_url_from_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("FUNDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FUNDBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    res = runner.invoke(_app(), ["db", "upgrade"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "fundbot-dryrun.db").is_file()


def test_db_commands_are_registered_on_the_fundbot_cli():
    assert "bot.ledger.cli" in root_cli.COMMAND_MODULES
