"""apply-momentum: fold the success memory into the gradient, then take the step (write the new script).

The memory holds accepted hypotheses from every trace of the run (nodes/memory.py); a bounded, ranked selection
of it reaches the prompt, with the recent changes that did not help.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from gome.nodes import memory
from gome.nodes.prompts import APPLY_MOMENTUM, BLEND, CODE_CHARS, ENSEMBLE, STEP_MEANING, clip, time_note
from gome.nodes.runtime import config_of, folder_of, llm, store_of, task_of
from gome.nodes.scripts import announce, save_script, sibling_note, write_change, write_step
from gome.nodes.template import baseline_template, blend_template
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.run.folder import experiment_id


def blend(state: TraceState, runtime: Runtime[GomeContext] | None) -> dict:
    """The late stage's step: a script that blends the chosen candidates' predictions, from a complete template."""
    cfg, gradient, ids = config_of(state), state["gradient"], state["gradient"]["blend"]
    caller = llm(state, runtime, "apply-momentum")
    code, edit = write_step(caller, state, BLEND.format(
        candidates=", ".join(ids), submission_file=task_of(state).submission_file,
        template=blend_template(task_of(state), ids), time=time_note(state)), None, small=False)
    code = code or blend_template(task_of(state), ids)  # no script from the model: its template is known to run
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    pending = save_script(state["run_dir"], exp_id, code, parent=ids[0],
                          plan={"kind": "blend", "gradient": gradient, "edit": edit}, errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "attempt": 0, "usage": caller.usage}


def ensemble(state: TraceState, runtime: Runtime[GomeContext] | None) -> dict:
    """The late stage's first step: the best script's model averaged with extra trees, the way the baseline would
    do it shown as a complete reference."""
    cfg, gradient, best = config_of(state), state["gradient"], state.get("best") or {}
    base_code = folder_of(state).experiment(best["id"]).read_code() if best else None
    template = baseline_template(task_of(state), cfg.repair.debug_rows, ensemble=True)
    caller = llm(state, runtime, "apply-momentum")
    code, edit = write_step(caller, state, ENSEMBLE.format(
        siblings=sibling_note(runtime, state), template=template, time=time_note(state),
        base=f"```python\n{clip(base_code, CODE_CHARS)}\n```" if base_code else "(none)"), None, small=False)
    code = code or template  # no script from the model: its template is known to run
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    pending = save_script(state["run_dir"], exp_id, code, parent=best.get("id"),
                          plan={"kind": "ensemble", "gradient": gradient, "edit": edit}, errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "attempt": 0, "usage": caller.usage}


def apply_momentum(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, gradient, best, last = config_of(state), state["gradient"], state.get("best"), state.get("last") or {}
    if gradient.get("blend"):
        return blend(state, runtime)
    if gradient.get("ensemble"):
        return ensemble(state, runtime)
    run, h = folder_of(state), gradient["hypothesis"]
    momentum = memory.rank(memory.recall(store_of(runtime), state["run_id"]), cfg.memory_top_m)
    avoid = [f for f in state.get("feedback", []) if f.get("verdict") == "refuted" and f["hypothesis"] != h["change"]]
    base_id = best["id"] if best else last.get("id")
    base_code = run.experiment(base_id).read_code() if base_id else None
    base_id = base_id if base_code else None
    base_note = ("the best so far" if best else "the last attempt; it does not work yet") if base_code else "none"
    prompt = APPLY_MOMENTUM.format(
        siblings=sibling_note(runtime, state), base_note=base_note, time=time_note(state),
        base=f"```python\n{clip(base_code, CODE_CHARS)}\n```" if base_code else "(none: write the script from scratch)",
        change=h["change"], component=h["component"], step_size=h["step_size"],
        step_meaning=STEP_MEANING[h["step_size"]], rationale=h.get("rationale") or "-",
        momentum="\n".join(f"- {m['change']} ({m['component']}; accepted {m['times']}x)" for m in momentum)
        or "- none yet",
        avoid="\n".join(f"- {f['hypothesis']}: {f['reason']}" for f in avoid[-4:]) or "- nothing yet")
    caller = llm(state, runtime, "apply-momentum")
    code, edit = write_change(caller, state, prompt, base_code, small=h["step_size"] != "rewrite")
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    plan = {"kind": "update", "gradient": gradient, "momentum": momentum,
            "avoid": [f["hypothesis"] for f in avoid[-4:]], "base": base_id, "edit": edit}
    pending = save_script(state["run_dir"], exp_id, code, parent=base_id, plan=plan, errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "attempt": 0, "usage": caller.usage}
