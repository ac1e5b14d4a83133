"""Runtime configuration: environment variables with the ``FUNDBOT_`` prefix, or a ``.env`` file.

Nested sections use ``__``: ``FUNDBOT_TREASURY__LOW_RATIO=0.3``. Every field has a description, a
default and a unit; ``.env.example`` is generated from this module (``fundbot config example``) and a
test keeps the two in step. A bad value fails at start with the variable name and the expected form.
Secrets are ``SecretStr``: they print as ``**********`` everywhere.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from pathlib import Path
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "FUNDBOT_"
NESTED_DELIMITER = "__"


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable and the fix."""


class Mode(enum.StrEnum):
    DRY_RUN = "dry-run"
    LIVE = "live"


class Section(BaseModel):
    """Base of nested settings sections: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def unit(u: str) -> dict[str, Any]:
    """Field metadata: the unit shown in .env.example and the README table."""
    return {"unit": u}


class Settings(BaseSettings):
    """All fundbot settings. Subsystem sections are nested models below."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    mode: Mode = Field(
        Mode.DRY_RUN,
        description="dry-run (live market data, simulated account) or live (real orders; also needs --live)",
        json_schema_extra=unit("dry-run|live"),
    )
    data_dir: Path = Field(
        Path("./var"),
        description="directory for the SQLite ledger, logs and emulator files",
        json_schema_extra=unit("path"),
    )
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy async URL of the ledger; empty means SQLite in DATA_DIR "
            "(sqlite+aiosqlite:///DATA_DIR/fundbot.db, or fundbot-dryrun.db in dry-run). "
            "Postgres: postgresql+asyncpg://user@host:5432/db"
        ),
        json_schema_extra=unit("URL"),
    )
    exchange: str = Field("binance", description="ccxt exchange id", json_schema_extra=unit("name"))
    connection_file: Path | None = Field(
        None,
        description="emulator connection file (JSON written by `fundbot emulator`); empty means the real venue",
        json_schema_extra=unit("path"),
    )
    api_key: SecretStr = Field(
        SecretStr(""), description="exchange API key (live mode only)", json_schema_extra=unit("secret")
    )
    api_secret: SecretStr = Field(
        SecretStr(""), description="exchange API secret (live mode only)", json_schema_extra=unit("secret")
    )
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "BNB/USDT"],
        description="spot symbols the bot may trade (comma-separated or JSON list); each is hedged with SYM:USDT",
        json_schema_extra=unit("list"),
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR", json_schema_extra=unit("level"))

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.strip().startswith("["):
                try:
                    return json.loads(v)
                except json.JSONDecodeError as err:
                    raise ValueError(f"not a JSON list: {err.msg}; or use BTC/USDT,ETH/USDT") from None
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, v: list[str]) -> list[str]:
        for s in v:
            parts = s.split("/")
            if len(parts) != 2 or not all(parts) or ":" in s:
                raise ValueError(f"{s!r} is not a spot symbol like BTC/USDT")
        if not v:
            raise ValueError("at least one symbol is needed, e.g. BTC/USDT")
        return v

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return v

    def resolved_database_url(self) -> str:
        """The ledger URL; dry-run gets its own SQLite file so it never mixes with a live ledger."""
        if self.database_url:
            return self.database_url
        name = "fundbot.db" if self.mode is Mode.LIVE else "fundbot-dryrun.db"
        return f"sqlite+aiosqlite:///{(self.data_dir / name).as_posix()}"


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + NESTED_DELIMITER.join(str(p).upper() for p in loc if not isinstance(p, int))


def format_validation_error(err: ValidationError) -> str:
    """One line per bad field: the variable to fix, what was wrong, and the expected form."""
    lines = []
    for e in err.errors():
        name = _env_name(tuple(e.get("loc", ())))
        msg = e.get("msg", "invalid value")
        if e.get("type") == "extra_forbidden":
            msg = "unknown setting; remove it or check the spelling"
        lines.append(f"{name}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and .env; raise ConfigError naming each bad field."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def _default_text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Decimal | Path):
        return str(value)
    return str(value)


def iter_settings(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX):
    """Yield (env name, default text, unit, description) for every leaf setting."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from iter_settings(ann, prefix + name.upper() + NESTED_DELIMITER)
            continue
        default = field.get_default(call_default_factory=True)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        yield prefix + name.upper(), _default_text(default), str(extra.get("unit", "")), field.description or ""


def render_env_example() -> str:
    """The text of .env.example: every setting, commented, with its default and unit."""
    out = [
        "# fundbot settings. Copy to .env and edit; every line below shows the default.",
        "# Generated by `fundbot config example`; a test checks that this file matches the code.",
        "",
    ]
    for env, default, u, desc in iter_settings():
        out.append(f"# {desc} [{u}]")
        out.append(f"{env}={default}")
        out.append("")
    return "\n".join(out)
