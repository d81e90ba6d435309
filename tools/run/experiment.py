"""Running one experiment's script in the sandbox and scoring what it left: one function, used by execute and by
final selection's re-runs.

The script runs in the experiment's work/ folder, its own; gome asks the executor for the two files it scores
(held-out predictions and the submission), which come back into the experiment folder as regular files under
their caps. Logs are written by gome where the script cannot reach, and the script's folder is emptied.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from gome.state.graph_state import RunSummary
from gome.state.records import Task
from gome.tools.files import copy_file, per_version, remove_tree
from gome.tools.run.folder import ExperimentFolder, RunFolder
from gome.tools.sandbox.executor import Collect, Executor, Limits, RunResult
from gome.tools.sandbox.quota import unmount_stale
from gome.tools.task.metrics import ScoringError, Truth
from gome.tools.task.submission import (
    VAL_PREDICTIONS,
    check_submission,
    output_caps,
    parse_self_reported,
    score_validation,
)

DEBUG_MIN_ROWS = 10  # a debug run's held-out predictions need only be well formed


def load_truth(task: Task) -> Truth:
    """The held-out predictions' answers: train's targets by id, indexed once per version of train."""
    return _truth(Path(task.data_dir) / task.train_file, task.id_column, tuple(task.target_columns))


@per_version(4)
def _truth(path: str, id_column: str, targets: tuple[str, ...]) -> Truth:
    return Truth(pd.read_csv(path), id_column, list(targets))


def clear_run(folder: ExperimentFolder, task: Task) -> None:
    """Forget an earlier attempt's logs, outputs and working folder."""
    folder.clear_outputs((VAL_PREDICTIONS, task.submission_file))
    unmount_stale(folder.work)  # a quota image a killed gome left mounted
    remove_tree(folder.work)


def run_and_score(executor: Executor, folder: ExperimentFolder, task: Task, limits: Limits, env: dict[str, str],
                  *, debug: bool = False, candidates: Path | None = None) -> tuple[RunSummary, RunResult]:
    """Run the folder's main.py with `task.data_dir` as its data, and score it: (summary, the RunResult).

    debug: a first run on a sample (GOME_DEBUG=1): its held-out predictions are checked for their format only,
    and its score, on a few rows, is not kept. candidates: earlier experiments' predictions for a blend."""
    clear_run(folder, task)
    env = {**env, "GOME_DEBUG": "1" if debug else "0"}
    try:
        result = executor.run(folder.main, folder.work, Path(task.data_dir), limits, env=env,
                              collect=Collect(into=folder.path, caps=output_caps(task)), candidates=candidates)
    except Exception as e:  # the sandbox itself failed to start: a recorded outcome, not a crashed run
        result = RunResult(status="error", returncode=None, runtime_s=0.0, stdout="",
                           stderr=f"executor failed: {type(e).__name__}: {e}", detail="the sandbox failed to start")
    finally:
        with contextlib.suppress(OSError):
            remove_tree(folder.work)
    folder.write_logs(result.stdout, result.stderr)

    score, source, val_error = None, None, result.refused.get(VAL_PREDICTIONS)
    if VAL_PREDICTIONS in result.collected:
        try:
            score = score_validation(task, folder.output(VAL_PREDICTIONS), load_truth(task),
                                     min_rows=DEBUG_MIN_ROWS if debug else None)
            score, source = (None, None) if debug else (score, "harness")
        except ScoringError as e:
            val_error = str(e)
    elif val_error is None:
        val_error = f"{VAL_PREDICTIONS} was not written"
    wrote_predictions = VAL_PREDICTIONS in result.collected or VAL_PREDICTIONS in result.refused
    if score is None and result.ok and not wrote_predictions and not debug:  # stands in only for a missing file
        score = parse_self_reported(result.stdout)
        source = "self_reported" if score is not None else None

    sub_error = result.refused.get(task.submission_file)
    if sub_error is None:
        try:
            check_submission(task, folder.output(task.submission_file))
        except ScoringError as e:
            sub_error = str(e)
    summary = RunSummary(id=folder.id, status=result.status, runtime_s=result.runtime_s, score=score,
                         score_source=source, val_error=val_error, submission_valid=sub_error is None,
                         submission_error=sub_error, detail=result.detail, returncode=result.returncode,
                         left=result.artifacts[:50])
    if result.node:
        summary["node"] = result.node
    return summary, result


def run_probe(executor: Executor, folder: ExperimentFolder, code: str, timeout_s: float = 120.0) -> str:
    """Run one of gome's own small scripts in the sandbox (what can be imported there) and return its stdout
    ("" when it could not run: the caller goes on without an answer). It is given no data (an empty folder)."""
    try:
        folder.fresh().write_code(code)
        (folder.path / "data").mkdir()
        result = executor.run(folder.main, folder.work, folder.path / "data", Limits(timeout_s=timeout_s), env={})
    except Exception:  # the sandbox failed to start: the probe has no answer, and the caller goes on without one
        return ""
    finally:
        with contextlib.suppress(OSError):
            remove_tree(folder.work)
    return result.stdout


def stage_candidates(run: RunFolder, folder: ExperimentFolder, task: Task, ids: list[str], seed: int | None = None
                 ) -> str | None:
    """Copies of the blended experiments' predictions (of their re-run with `seed`, for a re-run of the blend: a
    blend of fixed predictions would look equally good on every seed), for the script to read, read-only, as its
    candidates. Returns what is missing, or None."""
    caps = output_caps(task)
    remove_tree(folder.candidates)
    for exp_id in ids:
        src, dest = run.experiment(exp_id) if seed is None else run.rerun(exp_id, seed), folder.candidates / exp_id
        dest.mkdir(parents=True, exist_ok=True)
        for name in (VAL_PREDICTIONS, task.submission_file):
            try:
                copy_file(src.output(name), dest / name, caps[name])
            except OSError as e:
                return f"candidate {exp_id} has no usable {name} ({e.strerror or e})"
    return None
