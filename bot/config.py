"""Runtime configuration: environment variables with the ``FUNDBOT_`` prefix, or a ``.env`` file.

Nested sections use ``__``: ``FUNDBOT_TREASURY__LOW_RATIO=0.3``. Every field has a description, a
default and a unit; ``.env.example`` is generated from this module (``fundbot config example``) and a
test keeps the two in step. A bad value fails at start with the variable name and the expected form.
Secrets are ``SecretStr``: they print as ``**********`` everywhere.
"""

from __future__ import annotations

import difflib
import enum
import json
import os
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from strategies.params import CarryParams

ENV_PREFIX = "FUNDBOT_"
NESTED_DELIMITER = "__"
API_TOKEN_MIN = 16
SUPPORTED_EXCHANGES = ("binance",)  # venues the product trades; more only once they exist


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


def override(u: str) -> dict[str, Any]:
    """Field metadata of a setting that overrides what the venue says only when set: .env.example and the
    README show it empty (unset), so a copied example never pins the figure (``bot.engine.costs``)."""
    return {"unit": u, "override": True}


class HttpConfig(Section):
    """The daemon's HTTP server: /healthz and /metrics (open), the operator API and dashboard (bearer token)."""

    enabled: bool = Field(
        True,
        description="serve /healthz, /metrics (and the API and dashboard when a token is set) while the daemon runs",
        json_schema_extra=unit("bool"),
    )
    host: str = Field(
        "127.0.0.1",
        description="address the health endpoint binds to (loopback by default)",
        json_schema_extra=unit("host"),
    )
    port: int = Field(
        8787, ge=0, le=65535, description="TCP port of the health endpoint", json_schema_extra=unit("port")
    )
    scheduler_max_age_s: float = Field(
        180.0,
        gt=0,
        description="/healthz fails when the scheduler heartbeat is older than this",
        json_schema_extra=unit("s"),
    )
    venue_max_age_s: float = Field(
        300.0,
        gt=0,
        description="/healthz fails when the last successful venue call is older than this",
        json_schema_extra=unit("s"),
    )
    scan_max_age_s: float = Field(
        7200.0,
        gt=0,
        description="/healthz fails when the last successful funding scan is older than this",
        json_schema_extra=unit("s"),
    )
    api_token: SecretStr = Field(
        SecretStr(""),
        description="bearer token of the operator API and dashboard (http://HOST:PORT/); empty: both are off. "
        "16 characters or more, e.g. from `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`",
        json_schema_extra=unit("secret"),
    )

    @field_validator("api_token")
    @classmethod
    def _check_token(cls, v: SecretStr) -> SecretStr:
        """A short or spaced token is refused at start rather than guessed by a neighbour on the network."""
        text = v.get_secret_value()
        if text and (len(text) < API_TOKEN_MIN or any(c.isspace() for c in text)):
            raise ValueError(f"must be empty (API off) or {API_TOKEN_MIN}+ characters without spaces")
        return v


class AlertsConfig(Section):
    """Operator alerts: always written to the ledger as alert events; optionally POSTed to a webhook; and
    notifications (alerts, entries and exits, a daily summary) through Apprise."""

    webhook_url: SecretStr = Field(
        SecretStr(""),
        description="URL that receives each alert as a JSON POST (empty: ledger only); treated as a secret",
        json_schema_extra=unit("URL"),
    )
    timeout_s: float = Field(
        5.0, gt=0, description="webhook and notification request timeout", json_schema_extra=unit("s")
    )
    notify_urls: SecretStr = Field(
        SecretStr(""),
        description="Apprise URLs that receive notifications (tgram://, discord://, slack://, mailto://, ntfy://, "
        "json://...; several separated by spaces); empty: none; a secret, never logged",
        json_schema_extra=unit("URLs"),
    )
    notify_level: str = Field(
        "info",
        pattern="^(info|warning|critical)$",
        description="least severity notified: info (entries, exits, the daily summary and every alert), warning "
        "(alerts), critical (a quarantined pair, collateral below the band, an IP ban)",
        json_schema_extra=unit("info|warning|critical"),
    )
    summary_hour_utc: int = Field(
        0,
        ge=0,
        le=23,
        description="hour of the daily summary notification (on the daemon's clock)",
        json_schema_extra=unit("hour UTC"),
    )

    @field_validator("notify_urls")
    @classmethod
    def _check_notify_urls(cls, v: SecretStr) -> SecretStr:
        """Each URL must be one Apprise can load; the message names the entry, never the URL (a secret)."""
        if v.get_secret_value().strip():
            from bot.services.notify import check_urls

            check_urls(v.get_secret_value())
        return v


class ExecutionConfig(Section):
    """How the executor brings both legs of a pair to a target (retries, follow-up, circuit breaker)."""

    max_hedge_retries: int = Field(
        3,
        ge=0,
        le=20,
        description="retries to complete a hedge after a retryable failure of one leg",
        json_schema_extra=unit("count"),
    )
    breaker_failures: int = Field(
        3,
        ge=1,
        description="consecutive failed actions on a symbol that open its circuit breaker",
        json_schema_extra=unit("count"),
    )
    breaker_cooldown_s: float = Field(
        900.0,
        ge=0,
        description="how long an open circuit breaker blocks new actions on the symbol",
        json_schema_extra=unit("s"),
    )
    order_timeout_s: float = Field(
        30.0,
        gt=0,
        description="how long an open order is followed up (fetched by client id) before it is canceled",
        json_schema_extra=unit("s"),
    )
    poll_interval_s: float = Field(
        0.5, gt=0, description="pause between follow-up reads of an open order", json_schema_extra=unit("s")
    )
    retry_backoff_s: float = Field(
        0.5,
        ge=0,
        description="first pause before a retry; doubles on each further retry",
        json_schema_extra=unit("s"),
    )
    spot_cost_buffer: Decimal = Field(
        Decimal("0.01"),
        ge=0,
        lt=1,
        description="share of a spot buy's notional kept free for fees and slippage when sizing an entry",
        json_schema_extra=unit("fraction"),
    )
    spot_fee_in_base: Decimal = Field(
        Decimal("0.001"),
        ge=0,
        lt=Decimal("0.05"),
        description="fee rate Binance takes in the bought coin on spot buys; spot buys are grossed up by it so the "
        "coin received matches the short. Empty: the account's spot taker rate read from the venue at start and "
        "daily (0 while BNB pays the fees; 0.001 when the venue gives none); set: this figure, whatever the venue says",
        json_schema_extra=override("fraction"),
    )
    style: str = Field(
        "taker",
        pattern="^(maker|taker)$",
        description="taker: both legs of an action at market; maker: both legs as post-only limit orders at or "
        "inside the touch, re-priced as the book moves, the rest at market after maker_max_reprices or "
        "maker_timeout_s (benchmarks/maker_vs_taker.py compares them)",
        json_schema_extra=unit("maker|taker"),
    )
    maker_max_reprices: int = Field(
        5,
        ge=0,
        le=100,
        description="maker style: re-prices of one leg's resting order (a post-only refusal counts as one) "
        "before the rest of the action goes at market",
        json_schema_extra=unit("count"),
    )
    maker_timeout_s: float = Field(
        120.0,
        gt=0,
        description="maker style: how long an action's legs are worked as resting orders before the rest goes "
        "at market",
        json_schema_extra=unit("s"),
    )
    maker_poll_s: float = Field(
        2.0,
        gt=0,
        description="maker style: pause between reads of the resting orders and the books",
        json_schema_extra=unit("s"),
    )
    maker_reprice_bps: Decimal = Field(
        Decimal("2"),
        ge=0,
        description="maker style: a resting order is re-priced once the touch has moved this far away from it "
        "(0: at every tick)",
        json_schema_extra=unit("bps"),
    )
    maker_price: str = Field(
        "inside",
        pattern="^(inside|touch|mid)$",
        description="maker style: where a leg rests, never crossing: inside one tick inside the touch (at the touch "
        "when the spread is one tick), touch at the best price of its side, mid the tick nearest the mid on its side",
        json_schema_extra=unit("inside|touch|mid"),
    )
    maker_follow: str = Field(
        "both",
        pattern="^(both|spot)$",
        description="maker style: which leg, a whole hedge tolerance behind the other, takes the difference at "
        "market. both: either leg; spot: only the spot leg (at Binance's regular tier spot charges makers and takers "
        "the same 0.10%, the perp 0.02% against 0.05%), a perp leg behind keeps resting until its own fill or the "
        "timeout",
        json_schema_extra=unit("both|spot"),
    )
    maker_hedge_tolerance: Decimal = Field(
        Decimal("0.02"),
        gt=0,
        le=1,
        description="maker style: most the legs' fills may differ while worked, as a share of the action's "
        "quantity (at least one minimum order); a leg's resting order never exceeds what keeps it so",
        json_schema_extra=unit("fraction"),
    )


class TreasuryConfig(Section):
    """Futures collateral. ratio = futures margin balance / total short notional at mark price."""

    target_ratio: Decimal = Field(
        Decimal("0.5"),
        gt=0,
        description="collateral ratio a transfer aims for (0.5: margin is half the short notional)",
        json_schema_extra=unit("ratio"),
    )
    low_ratio: Decimal = Field(
        Decimal("0.35"),
        gt=0,
        description="below this ratio USDT moves from spot to futures (or both legs shrink)",
        json_schema_extra=unit("ratio"),
    )
    high_ratio: Decimal = Field(
        Decimal("0.7"),
        gt=0,
        description="above this ratio the excess over the target moves back to spot",
        json_schema_extra=unit("ratio"),
        validate_default=True,
    )
    min_transfer: Decimal = Field(
        Decimal("10"), gt=0, description="smallest transfer sent", json_schema_extra=unit("USDT")
    )
    max_attempts: int = Field(
        5,
        ge=1,
        le=20,
        description="attempts of one transfer (shrinking after an insufficient-balance answer)",
        json_schema_extra=unit("count"),
    )
    backoff_s: float = Field(
        0.5, ge=0, description="first pause between transfer attempts; doubles each time", json_schema_extra=unit("s")
    )
    shrink_factor: Decimal = Field(
        Decimal("0.9"),
        gt=0,
        lt=1,
        description="after insufficient balance, retry with this share of the re-read maximum",
        json_schema_extra=unit("fraction"),
    )
    lookup_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="reads of the venue's transfer history after a lost answer, before leaving it to reconciliation",
        json_schema_extra=unit("count"),
    )
    bnb_fees: bool = Field(
        False,
        description="pay spot fees in BNB (Binance's spotBNBBurn, turned on at start; off turns it off): a small "
        "BNB balance is kept topped up on BNB/USDT, spot buys are not grossed up while BNB pays, and the BNB "
        "spent is counted as fees at its USDT price then",
        json_schema_extra=unit("bool"),
    )
    bnb_low_usdt: Decimal = Field(
        Decimal("20"),
        gt=0,
        description="with bnb_fees: when the spot wallet's BNB is worth less than this, BNB is bought",
        json_schema_extra=unit("USDT"),
    )
    bnb_target_usdt: Decimal = Field(
        Decimal("50"),
        gt=0,
        description="with bnb_fees: a top-up buys BNB up to this value",
        json_schema_extra=unit("USDT"),
    )

    @model_validator(mode="after")
    def _check_band(self) -> TreasuryConfig:
        """The band as a whole: naming high_ratio when low_ratio was the one out of place misled."""
        if self.bnb_low_usdt >= self.bnb_target_usdt:
            raise ValueError(f"need bnb_low_usdt < bnb_target_usdt, got {self.bnb_low_usdt} / {self.bnb_target_usdt}")
        if not self.low_ratio < self.target_ratio < self.high_ratio:
            raise ValueError(
                f"need low_ratio < target_ratio < high_ratio, got {self.low_ratio} / {self.target_ratio} / "
                f"{self.high_ratio}"
            )
        return self


class UniverseConfig(Section):
    """Which pairs are traded when FUNDBOT_SYMBOLS is empty: every USDT-margined perpetual with a spot
    market on the venue, filtered (``bot.engine.universe``); and when a held pair's listing closes it."""

    min_quote_volume_usdt: Decimal = Field(
        Decimal("20000000"),
        ge=0,
        description="least 24 h quote volume of the perpetual for the pair to be traded (not applied to "
        "FUNDBOT_SYMBOLS)",
        json_schema_extra=unit("USDT"),
    )
    min_listing_days: float = Field(
        30,
        ge=0,
        description="least age of the perpetual (exchangeInfo onboardDate) for the pair to be traded (not applied "
        "to FUNDBOT_SYMBOLS)",
        json_schema_extra=unit("days"),
    )
    max_symbols: int = Field(
        40, ge=0, description="most pairs scanned, by 24 h quote volume (0: no cap)", json_schema_extra=unit("count")
    )
    deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="spot symbols never traded, comma-separated (e.g. BNB/USDT), also when FUNDBOT_SYMBOLS names them",
        json_schema_extra=unit("list"),
    )
    delist_exit_hours: float = Field(
        72,
        gt=0,
        description="a held pair whose perpetual's delivery (a delisting notice) is this close is closed; a status "
        "other than TRADING closes it at once",
        json_schema_extra=unit("hours"),
    )
    listing_check_s: float = Field(
        3600,
        gt=0,
        description="how often the listings of held pairs are re-read (exchangeInfo status and deliveryDate)",
        json_schema_extra=unit("seconds"),
    )

    @field_validator("deny", mode="before")
    @classmethod
    def _split_deny(cls, v: Any) -> Any:
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


class EngineConfig(Section):
    """The daemon's schedule and account setup. Intervals are in venue (simulated) seconds."""

    scan_interval_s: float = Field(
        300, gt=0, description="funding scan and strategy evaluation period", json_schema_extra=unit("seconds")
    )
    collateral_interval_s: float = Field(
        30,
        gt=0,
        description="collateral and hedge check period (also run on mark-price moves)",
        json_schema_extra=unit("seconds"),
    )
    mark_trigger_bps: Decimal = Field(
        Decimal(50),
        gt=0,
        description="a mark-price move this large since the last check runs the collateral check now",
        json_schema_extra=unit("bps"),
    )
    funding_sync_delay_s: float = Field(
        60, ge=0, description="wait after a settlement before reading funding income", json_schema_extra=unit("seconds")
    )
    funding_grace_s: float = Field(
        900,
        gt=0,
        description="alert when a settlement's payment is still missing this long after it",
        json_schema_extra=unit("seconds"),
    )
    snapshot_interval_s: float = Field(
        900, gt=0, description="balance snapshot period", json_schema_extra=unit("seconds")
    )
    reconcile_interval_s: float = Field(
        900, gt=0, description="reconciliation period (also at start)", json_schema_extra=unit("seconds")
    )
    book_depth: int = Field(
        20, ge=5, le=1000, description="order-book levels read per leg", json_schema_extra=unit("levels")
    )
    leverage: int = Field(3, ge=1, le=20, description="perp leverage set at start", json_schema_extra=unit("x"))
    margin_mode: str = Field(
        "cross",
        pattern="^(cross|isolated)$",
        description="perp margin mode set at start",
        json_schema_extra=unit("cross|isolated"),
    )
    spot_maker_fee: Decimal = Field(
        Decimal("0.001"),
        ge=0,
        description="spot maker fee rate the cost model uses. Empty: the account's own rate per symbol, read "
        "from the venue at start and daily (0.001 for a symbol it gives none); set: overrides the venue's",
        json_schema_extra=override("fraction"),
    )
    spot_taker_fee: Decimal = Field(
        Decimal("0.001"),
        ge=0,
        description="spot taker fee rate the cost model uses. Empty: the account's own rate per symbol, read "
        "from the venue at start and daily (0.001 for a symbol it gives none); set: overrides the venue's",
        json_schema_extra=override("fraction"),
    )
    perp_maker_fee: Decimal = Field(
        Decimal("0.0002"),
        ge=0,
        description="perp maker fee rate the cost model uses. Empty: the account's own rate per symbol, read "
        "from the venue at start and daily (0.0002 for a symbol it gives none); set: overrides the venue's",
        json_schema_extra=override("fraction"),
    )
    perp_taker_fee: Decimal = Field(
        Decimal("0.0005"),
        ge=0,
        description="perp taker fee rate the cost model uses. Empty: the account's own rate per symbol, read "
        "from the venue at start and daily (0.0005 for a symbol it gives none); set: overrides the venue's",
        json_schema_extra=override("fraction"),
    )
    capital_limit: Decimal | None = Field(
        None,
        gt=0,
        description="cap on the USDT equity the strategy may allocate; empty means the whole account "
        "(`fundbot control capital-limit` replaces it while set)",
        json_schema_extra=unit("USDT"),
    )
    hedge_alert_fraction: Decimal = Field(
        Decimal("0.02"),
        gt=0,
        description="alert when a pair's legs differ by more than this share of the larger leg",
        json_schema_extra=unit("fraction"),
    )
    shutdown_timeout_s: float = Field(
        60,
        gt=0,
        description="how long SIGTERM waits for in-flight work before exiting",
        json_schema_extra=unit("seconds"),
    )
    start_retry_s: float = Field(
        120,
        ge=0,
        description="how long start-up retries venue reads that failed transiently (5xx, -1008, timeouts, rate "
        "limits), in real seconds, before it gives up with a one-line message",
        json_schema_extra=unit("seconds"),
    )
    listen_key_keepalive_s: float = Field(
        1800,
        gt=0,
        description="USD-M listenKey keepalive period of a live run's user-data stream (ccxt 4.5.90 never "
        "refreshes it; Binance drops a key 60 min after the last keepalive)",
        json_schema_extra=unit("seconds"),
    )


class Settings(BaseSettings):
    """All fundbot settings. Subsystem sections are nested models below."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # FUNDBOT_X= (as .env.example writes an unset value) means the default
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
    exchange: str = Field(
        "binance",
        description="venue to trade; only binance (spot + USD-M perpetuals) is supported today",
        json_schema_extra=unit("name"),
    )
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
        default_factory=list,
        description="allow-list of spot symbols the bot may trade (comma-separated or JSON list), each hedged with "
        "SYM:USDT; empty: the universe, every USDT-margined perpetual with a spot market that passes "
        "FUNDBOT_UNIVERSE__* (volume, listing age, status)",
        json_schema_extra=unit("list"),
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR", json_schema_extra=unit("level"))
    http: HttpConfig = Field(
        default_factory=HttpConfig, description="health and metrics endpoint", json_schema_extra=unit("section")
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig, description="operator alerts", json_schema_extra=unit("section")
    )
    execution: ExecutionConfig = Field(
        default_factory=ExecutionConfig, description="order execution of both legs", json_schema_extra=unit("section")
    )
    treasury: TreasuryConfig = Field(
        default_factory=TreasuryConfig,
        description="futures collateral and transfers",
        json_schema_extra=unit("section"),
    )
    engine: EngineConfig = Field(
        default_factory=EngineConfig, description="daemon schedule and account setup", json_schema_extra=unit("section")
    )
    universe: UniverseConfig = Field(
        default_factory=UniverseConfig,
        description="the pairs traded when FUNDBOT_SYMBOLS is empty",
        json_schema_extra=unit("section"),
    )
    strategy: CarryParams = Field(
        default_factory=CarryParams, description="carry strategy parameters", json_schema_extra=unit("section")
    )

    @model_validator(mode="after")
    def _collateral_consistent(self) -> Settings:
        """The strategy sizes pairs with the collateral the treasury will actually hold (the band's target,
        and at least the initial margin of the engine's leverage); if it assumes less, every entry is
        trimmed by the treasury and the next scan asks again (churn)."""
        needed = max(self.treasury.target_ratio, 1 / Decimal(self.engine.leverage))
        assumed = 1 / self.strategy.perp_leverage + self.strategy.margin_buffer_fraction
        if assumed < needed:
            raise ValueError(
                f"1/FUNDBOT_STRATEGY__PERP_LEVERAGE + FUNDBOT_STRATEGY__MARGIN_BUFFER_FRACTION ({assumed:.4f}) "
                f"must be at least the futures collateral per notional the treasury keeps ({needed:.4f}: "
                f"FUNDBOT_TREASURY__TARGET_RATIO, or 1/FUNDBOT_ENGINE__LEVERAGE if larger): raise the buffer to "
                f"{(needed - 1 / self.strategy.perp_leverage).quantize(Decimal('0.0001'))}"
            )
        return self

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, v: str) -> str:
        """Any other ccxt id used to be accepted and ignored: the bot still traded Binance."""
        name = v.strip().lower()
        if name not in SUPPORTED_EXCHANGES:
            raise ValueError(
                f"{v!r} is not supported: fundbot trades {', '.join(SUPPORTED_EXCHANGES)} only (spot + USD-M "
                "perpetuals); set binance or leave it empty"
            )
        return name

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} is a file, not a directory: point it at a folder (it is created when missing)")
        return v

    @field_validator("connection_file")
    @classmethod
    def _check_connection_file(cls, v: Path | None) -> Path | None:
        if v is not None and v.is_dir():
            raise ValueError(
                f"{v} is a directory, not a connection file: give the JSON file `fundbot emulator` writes "
                "(e.g. var/emulator.json), or leave it empty for the real venue"
            )
        return v

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
        return v

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return v

    def resolved_database_url(self, live: bool | None = None) -> str:
        """The ledger URL; dry-run gets its own SQLite file so it never mixes with a live ledger.
        ``live`` picks the file of that mode (a daemon started with ``run --live``) over ``mode``."""
        if self.database_url:
            return self.database_url
        is_live = self.mode is Mode.LIVE if live is None else live
        name = "fundbot.db" if is_live else "fundbot-dryrun.db"
        return f"sqlite+aiosqlite:///{(self.data_dir / name).as_posix()}"


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + NESTED_DELIMITER.join(str(p).upper() for p in loc if not isinstance(p, int))


def format_validation_error(err: ValidationError) -> str:
    """One line per bad field: the variable to fix, what was wrong, and the expected form."""
    lines = []
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        name = _env_name(loc) if loc else "settings"
        msg = e.get("msg", "invalid value")
        if e.get("type") == "extra_forbidden":
            msg = "unknown setting" + _did_you_mean(name)
        lines.append(f"{name}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


NOT_SETTINGS = ("FUNDBOT_TEST_", "FUNDBOT_POSTGRES_PASSWORD", "FUNDBOT_COMPOSE_")  # tests, docker-compose.yml


def _did_you_mean(name: str) -> str:
    """'; did you mean FUNDBOT_X?' for the closest setting name, else where the names are listed."""
    close = difflib.get_close_matches(name, sorted(n for n, *_ in iter_settings()), n=1)
    return f"; did you mean {close[0]}?" if close else "; see `fundbot config example`"


def _unknown_variables(names: Iterable[str]) -> list[str]:
    """FUNDBOT_* names that are no setting: a misspelled one was silently ignored (the default ran)."""
    leaves = {name for name, *_ in iter_settings()}
    sections = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    out = []
    for name in names:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NOT_SETTINGS) or upper in leaves | sections:
            continue
        section = upper.split(NESTED_DELIMITER)[0]
        if NESTED_DELIMITER in upper and section in sections:
            continue  # FUNDBOT_ENGINE__NOPE: the section's own check names it
        out.append(f"{name}: unknown setting{_did_you_mean(upper)}")
    return out


def _dotenv_names(path: Path) -> list[str]:
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key = line.strip().removeprefix("export ").split("=", 1)[0].strip()
        if key and not key.startswith("#") and "=" in line:
            names.append(key)
    return names


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and .env; raise ConfigError naming each bad field, and each
    FUNDBOT_* variable that is no setting."""
    unknown = _unknown_variables([*os.environ, *_dotenv_names(Path(".env"))])
    if unknown:
        raise ConfigError("\n".join(unknown))
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    except SettingsError as err:  # a section given as one value that is not JSON (FUNDBOT_ENGINE=...)
        raise ConfigError(
            f"{err}; set the section's fields one by one (FUNDBOT_ENGINE__SCAN_INTERVAL_S=60) or give JSON"
        ) from None


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
        text = "" if extra.get("override") else _default_text(default)
        yield prefix + name.upper(), text, str(extra.get("unit", "")), field.description or ""


def render_env_example() -> str:
    """The text of .env.example: every setting, commented, with its default and unit."""
    out = [
        "# fundbot settings. Copy to .env and edit; every line below shows the default.",
        "# An empty value (NAME=) means unset: the default applies. Delete or comment out what you do not change.",
        "# Generated by `fundbot config example`; a test checks that this file matches the code.",
        "",
    ]
    for env, default, u, desc in iter_settings():
        out.append(f"# {desc} [{u}]")
        out.append(f"{env}={default}")
        out.append("")
    return "\n".join(out)


def render_settings_table() -> str:
    """The README's configuration table (Markdown), from the same source as .env.example."""
    rows = ["| variable | default | unit | meaning |", "|---|---|---|---|"]
    for env, default, u, desc in iter_settings():
        rows.append(f"| `{env}` | {f'`{default}`' if default else '(empty)'} | {u.replace('|', '/')} | {desc} |")
    return "\n".join(rows)
