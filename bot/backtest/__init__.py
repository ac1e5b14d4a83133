"""Backtests: the daemon's strategy, execution, treasury and ledger code run on replayed history."""
