"""The ledger schema: SQLAlchemy 2 typed models.

Money is ``Money`` (NUMERIC(38, 18), exact Decimal on SQLite too), time is BIGINT UTC epoch ms, enums are
stored as their string values with a named CHECK constraint. Facts (fills, funding payments, transfers,
intents) carry natural unique keys so that recording them twice changes nothing. Constraint names are
explicit (naming convention below) so future migrations, including SQLite batch mode, can address them.

The migrations (``migrations/versions/``, from ``0001_initial.py`` on) create exactly this; a test compares
the two, so change both together (``alembic revision --autogenerate`` then review the script).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain import Leg, PairState, Side
from bot.ledger.types import Money

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys: BIGINT on Postgres, INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements there).
IdType = BigInteger().with_variant(Integer(), "sqlite")


class IntentKind(enum.StrEnum):
    ORDER = "order"
    TRANSFER = "transfer"
    CANCEL = "cancel"
    MARGIN = "margin"  # an isolated position's margin added or reduced


class IntentStatus(enum.StrEnum):
    """pending: written, not yet sent; sent: handed to the venue, outcome not yet known; unknown: the
    venue's answer was lost (timeout) and reconciliation must decide."""

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


OPEN_INTENT_STATUSES = (IntentStatus.PENDING, IntentStatus.SENT, IntentStatus.UNKNOWN)


class TransferStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


class Wallet(enum.StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class FundingSource(enum.StrEnum):
    """income: the venue's income history (authoritative); computed: our estimate from rate x position;
    sim: a simulated settlement. An income record replaces a computed one for the same key."""

    INCOME = "income"
    COMPUTED = "computed"
    SIM = "sim"


class RateKind(enum.StrEnum):
    SETTLED = "settled"
    PREDICTED = "predicted"


class ControlKind(enum.StrEnum):
    """An operator control held in ``controls``; account-wide ones have ``symbol`` = ``ACCOUNT``.

    A new kind is a new member here, a migration widening the ``ck_controls_kind`` CHECK
    (``batch_alter_table`` on SQLite, as 0005 does) and the engine's rule for it."""

    CLOSE_ONLY = "close_only"  # account: no entries, held pairs wound down
    CAPITAL_LIMIT = "capital_limit"  # account: ``value`` caps the USDT equity the strategy allocates
    PAUSE = "pause"  # symbol: no entries or increases; a held pair is kept
    EXIT = "exit"  # one pair (``pair_id``): close it now; a request, done once the pair is closed
    # symbol, set by reconciliation: the venue holds legs no pair explains (``value``: the venue's short);
    # no entries until the operator adopts or closes them, or the venue no longer shows them
    ORPHAN = "orphan"
    ADOPT = "adopt"  # symbol: make the orphan's legs a pair the engine manages; a request
    CLOSE_ORPHAN = "close_orphan"  # symbol: trade the orphan's legs to flat; a request


class ControlStatus(enum.StrEnum):
    """active: in force (a switch) or waiting (a request); done: a request carried out; cleared: switched
    off, replaced by a newer value, or withdrawn."""

    ACTIVE = "active"
    DONE = "done"
    CLEARED = "cleared"


ACCOUNT = "*"  # the ``symbol`` of an account-wide control


class EventKind(enum.StrEnum):
    DECISION = "decision"
    ORDER = "order"
    FILL = "fill"
    TRANSFER = "transfer"
    FUNDING = "funding"
    ALERT = "alert"
    INFO = "info"
    ERROR = "error"
    RECONCILE = "reconcile"
    RATE_LIMIT = "rate_limit"  # the venue answered 429/418: all venue work paused (migration 0006)
    LEDGER_OUTAGE = "ledger_outage"  # the ledger could not be written for a while (recorded once it can)


def _str_enum(cls: type[enum.StrEnum]) -> Enum:
    """Store a StrEnum as its value (VARCHAR(16)); the CHECK constraint is declared on the table."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def one_of(column: str, cls: type[enum.StrEnum]) -> CheckConstraint:
    """CHECK (column IN (...values of cls)) named ck_<table>_<column>."""
    values = ", ".join(f"'{m.value}'" for m in cls)
    return CheckConstraint(f"{column} IN ({values})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {Decimal: Money(), dict[str, Any]: JSON(), int: BigInteger()}
    if TYPE_CHECKING:  # each model maps one Table (SQLAlchemy types __table__ as any FromClause)
        __table__: ClassVar[Table]


class Pair(Base):
    """One hedged position (long spot + short perp) per venue and symbol; at most one is not closed.

    ``spot_qty`` / ``perp_qty`` are the actual leg sizes in base units; ``perp_qty`` is the short size as a
    positive number. ``entry_basis`` is (perp - spot) / spot at entry.
    """

    __tablename__ = "pairs"
    __table_args__ = (
        one_of("state", PairState),
        Index(
            "uq_pairs_venue_symbol_active",
            "venue",
            "symbol",
            unique=True,
            sqlite_where=text("state <> 'closed'"),
            postgresql_where=text("state <> 'closed'"),
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    perp_symbol: Mapped[str] = mapped_column(String(48))
    state: Mapped[PairState] = mapped_column(_str_enum(PairState))
    target_qty: Mapped[Decimal]
    spot_qty: Mapped[Decimal]
    perp_qty: Mapped[Decimal]
    entry_spot_price: Mapped[Decimal | None]
    entry_perp_price: Mapped[Decimal | None]
    entry_basis: Mapped[Decimal | None]
    funding_earned: Mapped[Decimal]
    opened_ms: Mapped[int]
    closed_ms: Mapped[int | None]
    updated_ms: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    # the venue's legs when the operator adopted them (no fill of ours made them); None: never adopted
    adopted_spot_qty: Mapped[Decimal | None]
    adopted_perp_qty: Mapped[Decimal | None]


class Intent(Base):
    """Write-ahead record of a side effect, committed before the venue is called."""

    __tablename__ = "intents"
    __table_args__ = (
        one_of("kind", IntentKind),
        one_of("status", IntentStatus),
        Index(None, "status"),
        Index(None, "pair_id"),  # the executor reads a pair's client ids on every action (migration 0002)
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[IntentKind] = mapped_column(_str_enum(IntentKind))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    payload: Mapped[dict[str, Any]]
    status: Mapped[IntentStatus] = mapped_column(_str_enum(IntentStatus))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int]
    updated_ms: Mapped[int]


class Order(Base):
    """The latest known state of one order, keyed by our client order id.

    ``status`` is ccxt's unified order status (open, closed, canceled, expired, rejected).
    """

    __tablename__ = "orders"
    __table_args__ = (
        one_of("leg", Leg),
        one_of("side", Side),
        Index(None, "pair_id"),
        Index(None, "symbol", "created_ms"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    venue: Mapped[str] = mapped_column(String(32))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    leg: Mapped[Leg] = mapped_column(_str_enum(Leg))
    symbol: Mapped[str] = mapped_column(String(48))
    side: Mapped[Side] = mapped_column(_str_enum(Side))
    type: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal | None]
    filled_qty: Mapped[Decimal]
    avg_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16))
    reduce_only: Mapped[bool] = mapped_column(Boolean(create_constraint=False))
    created_ms: Mapped[int]
    updated_ms: Mapped[int]


class Fill(Base):
    """One trade. Binance trade ids are sequences per market and symbol, so the key includes both."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("venue", "market", "symbol", "venue_trade_id"),
        one_of("market", Leg),
        one_of("side", Side),
        Index(None, "client_order_id"),
        Index(None, "symbol", "ts_ms"),
        Index(None, "pair_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    market: Mapped[Leg] = mapped_column(_str_enum(Leg))
    symbol: Mapped[str] = mapped_column(String(48))
    venue_trade_id: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    side: Mapped[Side] = mapped_column(_str_enum(Side))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_asset: Mapped[str | None] = mapped_column(String(16))
    is_maker: Mapped[bool | None] = mapped_column(Boolean(create_constraint=False))
    ts_ms: Mapped[int]


class Transfer(Base):
    """A move of an asset between the spot and USD-M futures wallets, keyed by our client id."""

    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("venue", "venue_tran_id"),
        one_of("from_wallet", Wallet),
        one_of("to_wallet", Wallet),
        one_of("status", TransferStatus),
        Index(None, "created_ms"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    venue: Mapped[str] = mapped_column(String(32))
    venue_tran_id: Mapped[str | None] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal]
    from_wallet: Mapped[Wallet] = mapped_column(_str_enum(Wallet))
    to_wallet: Mapped[Wallet] = mapped_column(_str_enum(Wallet))
    status: Mapped[TransferStatus] = mapped_column(_str_enum(TransferStatus))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int]
    updated_ms: Mapped[int]


class FundingPayment(Base):
    """Funding received (amount > 0) or paid (< 0) at one settlement, in ``asset``."""

    __tablename__ = "funding_payments"
    __table_args__ = (
        UniqueConstraint("venue", "account", "symbol", "funding_time_ms"),
        one_of("source", FundingSource),
        Index(None, "symbol", "funding_time_ms"),
        Index(None, "pair_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(48))
    funding_time_ms: Mapped[int]
    rate: Mapped[Decimal | None]
    amount: Mapped[Decimal]
    asset: Mapped[str] = mapped_column(String(16))
    position_size: Mapped[Decimal | None]
    source: Mapped[FundingSource] = mapped_column(_str_enum(FundingSource))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    recorded_ms: Mapped[int]


class FundingRate(Base):
    """An observed funding rate: settled (final) or predicted (overwritten as it moves)."""

    __tablename__ = "funding_rates"
    __table_args__ = (
        UniqueConstraint("venue", "symbol", "funding_time_ms", "kind"),
        one_of("kind", RateKind),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(48))
    funding_time_ms: Mapped[int]
    rate: Mapped[Decimal]
    kind: Mapped[RateKind] = mapped_column(_str_enum(RateKind))
    interval_hours: Mapped[int | None] = mapped_column(Integer)
    observed_ms: Mapped[int]


class BalanceSnapshot(Base):
    """One asset of one wallet as seen at ``ts_ms``; a wallet snapshot is all rows with the same ts."""

    __tablename__ = "balance_snapshots"
    __table_args__ = (
        UniqueConstraint("venue", "wallet", "asset", "ts_ms"),
        one_of("wallet", Wallet),
        Index(None, "venue", "wallet", "ts_ms"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    wallet: Mapped[Wallet] = mapped_column(_str_enum(Wallet))
    asset: Mapped[str] = mapped_column(String(16))
    free: Mapped[Decimal]
    used: Mapped[Decimal]
    total: Mapped[Decimal]
    ts_ms: Mapped[int]


class Control(Base):
    """An operator control as state: what the engine reads at every scan (never aged out like events).

    At most one row per kind and symbol is active; switching off, replacing a value or finishing a request
    moves the row out of active and keeps it as history. Every change also writes an event (audit trail).
    """

    __tablename__ = "controls"
    __table_args__ = (
        one_of("kind", ControlKind),
        one_of("status", ControlStatus),
        Index(
            "uq_controls_kind_symbol_active",
            "kind",
            "symbol",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[ControlKind] = mapped_column(_str_enum(ControlKind))
    symbol: Mapped[str] = mapped_column(String(48))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    status: Mapped[ControlStatus] = mapped_column(_str_enum(ControlStatus))
    value: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int]
    updated_ms: Mapped[int]


class Event(Base):
    """Append-only operator log; ``id`` increases with every insert (tail follows it with after_id)."""

    __tablename__ = "events"
    __table_args__ = (
        one_of("kind", EventKind),
        Index(None, "ts_ms"),
        Index(None, "symbol", "id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    ts_ms: Mapped[int]
    kind: Mapped[EventKind] = mapped_column(_str_enum(EventKind))
    pair_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("pairs.id"))
    symbol: Mapped[str | None] = mapped_column(String(48))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
