"""execute: run the pending script in the sandbox, then let the harness (not the script) score it."""

from __future__ import annotations

import time
from pathlib import Path

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from gome.nodes.common import config_of, executor, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.files import write_text
from gome.tools.run.experiment import run_and_score
from gome.tools.run.folder import MAX_CODE_BYTES, experiment_dir, read_code, write_json
from gome.tools.sandbox.executor import Limits


def review(pending: dict, folder: Path, state: dict) -> dict:
    """Pause for a person before the script runs: approve it, edit it, or reject it (which costs the step).

    interrupt() re-runs this node from the top on resume, so everything it changes happens after the answer.
    """
    answer = interrupt({"id": pending["id"], "trace": state["trace"], "kind": pending.get("kind"),
                        "approach": pending.get("approach"), "code": read_code(folder / "main.py"),
                        "ask": "approve, edit (give code) or reject this script"}) or {}
    action = answer.get("action", "approve")
    if action == "edit" and isinstance(answer.get("code"), str) and len(answer["code"]) <= MAX_CODE_BYTES:
        write_text(folder / "main.py", answer["code"])
        write_json(folder / "review.json", {"action": "edit"})
    elif action == "reject":
        write_json(folder / "review.json", {"action": "reject"})
        return {**pending, "has_script": False, "llm_error": "rejected by the reviewer"}
    else:
        write_json(folder / "review.json", {"action": "approve"})
    return pending


def execute(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    pending, task, cfg = state["pending"], task_of(state), config_of(state)
    folder = experiment_dir(state["run_dir"], pending["id"])
    if cfg.review and pending.get("has_script"):
        pending = review(pending, folder, state)
    if not pending.get("has_script"):
        last = {"id": pending["id"], "status": "no_script", "runtime_s": 0.0, "score": None, "score_source": None,
                "val_error": None, "submission_valid": False, "detail": pending.get("llm_error") or "no script"}
        write_json(folder / "result.json", last)
        return {"last": last}

    if runtime is not None and runtime.stream_writer is not None:
        runtime.stream_writer({"event": "step_started", "trace": state["trace"], "step": state.get("step", 0) + 1,
                               "budget": state.get("budget"), "id": pending["id"], "intent": pending.get("kind"),
                               "mode": state.get("mode_now")})
    time_left = state.get("deadline", time.time() + cfg.script_timeout_s) - time.time()
    limits = Limits(timeout_s=max(min(cfg.script_timeout_s, time_left), 1.0),
                    max_output_bytes=cfg.max_output_bytes, threads=cfg.threads)
    summary, _ = run_and_score(executor(runtime), folder, state["run_dir"], task, limits,
                               env={"GOME_SEED": str(cfg.seed)})
    last = {"id": pending["id"], **summary}
    write_json(folder / "result.json", last)
    return {"last": last}
