"""The ``fundbot`` command line. Each subsystem registers its own commands from ``bot/<pkg>/cli.py``."""

from __future__ import annotations

import importlib
import socket
import sys

import typer
from rich.console import Console

from bot import __version__, early_signals
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
    "bot.sweep.cli",
    "bot.ops.cli",
]


def _print_version(value: bool) -> None:
    """Eager, so ``fundbot --version`` answers without a command (it said "Missing command.")."""
    if value:
        typer.echo(f"fundbot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
) -> None:
    """Delta-neutral funding-rate carry bot: long spot, short the perpetual, collect funding."""


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


def friendly_error(err: BaseException) -> tuple[str, int] | None:
    """A one-line message and exit code for failures a user can fix (a bad database URL, a database that
    is down, a missing file), or None for anything else (a bug: its traceback is what helps).
    Nothing here prints a URL's password or an exception text that could hold one."""
    import sqlalchemy.exc as sa_exc  # the commands that get here have imported SQLAlchemy already

    from bot.ledger.db import BAD_URL, LedgerDatabaseError

    if isinstance(err, LedgerDatabaseError):
        return str(err), 2
    if isinstance(err, sa_exc.ArgumentError):  # a URL that reached SQLAlchemy without ``db.parse_url``
        return BAD_URL, 2
    if isinstance(err, sa_exc.DBAPIError):
        orig = err.orig if err.orig is not None else err
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
        return f"the database refused the request: {type(orig).__name__}: {first}", 1
    if type(err).__name__ == "CommandError" and type(err).__module__.startswith("alembic"):
        return f"database migration: {err}", 2
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return (f"{err.strerror}: {err.filename}" if err.strerror else str(err)), 2
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the host name ({err.strerror}): check the database URL or the connection file", 1
    if isinstance(err, ConnectionRefusedError) or (isinstance(err, OSError) and err.errno in (111, 61)):
        return f"connection refused ({err.strerror or err}): is the database or the emulator running?", 1
    if isinstance(err, OSError) and err.errno == 98:
        return f"address already in use: {err.strerror}; pick another port", 2
    return None


def main() -> None:
    """Console-script entry point: configuration errors and the failures ``friendly_error`` knows become
    a clear message on stderr and a non-zero exit instead of a traceback."""
    early_signals.install()
    _register_all()
    # only the daemon and `tail --follow` stop cleanly on their own; the others get the default back
    if sys.argv[1:2] != ["run"] and not (sys.argv[1:2] == ["tail"] and ("--follow" in sys.argv or "-f" in sys.argv)):
        early_signals.release()
    try:
        app()
    except ConfigError as err:
        err_console.print(f"[red]{err}[/red]", highlight=False)
        sys.exit(2)
    except Exception as err:
        known = friendly_error(err)
        if known is None:
            raise
        err_console.print(f"fundbot: {known[0]}", markup=False, highlight=False)
        sys.exit(known[1])


if __name__ == "__main__":
    main()
