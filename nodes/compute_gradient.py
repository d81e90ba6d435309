"""compute-gradient: from the diagnosis and the trace's recent feedback, propose scored hypotheses, pick one.

The chosen hypothesis is the gradient: a direction (one focused, testable change) and a step size.
"""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.prompts import CODE_CHARS, COMPUTE_GRADIENT, clip, system
from gome.nodes.runtime import folder_of, llm, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import Gradient, Hypothesis, HypothesisSet


def choose(hypotheses: list[Hypothesis], failed: bool) -> Hypothesis:
    """Highest utility (impact + confidence + novelty - cost); after a failure a fix (minimal step) comes first."""
    pool = [h for h in hypotheses if h.step_size == "minimal"] if failed else []
    return max(pool or hypotheses, key=Hypothesis.utility)


def fallback_gradient(failed: bool) -> Gradient:
    h = (Hypothesis(change="Fix the error shown in the log so the script runs and writes valid outputs",
                    component="training", step_size="minimal", impact=5, confidence=3, novelty=1, cost=1)
         if failed else
         Hypothesis(change="Improve the model: tune its main hyperparameters or try a stronger learner",
                    component="model", step_size="moderate", impact=3, confidence=2, novelty=2, cost=2))
    return Gradient(hypothesis=h, source="fallback")


def compute_gradient(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    task, last, best = task_of(state), state["last"], state.get("best")
    failed = not (last["status"] == "ok" and last.get("submission_valid") and last.get("score") is not None)
    base_id = best["id"] if best else last["id"]
    code = folder_of(state).experiment(base_id).read_code() or "(no script yet)"
    diagnosis = {k: v for k, v in (state.get("diagnosis") or {}).items() if k != "source"}
    feedback = "\n".join(
        f"- step {f['step']}: {f['hypothesis']} -> {f['status']}, score {f['score']}, "
        f"{'accepted' if f['accepted'] else 'rejected'} ({f['reason']})" for f in state.get("feedback", [])) or "none"
    caller = llm(state, runtime, "compute-gradient")
    proposal = caller.decide(HypothesisSet, [system(state), HumanMessage(COMPUTE_GRADIENT.format(
        task_name=task.name, metric=task.metric, direction=task.direction, code=clip(code, CODE_CHARS),
        diagnosis=json.dumps(diagnosis, indent=1), feedback=feedback))])
    if proposal is None:
        gradient = fallback_gradient(failed)
    else:
        chosen = choose(proposal.hypotheses, failed)
        gradient = Gradient(hypothesis=chosen, alternatives=[h.change for h in proposal.hypotheses if h is not chosen])
    return {"gradient": gradient.model_dump(mode="json"), "usage": caller.usage}
