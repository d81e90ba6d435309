"""`gome eval`: run gome on tasks x modes x seeds x models, grade each run like MLE-bench, and aggregate.

Each cell (model, task, mode, seed) lives in its own folder, <out>/cells/<model>/<task>/<mode>/seed-<k>/, holding
the gome run folder and, once graded, cell.json. An eval that is stopped and started again skips graded cells,
resumes runs that were cut off, and starts the rest: no finished work is redone.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gome.evals.aggregate import write_results
from gome.evals.grader import grade_report
from gome.graph.run import resume_gome, run_gome
from gome.state.journal import beats
from gome.state.records import ModelSpec, RunConfig
from gome.tools.llm.local_model import LocalModelError
from gome.tools.llm.models import ModelConfigError, make_chat_model
from gome.tools.report.progress import Progress
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


def _build(model: str, chat_models: dict[str, object] | None):
    try:
        return model_for(model, chat_models)
    except (ModelConfigError, LocalModelError) as e:
        raise ValueError(f"{model}: the runs cannot start: {e}") from None


def run_eval(suite: Path, out: Path, *, tasks: list[str], modes: list[str], seeds: list[int], models: list[str],
             config: RunConfig, chat_models: dict[str, object] | None = None, executor=None,
             on_event: Callable[[dict], None] | None = None, log: Callable[[str], None] = print,
             ray: bool = False, ray_address: str | None = None) -> list[dict]:
    """Every cell of tasks x modes x seeds x models, then results.md / results.csv / plots in `out`. A model that
    cannot be built, or a task that cannot load, stops the eval before any cell runs (ValueError). ray: the cells
    are Ray tasks on the cluster at `ray_address` (see gome.evals.ray_cells), each building its model there."""
    out.mkdir(parents=True, exist_ok=True)
    task_dirs = {t: suite / t for t in tasks}
    for d in task_dirs.values():
        load_task(d)  # fail early, naming the task, rather than after hours of other cells
        _suite_meta(d)
    write_json(out / "eval.json", {"suite": str(suite), "tasks": tasks, "modes": modes, "seeds": seeds,
                                   "models": models, "config": config.model_dump(mode="json")})
    if ray:
        from gome.evals.ray_cells import run_cells_on_ray

        if chat_models:
            raise ValueError("with Ray each node builds its chat model from the model's name: give a name "
                             "(provider:name, local, or python:module:factory for your own), not an object")
        for model in models:  # an API model is checked here; the local model's server starts on each node
            if model != "local":
                _build(model, None)
        cells = [Cell(m, t, mode, s) for m in models for t in tasks for mode in modes for s in seeds]
        return run_cells_on_ray(cells, out, task_dirs, config, address=ray_address, log=log)
    results = []
    for model in models:
        chat = _build(model, chat_models)
        for cell in (Cell(model, t, m, s) for t in tasks for m in modes for s in seeds):
            results.append(run_cell(cell, out, task_dirs[cell.task], config, chat_model=chat, executor=executor,
                                    on_event=on_event, log=log))
            write_results(out, results)
    return results


def main(args) -> int:
    suite = Path(args.suite)
    if not suite.is_dir():
        print(f"gome: no suite at {suite}: build it with `gome tasks build --out {suite}`", file=sys.stderr)
        return 2
    tasks = args.tasks or sorted(p.parent.name for p in suite.glob("*/suite.json"))
    if not tasks:
        print(f"gome: {suite} holds no built task", file=sys.stderr)
        return 2
    config = RunConfig(steps=args.steps, time_s=args.time, traces=args.traces, select={"reruns": args.reruns})
    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    try:
        with Progress(as_json=args.json) as progress:
            results = run_eval(suite, Path(args.out), tasks=tasks, modes=args.modes, seeds=args.seeds,
                               models=args.models, config=config, on_event=progress, log=log, ray=args.ray,
                               ray_address=args.ray_address)
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # incl. model, sandbox, Ray and task errors
        print(f"gome: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gome: eval interrupted; run the same command again to go on from {args.out}", file=sys.stderr)
        return 130
    print(json.dumps({"cells": len(results), "results": str(Path(args.out) / "results.md")}))
    return 0
