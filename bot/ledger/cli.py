"""``fundbot db upgrade`` / ``fundbot db current``: create or migrate the ledger schema, show its revision."""

from __future__ import annotations

import asyncio

import typer

from bot.config import load_settings
from bot.ledger import db

db_app = typer.Typer(help="Create, migrate or inspect the ledger database.", no_args_is_help=True)

URL_OPTION = typer.Option(
    None, "--url", help="SQLAlchemy async URL of the ledger (default: from settings, FUNDBOT_DATABASE_URL)"
)


def _resolve(url: str | None) -> str:
    return url or load_settings().resolved_database_url()


@db_app.command("upgrade")
def upgrade_cmd(
    url: str | None = URL_OPTION,
    revision: str = typer.Option("head", "--revision", help="target revision"),
) -> None:
    """Create the schema or migrate it to the newest revision."""
    target = _resolve(url)
    before = asyncio.run(db.current(target))
    after = asyncio.run(db.upgrade(target, revision))
    where = db.safe_url(target)
    if before == after:
        typer.echo(f"{where}: already at {after}")
    else:
        typer.echo(f"{where}: upgraded {before or 'empty'} -> {after}")


@db_app.command("current")
def current_cmd(url: str | None = URL_OPTION) -> None:
    """Print the schema revision of the ledger (and whether it is the newest)."""
    target = _resolve(url)
    rev = asyncio.run(db.current(target))
    head = db.head_revision()
    if rev is None:
        typer.echo(f"{db.safe_url(target)}: none (not migrated; run `fundbot db upgrade`)")
        raise typer.Exit(1)
    typer.echo(f"{db.safe_url(target)}: {rev}{' (head)' if rev == head else f' (head is {head})'}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
