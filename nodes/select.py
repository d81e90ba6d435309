"""select: pick the candidate to submit from every trace's best.

With one evaluation per candidate this is the best harness score; re-running the top few on other seeds and
splits (so the robust candidate wins, not the lucky one) arrives with parallel traces.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.tools.metrics import beats


def select(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    direction = state["task"]["direction"]
    chosen = None
    for result in state.get("trace_results", []):
        best = result.get("best")
        if best and best.get("submission_valid") and beats(best, chosen, direction):
            chosen = best
    return {"selected": chosen}
