"""``fundbot emulator``: serve the Binance-compatible emulator on loopback until SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer

from bot.emulator.server import DEFAULT_BALANCE, EmulatorHandle, serve_forever


def _parse_date(text: str | None) -> int | None:
    if not text:
        return None
    try:
        day = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2025-01-31") from None
    if day.tzinfo is None:
        day = day.replace(tzinfo=dt.UTC)
    return int(day.timestamp() * 1000)


def _announce(handle: EmulatorHandle) -> None:
    info = handle.info
    typer.echo(
        f"fundbot emulator listening on http://{info.host}:{info.http_port} and https://{info.host}:{info.https_port}"
    )
    typer.echo(f"  symbols {', '.join(info.symbols)}; sim start {info.sim_start_ms} ms; speed x{info.speed:g}")
    if handle.connection_file is not None:
        typer.echo(f"  connection file {handle.connection_file}")
    typer.echo(f"  CA certificate {info.ca_file}")


def _serve(**kwargs: Any) -> None:
    asyncio.run(serve_forever(**kwargs))


def register(app: typer.Typer) -> None:
    @app.command("emulator")
    def emulator(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (keep it on loopback)."),
        port: int = typer.Option(0, help="Plain HTTP/WS port; 0 picks a free one."),
        tls_port: int = typer.Option(0, "--tls-port", help="HTTPS/WSS port; 0 picks a free one."),
        data: Path | None = typer.Option(
            None,
            "--data",
            help="History directory (layout: docs/architecture.md, History data); default: the bundled dataset.",
        ),
        symbols: str = typer.Option(
            "",
            help="Comma-separated spot symbols; each also gets its USDT perpetual. Default: every pair the history "
            "holds (the bundled data's, or --data's); BTC/USDT,ETH/USDT with --random-walk.",
        ),
        start: str | None = typer.Option(
            None, help="Simulated start date YYYY-MM-DD (UTC); default: first hour of data."
        ),
        speed: float = typer.Option(
            1.0, help="Simulated seconds per wall-clock second (rate limits count wall minutes: see SCENARIOS.md)."
        ),
        scenario: Path | None = typer.Option(
            None, help="Fault/event scenario file (.json or .toml), see bot/emulator/SCENARIOS.md."
        ),
        seed: int = typer.Option(0, help="Seed for the random walk and fault draws (a scenario seed wins)."),
        balance: str = typer.Option(str(DEFAULT_BALANCE), help="Starting USDT in the spot wallet."),
        connection_file: Path = typer.Option(
            Path("var/emulator.json"), help="Where to write the JSON connection file."
        ),
        clock_file: Path | None = typer.Option(
            None,
            "--clock-file",
            help="Keep the replay's clock across restarts: a later start carries on where this replay's clock "
            "is by then, as if it had never stopped (over --start). Delete the file to start over.",
        ),
        random_walk: bool = typer.Option(
            False, "--random-walk", help="Use a seeded synthetic market instead of history."
        ),
        api_key: str | None = typer.Option(None, help="API key to accept (default: random per run)."),
        api_secret: str | None = typer.Option(None, help="API secret to accept (default: random per run)."),
    ) -> None:
        """Serve a Binance-compatible REST + WebSocket emulator over the simulation core."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise typer.BadParameter("the emulator only listens on loopback", param_hint="--host")
        if speed <= 0:
            raise typer.BadParameter("must be positive", param_hint="--speed")
        try:
            usdt = Decimal(balance)
        except InvalidOperation:
            raise typer.BadParameter(f"{balance!r} is not a number", param_hint="--balance") from None
        try:
            _serve(
                host=host,
                port=port,
                tls_port=tls_port,
                symbols=[s.strip() for s in symbols.split(",") if s.strip()],
                data_dir=data,
                start_ms=_parse_date(start),
                speed=speed,
                scenario=scenario,
                seed=seed,
                balance=usdt,
                random_walk=random_walk,
                api_key=api_key,
                secret=api_secret,
                connection_file=connection_file,
                clock_file=clock_file,
                state_dir=connection_file.parent / "emulator-tls",
                announce=_announce,
            )
        except ValueError as err:  # bad --start, unknown symbol, malformed scenario
            raise typer.BadParameter(str(err)) from None
