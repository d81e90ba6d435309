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
from gome.tools.run.folder import read_json, write_json
from gome.tools.task.loading import load_task
from gome.tools.task.metrics import beats

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
    task = load_task(task_dir)
    run = read_json(run_dir / "run.json", {}) or {}
    start = run.get("started_at")
    records = [r for r in (read_json(p) for p in (run_dir / "experiments").glob("*/metrics.json")) if r]
    best, curve = None, []
    for rec in sorted(records, key=lambda r: r.get("finished_at") or 0):
        sub = run_dir / "experiments" / rec["id"] / task.submission_file
        if not rec.get("submission_valid") or rec.get("score") is None or not sub.is_file():
            continue
        if best is None or beats(rec, best, task.direction):
            best = rec
            graded = grade_report(task_dir, sub)
            at = (rec.get("finished_at") or 0) - (start or rec.get("finished_at") or 0)
            curve.append((round(at, 1), normalized(graded["score"], trivial, report["gold_threshold"])))
    return curve


def grade_cell(cell: Cell, folder: Path, task_dir: Path, wall_s: float, exit_code: int | None) -> dict:
    runs = sorted(folder.glob("*/run.json"))
    run_dir = runs[-1].parent if runs else None
    submission = run_dir / "best" / load_task(task_dir).submission_file if run_dir else folder / "none.csv"
    report = grade_report(task_dir, submission, competition_id=cell.task)
    meta = _suite_meta(task_dir)
    run = read_json(run_dir / "run.json", {}) if run_dir else {}
    usage = run.get("usage") or {}
    result = {**cell.__dict__, **report, "trivial_score": meta["trivial_score"],
              "normalized_score": normalized(report["score"], meta["trivial_score"], report["gold_threshold"]),
              "run_status": run.get("status"), "exit_code": exit_code, "wall_s": round(wall_s, 1),
              "steps": len(run.get("steps") or []), "tokens": usage.get("total_tokens"),
              "run_dir": str(run_dir) if run_dir else None,
              "curve": score_curve(run_dir, task_dir, meta["trivial_score"], report) if run_dir else []}
    write_json(folder / "cell.json", result)
    return result


def run_cell(cell: Cell, out: Path, task_dir: Path, run_args: list[str], *, chat_model=None, executor=None,
             log: Callable[[str], None] = print) -> dict:
    """Run (or resume, or just grade) one cell and return its graded record."""
    from gome.cli import main as gome

    folder = cell.folder(out)
    done = read_json(folder / "cell.json")
    if done:
        return done
    folder.mkdir(parents=True, exist_ok=True)
    runs = sorted(folder.glob("*/run.json"))
    status = (read_json(runs[-1], {}) or {}).get("status") if runs else None
    started, code = time.time(), None
    spent = (read_json(folder / "wall.json", {}) or {}).get("wall_s", 0.0)  # time of earlier, cut-off attempts
    if status in FINAL:
        log(f"eval: grading finished run {runs[-1].parent}")
    elif runs:
        log(f"eval: resuming {runs[-1].parent}")
        code = gome(["resume", str(runs[-1].parent)], chat_model=chat_model, executor=executor)
    else:
        log(f"eval: {cell.model} {cell.task} {cell.mode} seed {cell.seed}")
        code = gome(["run", str(task_dir), "--mode", cell.mode, "--seed", str(cell.seed), "--model", cell.model,
                     "--out", str(folder), *run_args], chat_model=chat_model, executor=executor)
    wall = spent + time.time() - started
    if code == 2:  # the run could not start (model, sandbox or task): a setup problem, not a result
        raise ValueError(f"{cell.model} {cell.task} {cell.mode}: the run could not start (see the message above)")
    if code in (3, 130):  # paused for review or interrupted: not a result; the next eval resumes it
        write_json(folder / "wall.json", {"wall_s": wall})
        raise KeyboardInterrupt if code == 130 else RuntimeError(f"{folder}: the run paused for review")
    return grade_cell(cell, folder, task_dir, wall, code)


def run_eval(suite: Path, out: Path, *, tasks: list[str], modes: list[str], seeds: list[int], models: list[str],
             run_args: list[str], chat_models: dict[str, object] | None = None, executor=None,
             log: Callable[[str], None] = print) -> list[dict]:
    """Every cell of tasks x modes x seeds x models, then results.md / results.csv / plots in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    task_dirs = {t: suite / t for t in tasks}
    for d in task_dirs.values():
        load_task(d)  # fail early, naming the task, rather than after hours of other cells
        _suite_meta(d)
    write_json(out / "eval.json", {"suite": str(suite), "tasks": tasks, "modes": modes, "seeds": seeds,
                                   "models": models, "run_args": run_args})
    results = []
    for model in models:
        chat = (chat_models or {}).get(model)  # None: each run builds it (a local server is shared by all)
        for cell in (Cell(model, t, m, s) for t in tasks for m in modes for s in seeds):
            results.append(run_cell(cell, out, task_dirs[cell.task], run_args, chat_model=chat,
                                    executor=executor, log=log))
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
    run_args = ["--steps", str(args.steps), "--time", str(args.time), "--traces", str(args.traces),
                "--reruns", str(args.reruns)] + (["--json"] if args.json else [])
    try:
        results = run_eval(suite, Path(args.out), tasks=tasks, modes=args.modes, seeds=args.seeds,
                           models=args.models, run_args=run_args)
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # incl. model, sandbox and local-server errors
        print(f"gome: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gome: eval interrupted; run the same command again to go on from {args.out}", file=sys.stderr)
        return 130
    print(json.dumps({"cells": len(results), "results": str(Path(args.out) / "results.md")}))
    return 0
