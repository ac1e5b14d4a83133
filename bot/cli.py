"""The ``fundbot`` command line. Each subsystem registers its own commands from ``bot/<pkg>/cli.py``."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from bot import __version__
from bot.config import ConfigError, load_settings, render_env_example, render_settings_table

app = typer.Typer(
    name="fundbot",
    help="Delta-neutral funding-rate carry bot: long spot, short the perpetual, collect funding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show or document the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

err_console = Console(stderr=True)

# Modules that expose ``register(app: typer.Typer)``. Listed here so ``fundbot --help`` is explicit.
COMMAND_MODULES: list[str] = [
    "bot.engine.cli",
    "bot.emulator.cli",
    "bot.ledger.cli",
    "bot.backtest.cli",
    "bot.ops.cli",
]


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked)."""
    settings = load_settings()
    for key, value in settings.model_dump(mode="json").items():
        if key in {"api_key", "api_secret"}:
            value = "**********" if value else ""
        elif key == "database_url" and value:
            value = _masked_url(value)
        elif key == "alerts" and isinstance(value, dict) and value.get("webhook_url"):
            value = {**value, "webhook_url": "********** (a webhook URL is a secret)"}
        typer.echo(f"{key} = {value}")
    typer.echo(f"resolved database url = {_masked_url(settings.resolved_database_url())}")


def _masked_url(url: str) -> str:
    """A database URL with its password masked (all of it when it does not parse as a URL)."""
    from bot.ledger.db import safe_url  # SQLAlchemy: imported only by the commands that need it

    try:
        return safe_url(url)
    except Exception:  # any parse failure: show nothing of it
        return "**********"



@config_app.command("example")
def config_example(
    markdown: bool = typer.Option(False, "--markdown", help="Print the README's Markdown table instead."),
) -> None:
    """Print a commented .env.example with every setting and its default."""
    typer.echo(render_settings_table() if markdown else render_env_example())


def _register_all() -> None:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(app)


def main() -> None:
    """Console-script entry point: turns configuration errors into a clear message and exit code 2."""
    _register_all()
    try:
        app()
    except ConfigError as err:
        err_console.print(f"[red]{err}[/red]", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
