"""Routing after checkpoint: one function of state alone, so it can be unit-tested without a graph."""

from __future__ import annotations

import time

from langgraph.graph import END

STEP = {"gradient": "compute-gradient"}  # tree search adds "expand" here


def stop_reason(state: dict, now: float | None = None) -> str | None:
    """Why this trace must stop now, or None: its step budget is spent, or the run's wall clock is."""
    if state.get("step", 0) >= state.get("budget", 0):
        return "steps"
    if (now if now is not None else time.time()) >= state.get("deadline", float("inf")):
        return "time"
    return None


def route_after_checkpoint(state: dict) -> str:
    """Next node for a trace: the mode's next step, or END once a budget is spent."""
    if state.get("stop_reason"):
        return END
    mode = state["config"].get("mode", "gradient")
    if mode not in STEP:
        raise ValueError(f"unknown mode {mode!r}; known: {sorted(STEP)}")
    return STEP[mode]
