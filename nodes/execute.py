"""execute: run the pending script in the sandbox, then let the harness (not the script) score it."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pandas as pd
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from gome.nodes.common import config_of, executor, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.executor import Limits, RunResult
from gome.tools.metrics import ScoringError
from gome.tools.run_folder import experiment_dir, write_json
from gome.tools.submission import VAL_PREDICTIONS, check_submission, parse_self_reported, score_validation


@functools.lru_cache(maxsize=4)
def _train_frame(path: str, mtime: float) -> pd.DataFrame:  # mtime in the key: a changed file is re-read
    return pd.read_csv(path)


def load_train(data_dir: str, train_file: str) -> pd.DataFrame:
    path = Path(data_dir) / train_file
    return _train_frame(str(path), path.stat().st_mtime)


def review(pending: dict, folder: Path, state: dict) -> dict:
    """Pause for a person before the script runs: approve it, edit it, or reject it (which costs the step).

    interrupt() re-runs this node from the top on resume, so everything it changes happens after the answer.
    """
    answer = interrupt({"id": pending["id"], "trace": state["trace"], "kind": pending.get("kind"),
                        "approach": pending.get("approach"), "code": (folder / "main.py").read_text(),
                        "ask": "approve, edit (give code) or reject this script"}) or {}
    action = answer.get("action", "approve")
    if action == "edit" and answer.get("code"):
        (folder / "main.py").write_text(answer["code"])
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
    input_dir = Path(state["run_dir"]) / "input"
    try:
        result = executor(runtime).run(folder / "main.py", folder, input_dir, limits,
                                       env={"GOME_SEED": str(cfg.seed)})
    except Exception as e:  # the sandbox itself failed to start: a recorded outcome, not a crashed run
        result = RunResult(status="error", returncode=None, runtime_s=0.0, stdout="",
                           stderr=f"executor failed: {type(e).__name__}: {e}", detail="the sandbox failed to start")
    (folder / "stdout.txt").write_text(result.stdout)
    (folder / "stderr.txt").write_text(result.stderr)

    score, source, val_error = None, None, None
    if (folder / VAL_PREDICTIONS).exists() or (folder / VAL_PREDICTIONS).is_symlink():
        try:
            score = score_validation(task, folder / VAL_PREDICTIONS, load_train(str(input_dir), task.train_file))
            source = "harness"
        except ScoringError as e:
            val_error = str(e)
    else:
        val_error = f"{VAL_PREDICTIONS} was not written"
    if score is None and result.ok:
        score = parse_self_reported(result.stdout)
        source = "self_reported" if score is not None else None

    sub_error = None
    try:
        check_submission(task, folder / task.submission_file)
    except ScoringError as e:
        sub_error = str(e)
    last = {"id": pending["id"], "status": result.status, "runtime_s": result.runtime_s, "score": score,
            "score_source": source, "val_error": val_error, "submission_valid": sub_error is None,
            "submission_error": sub_error, "detail": result.detail, "returncode": result.returncode}
    write_json(folder / "result.json", last)
    return {"last": last}
