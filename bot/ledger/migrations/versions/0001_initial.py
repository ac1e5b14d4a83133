"""Initial ledger schema: pairs, intents, orders, fills, transfers, funding, balances, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written from ``alembic revision --autogenerate`` and reviewed: every constraint and index has an
explicit name (``op.f``) so later migrations, including SQLite batch rebuilds, can address it. Enum
values are spelled out here on purpose: a migration records the schema as it was, not as the code is now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.ledger.types import Money

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    """BIGINT surrogate key; INTEGER on SQLite where only INTEGER PRIMARY KEY autoincrements."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(table: str, column: str, *values: str) -> tuple[sa.Column[str], sa.CheckConstraint]:
    """A VARCHAR(16) enum column and its CHECK constraint ck_<table>_<column>."""
    allowed = ", ".join(f"'{v}'" for v in values)
    return (
        sa.Column(column, sa.String(16), nullable=False),
        sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}")),
    )


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _fk_pair(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f(f"fk_{table}_pair_id_pairs"))


def _uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def _ix(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=False)


SIDES = ("buy", "sell")
LEGS = ("spot", "perp")
WALLETS = ("spot", "futures")
PAIR_STATES = ("opening", "open", "rebalancing", "closing", "closed", "quarantined")


def upgrade() -> None:
    state_col, state_ck = _enum("pairs", "state", *PAIR_STATES)
    op.create_table(
        "pairs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("perp_symbol", sa.String(48), nullable=False),
        state_col,
        sa.Column("target_qty", Money(), nullable=False),
        sa.Column("spot_qty", Money(), nullable=False),
        sa.Column("perp_qty", Money(), nullable=False),
        sa.Column("entry_spot_price", Money(), nullable=True),
        sa.Column("entry_perp_price", Money(), nullable=True),
        sa.Column("entry_basis", Money(), nullable=True),
        sa.Column("funding_earned", Money(), nullable=False),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        state_ck,
        _pk("pairs"),
    )
    # At most one pair per venue and symbol that is not closed.
    op.create_index(
        "uq_pairs_venue_symbol_active",
        "pairs",
        ["venue", "symbol"],
        unique=True,
        sqlite_where=sa.text("state <> 'closed'"),
        postgresql_where=sa.text("state <> 'closed'"),
    )

    kind_col, kind_ck = _enum("intents", "kind", "order", "transfer", "cancel")
    status_col, status_ck = _enum("intents", "status", "pending", "sent", "done", "failed", "cancelled", "unknown")
    op.create_table(
        "intents",
        sa.Column("id", _id(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        kind_col,
        sa.Column("pair_id", _id(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        status_col,
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        kind_ck,
        status_ck,
        _fk_pair("intents"),
        _pk("intents"),
        _uq("intents", "client_id"),
    )
    _ix("intents", "status")

    leg_col, leg_ck = _enum("orders", "leg", *LEGS)
    side_col, side_ck = _enum("orders", "side", *SIDES)
    op.create_table(
        "orders",
        sa.Column("id", _id(), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("venue_order_id", sa.String(64), nullable=True),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("pair_id", _id(), nullable=True),
        leg_col,
        sa.Column("symbol", sa.String(48), nullable=False),
        side_col,
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("quantity", Money(), nullable=False),
        sa.Column("price", Money(), nullable=True),
        sa.Column("filled_qty", Money(), nullable=False),
        sa.Column("avg_price", Money(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        leg_ck,
        side_ck,
        _fk_pair("orders"),
        _pk("orders"),
        _uq("orders", "client_order_id"),
    )
    _ix("orders", "pair_id")
    _ix("orders", "symbol", "created_ms")

    market_col, market_ck = _enum("fills", "market", *LEGS)
    side_col, side_ck = _enum("fills", "side", *SIDES)
    op.create_table(
        "fills",
        sa.Column("id", _id(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        market_col,
        sa.Column("symbol", sa.String(48), nullable=False),
        sa.Column("venue_trade_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=True),
        sa.Column("venue_order_id", sa.String(64), nullable=True),
        sa.Column("pair_id", _id(), nullable=True),
        side_col,
        sa.Column("quantity", Money(), nullable=False),
        sa.Column("price", Money(), nullable=False),
        sa.Column("fee", Money(), nullable=False),
        sa.Column("fee_asset", sa.String(16), nullable=True),
        sa.Column("is_maker", sa.Boolean(), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        market_ck,
        side_ck,
        _fk_pair("fills"),
        _pk("fills"),
        # Binance trade ids are sequences per market and symbol.
        _uq("fills", "venue", "market", "symbol", "venue_trade_id"),
    )
    _ix("fills", "client_order_id")
    _ix("fills", "pair_id")
    _ix("fills", "symbol", "ts_ms")

    from_col, from_ck = _enum("transfers", "from_wallet", *WALLETS)
    to_col, to_ck = _enum("transfers", "to_wallet", *WALLETS)
    status_col, status_ck = _enum("transfers", "status", "pending", "sent", "done", "failed")
    op.create_table(
        "transfers",
        sa.Column("id", _id(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("venue_tran_id", sa.String(64), nullable=True),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        from_col,
        to_col,
        status_col,
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        from_ck,
        to_ck,
        status_ck,
        _pk("transfers"),
        _uq("transfers", "client_id"),
        _uq("transfers", "venue", "venue_tran_id"),
    )
    _ix("transfers", "created_ms")

    source_col, source_ck = _enum("funding_payments", "source", "income", "computed", "sim")
    op.create_table(
        "funding_payments",
        sa.Column("id", _id(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(48), nullable=False),
        sa.Column("funding_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("rate", Money(), nullable=True),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("position_size", Money(), nullable=True),
        source_col,
        sa.Column("pair_id", _id(), nullable=True),
        sa.Column("recorded_ms", sa.BigInteger(), nullable=False),
        source_ck,
        _fk_pair("funding_payments"),
        _pk("funding_payments"),
        _uq("funding_payments", "venue", "account", "symbol", "funding_time_ms"),
    )
    _ix("funding_payments", "pair_id")
    _ix("funding_payments", "symbol", "funding_time_ms")

    kind_col, kind_ck = _enum("funding_rates", "kind", "settled", "predicted")
    op.create_table(
        "funding_rates",
        sa.Column("id", _id(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(48), nullable=False),
        sa.Column("funding_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("rate", Money(), nullable=False),
        kind_col,
        sa.Column("interval_hours", sa.Integer(), nullable=True),
        sa.Column("observed_ms", sa.BigInteger(), nullable=False),
        kind_ck,
        _pk("funding_rates"),
        _uq("funding_rates", "venue", "symbol", "funding_time_ms", "kind"),
    )

    wallet_col, wallet_ck = _enum("balance_snapshots", "wallet", *WALLETS)
    op.create_table(
        "balance_snapshots",
        sa.Column("id", _id(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        wallet_col,
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("free", Money(), nullable=False),
        sa.Column("used", Money(), nullable=False),
        sa.Column("total", Money(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        wallet_ck,
        _pk("balance_snapshots"),
        _uq("balance_snapshots", "venue", "wallet", "asset", "ts_ms"),
    )
    _ix("balance_snapshots", "venue", "wallet", "ts_ms")

    kind_col, kind_ck = _enum(
        "events", "kind", "decision", "order", "fill", "transfer", "funding", "alert", "info", "error", "reconcile"
    )
    op.create_table(
        "events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        kind_col,
        sa.Column("pair_id", _id(), nullable=True),
        sa.Column("symbol", sa.String(48), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        kind_ck,
        _fk_pair("events"),
        _pk("events"),
    )
    _ix("events", "ts_ms")
    _ix("events", "symbol", "id")


def downgrade() -> None:
    for table in (
        "events",
        "balance_snapshots",
        "funding_rates",
        "funding_payments",
        "transfers",
        "fills",
        "orders",
        "intents",
    ):
        op.drop_table(table)
    op.drop_index("uq_pairs_venue_symbol_active", table_name="pairs")
    op.drop_table("pairs")
