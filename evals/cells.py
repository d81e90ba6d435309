"""One cell of `gome eval`: (model, task, mode, seed), run (or resumed, or just graded) in its own folder,
<out>/cells/<model>/<task>/<mode>/seed-<k>/, holding the gome run folder and, once graded, cell.json. Used by the
eval here (gome.evals.runner) and on a Ray cluster's nodes (gome.evals.ray_cells).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gome.evals.grader import grade_report
from gome.graph.run import resume_gome, run_gome
from gome.state.journal import beats
from gome.state.records import ModelSpec, RunConfig
from gome.tools.llm.models import make_chat_model
from gome.tools.run.folder import RunFolder, RunFolderError, read_json, write_json
from gome.tools.sandbox import make_executor
from gome.tools.task.loading import load_task

FINAL = ("succeeded", "no_valid_submission")  # run.json statuses of a run that ended by itself


@dataclass(frozen=True)
class Cell:
    model: str
    task: str
    mode: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / "cells" / slug(self.model) / self.task / self.mode / f"seed-{self.seed}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "default"


def normalized(score: float | None, trivial: float, gold: float) -> float:
    """0 = the trivial baseline (or no valid submission), 1 = the gold threshold; worse than trivial is 0."""
    if score is None or gold == trivial:
        return 0.0
    return max(0.0, (score - trivial) / (gold - trivial))


def _suite_meta(task_dir: Path) -> dict:
    meta = read_json(task_dir / "suite.json")
    if not meta or "trivial_score" not in meta:
        raise FileNotFoundError(f"{task_dir}/suite.json with a trivial_score is missing: build the task with "
                                f"`gome tasks build`")
    if not (task_dir / "leaderboard.csv").is_file():
        raise FileNotFoundError(f"{task_dir}/leaderboard.csv is missing: build the task with its leaderboard")
    return meta


def score_curve(run_dir: Path, task_dir: Path, trivial: float, report: dict) -> list[tuple[float, float]]:
    """(seconds since the run started, normalized test score of the best experiment so far by validation) at
    every experiment that moved the best: what the run would have handed back had it stopped then."""
    task, run = load_task(task_dir), RunFolder(run_dir)
    start = run.read("run", {}).get("started_at")
    best, curve = None, []
    for exp in sorted((e for e in run.journal().working if not e.vetoed), key=lambda e: e.finished_at):
        if best is None or beats(exp, best, task.direction):
            best = exp
            graded = grade_report(task_dir, run.experiment(exp.id).output(task.submission_file))
            at = exp.finished_at - (start or exp.finished_at)
            curve.append((round(at, 1), normalized(graded["score"], trivial, report["gold_threshold"])))
    return curve


def grade_cell(cell: Cell, folder: Path, task_dir: Path, wall_s: float, error: str | None, keep: bool = True) -> dict:
    """The cell's record, graded from what its run made; kept as cell.json (a later eval skips the cell) unless
    `keep` is false (a cell lost to the cluster: a later eval runs it again)."""
    runs = sorted(folder.glob("*/run.json"))
    run_dir = runs[-1].parent if runs else None
    submission = RunFolder(run_dir).best / "submission.csv" if run_dir else folder / "none.csv"
    report = grade_report(task_dir, submission, competition_id=cell.task)
    meta = _suite_meta(task_dir)
    run = RunFolder(run_dir).read("run", {}) if run_dir else {}
    usage = run.get("usage") or {}
    result = {**cell.__dict__, **report, "trivial_score": meta["trivial_score"],
              "normalized_score": normalized(report["score"], meta["trivial_score"], report["gold_threshold"]),
              "run_status": run.get("status"), "error": error, "wall_s": round(wall_s, 1),
              "steps": len(run.get("steps") or []), "tokens": usage.get("total_tokens"),
              "run_dir": str(run_dir) if run_dir else None,
              "curve": score_curve(run_dir, task_dir, meta["trivial_score"], report) if run_dir else []}
    if keep:
        write_json(folder / "cell.json", result)
    return result


def model_for(name: str, chat_models: dict[str, object] | None):
    """The chat model of a cell: one given by the caller, else built from its name (a local server is shared)."""
    given = (chat_models or {}).get(name)
    return given if given is not None else make_chat_model(ModelSpec(model=name))


def run_cell(cell: Cell, out: Path, task_dir: Path, config: RunConfig, *, chat_model, executor=None,
             on_event: Callable[[dict], None] | None = None, log: Callable[[str], None] = print) -> dict:
    """Run (or resume, or just grade) one cell and return its graded record. A run that crashes is graded as it
    stands (its run.json says crashed); a pause for review or an interrupt is not a result."""
    folder = cell.folder(out)
    done = read_json(folder / "cell.json")
    if done:
        return done
    folder.mkdir(parents=True, exist_ok=True)
    runs = sorted(folder.glob("*/run.json"))
    status = RunFolder(runs[-1].parent).read("run", {}).get("status") if runs else None
    started, error, final = time.time(), None, {}
    spent = (read_json(folder / "wall.json", {}) or {}).get("wall_s", 0.0)  # time of earlier, cut-off attempts
    executor = executor or make_executor("local", slots=config.traces)
    try:
        if status in FINAL:
            log(f"eval: grading finished run {runs[-1].parent}")
        elif runs:
            log(f"eval: resuming {runs[-1].parent}")
            final = resume_gome(runs[-1].parent, chat_model=chat_model, executor=executor, on_event=on_event)
        else:
            log(f"eval: {cell.model} {cell.task} {cell.mode} seed {cell.seed}")
            cfg = config.model_copy(update={"mode": cell.mode, "seed": cell.seed})
            final = run_gome(task_dir, cfg, out=folder, chat_model=chat_model, executor=executor,
                             on_event=on_event)
    except KeyboardInterrupt:
        write_json(folder / "wall.json", {"wall_s": spent + time.time() - started})
        raise
    except RunFolderError:
        raise
    except Exception as e:  # the run crashed after it started: its run folder says so; grade what it made
        error = f"{type(e).__name__}: {e}"[:500]
        log(f"eval: the run crashed ({error})")
    wall = spent + time.time() - started
    if final.get("status") == "paused":
        write_json(folder / "wall.json", {"wall_s": wall})
        raise RuntimeError(f"{folder}: the run paused for review")
    return grade_cell(cell, folder, task_dir, wall, error)
