"""The ledger's hot statements, built once per dialect and run with bound parameters.

Building a SQLAlchemy statement (coercing every value, generating its cache key) costs as much as
running it on SQLite; the executor writes about twenty of them per two-leg action. These are built
once, with their values supplied at execution time, so each call pays only for running. The SQL is the
same as the per-call form: the same columns, the same ON CONFLICT rules.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain import PairState
from bot.ledger.models import (
    OPEN_INTENT_STATUSES,
    Event,
    Fill,
    Intent,
    Order,
    Pair,
    Transfer,
)

_ORDER_UPDATABLE = ("venue_order_id", "pair_id", "price", "avg_price")


def dialect_insert(dialect: str, table: Table) -> Any:
    """INSERT for this dialect (both have on_conflict_do_nothing / on_conflict_do_update)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


class Statements:
    """Prebuilt statements of one dialect. Parameter names that would clash with a column being set
    start with ``b_``."""

    def __init__(self, dialect: str) -> None:
        pairs, intents, orders = Pair.__table__, Intent.__table__, Order.__table__
        self.active_pair = select(Pair).where(
            Pair.venue == bindparam("venue"), Pair.symbol == bindparam("symbol"), Pair.state != PairState.CLOSED
        )
        self.insert_pair = pairs.insert().returning(*pairs.c)
        self.update_active_pair = (
            update(pairs)
            .where(pairs.c.venue == bindparam("b_venue"), pairs.c.symbol == bindparam("b_symbol"))
            .where(pairs.c.state != PairState.CLOSED)
            .returning(*pairs.c)
        )
        self.pairs_in_states = select(Pair).where(Pair.state.in_(bindparam("states", expanding=True))).order_by(Pair.id)
        self.pairs_in_states_of_venue = self.pairs_in_states.where(Pair.venue == bindparam("venue"))
        self.pair_funding = select(pairs.c.funding_earned).where(pairs.c.id == bindparam("b_id")).with_for_update()
        self.set_pair_funding = update(pairs).where(pairs.c.id == bindparam("b_id"))

        # RETURNING gives the row when it is new; on a known client id it gives nothing (then select it)
        self.insert_intent = dialect_insert(dialect, intents).on_conflict_do_nothing().returning(*intents.c)
        self.intent_by_id = select(Intent).where(Intent.client_id == bindparam("client_id"))
        self.open_intents = select(Intent).where(Intent.status.in_(OPEN_INTENT_STATUSES)).order_by(Intent.id)

        ins = dialect_insert(dialect, orders)
        ex = ins.excluded
        self.upsert_order = ins.on_conflict_do_update(
            index_elements=[orders.c.client_order_id],
            set_={
                **{name: func.coalesce(ex[name], orders.c[name]) for name in _ORDER_UPDATABLE},
                "filled_qty": ex.filled_qty,
                "status": ex.status,
                "updated_ms": ex.updated_ms,
            },
            where=ex.updated_ms >= orders.c.updated_ms,
        ).returning(*orders.c)  # nothing when a newer update is already stored (then select it)
        self.order_by_id = select(Order).where(Order.client_order_id == bindparam("client_order_id"))
        self.client_ids_of_pair = union_all(
            select(orders.c.client_order_id).where(orders.c.pair_id == bindparam("pair_id")),
            select(intents.c.client_id).where(intents.c.pair_id == bindparam("pair_id")),
        )

        fills, transfers, events = Fill.__table__, Transfer.__table__, Event.__table__
        self.insert_fill = dialect_insert(dialect, fills).on_conflict_do_nothing().returning(fills.c.id)
        self.insert_transfer = dialect_insert(dialect, transfers).on_conflict_do_nothing().returning(transfers.c.id)
        self.insert_event = events.insert().returning(events.c.id)
        self.insert_events = events.insert()

    def set_intent(self, count_attempt: bool) -> Any:
        return _progress(Intent.__table__, count_attempt)

    def set_transfer(self, count_attempt: bool) -> Any:
        return _progress(Transfer.__table__, count_attempt)


@cache
def _progress(table: Table, count_attempt: bool) -> Any:
    """UPDATE ``table`` (intents, transfers) by ``b_client_id`` with the values as parameters, one more
    attempt if asked; the same for every dialect, so built once per process."""
    stmt = update(table).where(table.c.client_id == bindparam("b_client_id")).returning(*table.c)
    return stmt.values(attempts=table.c.attempts + 1) if count_attempt else stmt
