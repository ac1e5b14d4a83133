"""Operator controls as state: close-only, capital limit, per-symbol pause, per-pair exit requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Before this the close-only switch was only an info event, and the engine looked for it among the newest
500 info events: enough later events and a restarted daemon read it as off. A ledger whose newest
switch said "on" keeps it on here (carried over as an active row), so upgrading never resumes entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.ledger.types import Money

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("close_only", "capital_limit", "pause", "exit")
STATUSES = ("active", "done", "cleared")


def _one_of(column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_controls_{column}"))


def upgrade() -> None:
    controls = op.create_table(
        "controls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(48), nullable=False),
        sa.Column("pair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", Money(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        _one_of("kind", KINDS),
        _one_of("status", STATUSES),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_controls_pair_id_pairs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controls")),
    )
    # At most one active row per control and symbol.
    op.create_index(
        "uq_controls_kind_symbol_active",
        "controls",
        ["kind", "symbol"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    _carry_over_close_only(controls)


def _carry_over_close_only(controls: sa.Table) -> None:
    """The newest ``fundbot control close-only`` event of an older ledger becomes the switch's state."""
    events = sa.table(
        "events",
        sa.column("id", sa.BigInteger()),
        sa.column("ts_ms", sa.BigInteger()),
        sa.column("kind", sa.String()),
        sa.column("message", sa.Text()),
        sa.column("details", sa.JSON()),
    )
    newest = (
        op.get_bind()
        .execute(
            sa.select(events.c.id, events.c.ts_ms, events.c.details)
            .where(events.c.kind == "info", events.c.message.like("operator set close-only %"))
            .order_by(events.c.id.desc())
            .limit(1)
        )
        .one_or_none()
    )
    if newest is None or not isinstance(newest.details, dict) or newest.details.get("control") != "close_only":
        return
    if newest.details.get("value") is not True:
        return
    op.get_bind().execute(
        controls.insert().values(
            kind="close_only",
            symbol="*",
            status="active",
            source="migration 0003",
            note=f"carried over from event #{newest.id}",
            created_ms=newest.ts_ms,
            updated_ms=newest.ts_ms,
        )
    )


def downgrade() -> None:
    op.drop_index("uq_controls_kind_symbol_active", table_name="controls")
    op.drop_table("controls")
