"""The trace subgraph: one worker of the optimizer, looping until its budget is spent.

START -> draft -> execute -+-> repair -> execute        (a failed attempt, while repairs remain: same step)
                            +-> diagnose -> checkpoint -+-> compute-gradient -> apply-momentum -> execute
                                                        +-> expand -> execute      (tree search)
                                                        +-> END
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from gome.graph.routing import STEP, route_after_checkpoint, route_after_execute, route_after_repair
from gome.nodes.apply_momentum import apply_momentum
from gome.nodes.checkpoint import checkpoint
from gome.nodes.compute_gradient import compute_gradient
from gome.nodes.diagnose import diagnose
from gome.nodes.draft import draft
from gome.nodes.execute import execute
from gome.nodes.expand import expand
from gome.nodes.repair import repair
from gome.nodes.runtime import located
from gome.state.context import GomeContext
from gome.state.graph_state import TraceOutput, TraceState

NODES_PER_STEP = 5  # execute, diagnose, checkpoint, compute-gradient, apply-momentum
NODES_PER_REPAIR = 2  # repair, execute


def build_trace_graph():
    g = StateGraph(TraceState, context_schema=GomeContext, output_schema=TraceOutput)
    g.add_node("draft", located(draft))
    g.add_node("execute", located(execute))
    g.add_node("diagnose", located(diagnose))
    g.add_node("checkpoint", located(checkpoint))
    g.add_node("compute-gradient", located(compute_gradient))
    g.add_node("apply-momentum", located(apply_momentum))
    g.add_node("expand", located(expand))
    g.add_node("repair", located(repair))
    g.add_edge(START, "draft")
    g.add_edge("draft", "execute")
    g.add_conditional_edges("execute", route_after_execute, ["repair", "diagnose"])
    g.add_conditional_edges("repair", route_after_repair, ["execute", "diagnose"])
    g.add_edge("diagnose", "checkpoint")
    g.add_conditional_edges("checkpoint", route_after_checkpoint, [*STEP.values(), END])
    g.add_edge("compute-gradient", "apply-momentum")
    g.add_edge("apply-momentum", "execute")
    g.add_edge("expand", "execute")
    return g.compile(name="trace")
