"""Operator view: tail, status and report read from the ledger; health, metrics and alerts for the daemon."""
