"""Runtime services the daemon runs (alerts, health and metrics, notifications); never imports bot.ops."""
