"""The ledger: every fill, transfer, funding payment, intent and operator event, in SQLite or Postgres.

Use ``await Ledger.open(url, migrate=True)`` (``bot.ledger.repository``); the schema is in
``bot.ledger.models`` and its migrations in ``bot/ledger/migrations`` (``migrations/`` at the repo root).
"""

from bot.ledger.repository import AssetBalance, Ledger

__all__ = ["AssetBalance", "Ledger"]
