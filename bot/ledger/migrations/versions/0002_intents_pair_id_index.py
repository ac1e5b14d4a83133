"""Index intents by pair: the executor reads a pair's client ids before every action.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Without it that read scans every intent ever written, so a long-running daemon (or a backtest making
thousands of actions) pays more for each action the longer it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_intents_pair_id"), "intents", ["pair_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_intents_pair_id"), table_name="intents")
