"""Pure carry strategies: frozen snapshot in, targets and reason records out. No I/O, no clock."""
