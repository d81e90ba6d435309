"""draft: the first script of a trace, a simple and solid baseline."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.common import baseline_template, config_of, llm, script_rules, system, task_brief, task_of
from gome.nodes.scripts import announce, save_script, sibling_note
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.run.folder import experiment_id

PROMPT = """{brief}

{rules}
{siblings}
Write the first solution: a simple, solid baseline that runs without errors and validates honestly. Prefer a
well-understood model with sensible preprocessing over anything clever. This template already follows every
rule; start from it, change the model or the features if you have a better idea, and keep how it reads the data
and writes val_predictions.csv and the submission:
```python
{template}```"""


def draft(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg = config_of(state)
    caller = llm(state, runtime, "draft")
    code = caller.write_script([system(state), HumanMessage(PROMPT.format(
        brief=task_brief(state), rules=script_rules(state), siblings=sibling_note(runtime, state),
        template=baseline_template(task_of(state))))])
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    pending = save_script(state["run_dir"], exp_id, code, parent=None, plan={"kind": "draft"},
                          errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "usage": caller.usage}
