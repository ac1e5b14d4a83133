"""Parameter sweeps and walk-forward validation of the backtest (``fundbot sweep``)."""
