"""Running one experiment's script in the sandbox and scoring what it left: one function, used by execute and by
final selection's re-runs.

The script runs in `<folder>/work`, its own folder; gome asks the executor for the two files it scores
(held-out predictions and the submission), which come back into `<folder>` as regular files under their caps.
Logs are written by gome into `<folder>`, where the script cannot reach, and the script's folder is emptied.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import pandas as pd

from gome.state.records import Task
from gome.tools.files import remove_tree, write_text
from gome.tools.run.folder import input_dir, work_dir
from gome.tools.sandbox.executor import Collect, Executor, Limits, RunResult
from gome.tools.sandbox.quota import unmount_stale
from gome.tools.task.metrics import ScoringError
from gome.tools.task.submission import (
    VAL_PREDICTIONS,
    check_submission,
    output_caps,
    parse_self_reported,
    score_validation,
)

LOGS = ("stdout.txt", "stderr.txt")


@functools.lru_cache(maxsize=4)
def _train_frame(path: str, mtime: float) -> pd.DataFrame:  # mtime in the key: a changed file is re-read
    return pd.read_csv(path)


def load_train(data_dir: str | Path, train_file: str) -> pd.DataFrame:
    path = Path(data_dir) / train_file
    return _train_frame(str(path), path.stat().st_mtime)


def clear_outputs(folder: Path, task: Task) -> None:
    """Forget what an earlier, interrupted run of this experiment left (a node re-run after a crash)."""
    for name in (*LOGS, VAL_PREDICTIONS, task.submission_file):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    unmount_stale(work_dir(folder))
    remove_tree(work_dir(folder))


def run_and_score(executor: Executor, folder: Path, run_dir: str | Path, task: Task, limits: Limits,
                  env: dict[str, str]) -> tuple[dict, RunResult]:
    """Run `<folder>/main.py` and score it; returns (summary for state and result.json, the RunResult)."""
    clear_outputs(folder, task)
    data = input_dir(run_dir)
    task = task.model_copy(update={"data_dir": str(data)})  # the run's own copy, wherever the task folder went
    try:
        result = executor.run(folder / "main.py", work_dir(folder), data, limits, env=env,
                              collect=Collect(into=folder, caps=output_caps(task)))
    except Exception as e:  # the sandbox itself failed to start: a recorded outcome, not a crashed run
        result = RunResult(status="error", returncode=None, runtime_s=0.0, stdout="",
                           stderr=f"executor failed: {type(e).__name__}: {e}", detail="the sandbox failed to start")
    finally:
        with contextlib.suppress(OSError):
            remove_tree(work_dir(folder))
    write_text(folder / "stdout.txt", result.stdout)
    write_text(folder / "stderr.txt", result.stderr)

    score, source, val_error = None, None, result.refused.get(VAL_PREDICTIONS)
    if VAL_PREDICTIONS in result.collected:
        try:
            score = score_validation(task, folder / VAL_PREDICTIONS, load_train(data, task.train_file))
            source = "harness"
        except ScoringError as e:
            val_error = str(e)
    elif val_error is None:
        val_error = f"{VAL_PREDICTIONS} was not written"
    if score is None and result.ok:
        score = parse_self_reported(result.stdout)
        source = "self_reported" if score is not None else None

    sub_error = result.refused.get(task.submission_file)
    if sub_error is None:
        try:
            check_submission(task, folder / task.submission_file)
        except ScoringError as e:
            sub_error = str(e)
    summary = {"status": result.status, "runtime_s": result.runtime_s, "score": score, "score_source": source,
               "val_error": val_error, "submission_valid": sub_error is None, "submission_error": sub_error,
               "detail": result.detail, "returncode": result.returncode, "left": result.artifacts[:50]}
    return summary, result
