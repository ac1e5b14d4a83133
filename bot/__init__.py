"""fundbot: a delta-neutral funding-rate carry bot (long spot, short the USD-M perpetual)."""

__version__ = "0.1.0"
