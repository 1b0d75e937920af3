"""The engine: the pure run state machine and the orchestrator that drives it."""
