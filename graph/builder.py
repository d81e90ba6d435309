"""The gome graph: START -> prepare --Send x K--> trace -> select -> finalize -> END.

`graph` (no checkpointer or store of its own) is what langgraph.json exports; the LangGraph server supplies
persistence. The CLI compiles its own with SQLite in the run folder.
"""

from __future__ import annotations

import math

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from gome.graph.trace import NODES_PER_REPAIR, NODES_PER_STEP, build_trace_graph
from gome.nodes.finalize import finalize
from gome.nodes.prepare import prepare
from gome.nodes.runtime import located
from gome.nodes.select import select
from gome.state.context import GomeContext
from gome.state.graph_state import GomeInput, GomeOutput, GomeState
from gome.state.records import RunConfig


def fan_out(state: GomeState) -> list[Send]:
    """One Send per trace; each carries its own share of the step budget."""
    cfg = RunConfig.model_validate(state["config"])
    shared = {k: state[k] for k in ("run_dir", "run_id", "task", "config", "deadline")}
    shared["challenges"] = state.get("challenges") or []
    start = {"step": 0, "mode_now": cfg.start_mode(), "mode_steps": 0, "since_improvement": 0}
    return [Send("trace", {**shared, **start, "trace": i, "budget": cfg.steps_for_trace(i)}) for i in range(cfg.traces)]


def recursion_limit(config: RunConfig) -> int:
    """Enough supersteps for every step of the longest trace (with every repair) plus the fixed nodes."""
    per_step = NODES_PER_STEP + NODES_PER_REPAIR * config.repair.rounds
    return per_step * math.ceil(config.steps / config.traces) + 20


def build_graph(checkpointer=None, store=None):
    g = StateGraph(GomeState, context_schema=GomeContext, input_schema=GomeInput, output_schema=GomeOutput)
    g.add_node("prepare", prepare)
    g.add_node("trace", build_trace_graph())
    g.add_node("select", located(select))
    g.add_node("finalize", located(finalize))
    g.add_edge(START, "prepare")
    g.add_conditional_edges("prepare", fan_out, ["trace"])
    g.add_edge("trace", "select")
    g.add_edge("select", "finalize")
    g.add_edge("finalize", END)
    return g.compile(checkpointer=checkpointer, store=store, name="gome")


# Apps that invoke `graph` directly get a limit no budget the config allows can reach (LangGraph's own default, 25,
# ends a run after a few steps); the budget ends the run, not the limit. The server's own default is 10011.
GENEROUS_LIMIT = recursion_limit(RunConfig(steps=10_000, repair={"rounds": 10}))
graph = build_graph().with_config(recursion_limit=GENEROUS_LIMIT)
