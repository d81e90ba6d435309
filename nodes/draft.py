"""draft: the first script of a trace, a simple and solid baseline."""

from __future__ import annotations

from langgraph.runtime import Runtime

from gome.nodes.prompts import DRAFT, time_note
from gome.nodes.runtime import config_of, llm, task_of
from gome.nodes.scripts import announce, save_script, sibling_note, write_step
from gome.nodes.template import baseline_template
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.run.folder import experiment_id


def draft(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg = config_of(state)
    caller = llm(state, runtime, "draft")
    code, edit = write_step(caller, state, DRAFT.format(
        siblings=sibling_note(runtime, state), template=baseline_template(task_of(state), cfg.repair.debug_rows),
        time=time_note(state)), None, small=False)
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    pending = save_script(state["run_dir"], exp_id, code, parent=None, plan={"kind": "draft", "edit": edit},
                          errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "attempt": 0, "usage": caller.usage}
