"""Execution of targets on both legs of a pair: write-ahead intents, concurrent legs, hedge repair."""

from bot.execution.executor import ExecutionResult, Executor, SimpleTarget

__all__ = ["ExecutionResult", "Executor", "SimpleTarget"]
