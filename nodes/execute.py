"""execute: run the pending script in the sandbox, then let the harness (not the script) score it."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from gome.nodes.runtime import config_of, emit, executor, folder_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import PendingScript, RunSummary, TraceState
from gome.tools.run.experiment import run_and_score
from gome.tools.run.folder import MAX_CODE_BYTES, ExperimentFolder
from gome.tools.sandbox.executor import Limits


def review(pending: PendingScript, folder: ExperimentFolder, state: dict) -> PendingScript:
    """Pause for a person before the script runs: approve it, edit it, or reject it (which costs the step).

    interrupt() re-runs this node from the top on resume, so everything it changes happens after the answer.
    """
    answer = interrupt({"id": pending["id"], "trace": state["trace"], "kind": pending.get("kind"),
                        "approach": pending.get("approach"), "code": folder.read_code(),
                        "ask": "approve, edit (give code) or reject this script"}) or {}
    action = answer.get("action", "approve")
    if action == "edit" and isinstance(answer.get("code"), str) and len(answer["code"]) <= MAX_CODE_BYTES:
        folder.write_code(answer["code"])
        folder.write("review", {"action": "edit"})
    elif action == "reject":
        folder.write("review", {"action": "reject"})
        return {**pending, "has_script": False, "llm_error": "rejected by the reviewer"}
    else:
        folder.write("review", {"action": "approve"})
    return pending


def execute(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    pending, task, cfg = state["pending"], task_of(state), config_of(state)
    folder = folder_of(state).experiment(pending["id"])
    if cfg.review and pending.get("has_script"):
        pending = review(pending, folder, state)
    if not pending.get("has_script"):
        last = RunSummary(id=pending["id"], status="no_script", runtime_s=0.0, score=None, score_source=None,
                          val_error=None, submission_valid=False, detail=pending.get("llm_error") or "no script")
        folder.write("result", last)
        return {"last": last}

    emit(runtime, {"event": "step_started", "trace": state["trace"], "step": state.get("step", 0) + 1,
                   "budget": state.get("budget"), "id": pending["id"], "intent": pending.get("kind"),
                   "mode": state.get("mode_now")})
    limits = Limits.of(cfg, state.get("deadline", time.time() + cfg.script_timeout_s) - time.time())
    last, _ = run_and_score(executor(runtime), folder, task, limits, env={"GOME_SEED": str(cfg.seed)})
    folder.write("result", last)
    return {"last": last}
