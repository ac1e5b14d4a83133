"""Orphan positions: a venue position the ledger does not explain blocks entries until adopted or closed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Controls gain the block reconciliation puts on such a symbol (``orphan``) and the operator's two answers
to it (``adopt``, ``close_orphan``: requests the daemon carries out). A pair adopted from the venue's legs
keeps the legs it was adopted with (``adopted_spot_qty``, ``adopted_perp_qty``): no fill of ours made
them, so they are the base its recorded fills add to when reconciliation explains its legs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.ledger.types import Money

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("close_only", "capital_limit", "pause", "exit")
_NEW = (*_OLD, "orphan", "adopt", "close_orphan")


def _kinds(kinds: Sequence[str]) -> None:
    allowed = ", ".join(f"'{k}'" for k in kinds)
    with op.batch_alter_table("controls") as batch:
        batch.drop_constraint(op.f("ck_controls_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_controls_kind"), f"kind IN ({allowed})")


def upgrade() -> None:
    _kinds(_NEW)
    with op.batch_alter_table("pairs") as batch:
        batch.add_column(sa.Column("adopted_spot_qty", Money(), nullable=True))
        batch.add_column(sa.Column("adopted_perp_qty", Money(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM controls WHERE kind IN ('orphan', 'adopt', 'close_orphan')")
    _kinds(_OLD)
    with op.batch_alter_table("pairs") as batch:
        batch.drop_column("adopted_perp_qty")
        batch.drop_column("adopted_spot_qty")
