"""Deterministic Binance-like exchange simulation: clock, market data, matching, margin, funding."""
