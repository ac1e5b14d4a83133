"""Intents may be isolated-margin changes (POST /fapi/v1/positionMargin), written ahead like transfers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "kind IN ('order', 'transfer', 'cancel')"
_NEW = "kind IN ('order', 'transfer', 'cancel', 'margin')"


def _replace(check: str) -> None:
    with op.batch_alter_table("intents") as batch:
        batch.drop_constraint(op.f("ck_intents_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_intents_kind"), check)


def upgrade() -> None:
    _replace(_NEW)


def downgrade() -> None:
    op.execute("DELETE FROM intents WHERE kind = 'margin'")
    _replace(_OLD)
