"""The trace's conditional edges, functions of state alone (unit-tested without a graph).

After execute: repair a failed attempt (same step) or judge it. After checkpoint: the step of the mode the trace
is in, or the end. The policy that decides lives in nodes/policy.py; checkpoint records its answers.
"""

from __future__ import annotations

from langgraph.graph import END

from gome.nodes.policy import should_repair

STEP = {"gradient": "compute-gradient", "tree": "expand"}


def route_after_checkpoint(state: dict) -> str:
    """Next node for a trace: the step of the mode checkpoint chose, or END once a budget is spent."""
    if state.get("stop_reason"):
        return END
    mode = state.get("mode_now") or state["config"].get("mode", "gradient")
    if mode not in STEP:
        raise ValueError(f"unknown step mode {mode!r}; known: {sorted(STEP)}")
    return STEP[mode]


def route_after_execute(state: dict) -> str:
    return "repair" if should_repair(state) else "diagnose"


def route_after_repair(state: dict) -> str:
    """A repair that produced no script leaves the failed attempt to be judged as it is."""
    return "diagnose" if (state.get("last") or {}).get("repair_error") else "execute"
