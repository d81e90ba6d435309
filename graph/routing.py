"""Routing after checkpoint, a function of state alone (unit-tested without a graph): the step of the mode the
trace is in, or the end. The policy that decides both lives in nodes/policy.py; checkpoint records its answers.
"""

from __future__ import annotations

from langgraph.graph import END

STEP = {"gradient": "compute-gradient", "tree": "expand"}


def route_after_checkpoint(state: dict) -> str:
    """Next node for a trace: the step of the mode checkpoint chose, or END once a budget is spent."""
    if state.get("stop_reason"):
        return END
    mode = state.get("mode_now") or state["config"].get("mode", "gradient")
    if mode not in STEP:
        raise ValueError(f"unknown step mode {mode!r}; known: {sorted(STEP)}")
    return STEP[mode]
