"""Events may be rate limits met at the venue (``rate_limit``) and ledger write outages (``ledger_outage``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "'decision', 'order', 'fill', 'transfer', 'funding', 'alert', 'info', 'error', 'reconcile'"
_OLD = f"kind IN ({_KINDS})"
_NEW = f"kind IN ({_KINDS}, 'rate_limit', 'ledger_outage')"


def _replace(check: str) -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint(op.f("ck_events_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_events_kind"), check)


def upgrade() -> None:
    _replace(_NEW)


def downgrade() -> None:
    op.execute("DELETE FROM events WHERE kind IN ('rate_limit', 'ledger_outage')")
    _replace(_OLD)
