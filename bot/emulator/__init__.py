"""A Binance-compatible HTTP + WebSocket emulator over the simulation core.

The real, unmodified ccxt talks to it over loopback (see docs/ccxt-binance.md).
Entry points: ``run_emulator`` (in-process), ``start_emulator_subprocess`` and ``fundbot emulator``.
"""
