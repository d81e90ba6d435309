"""`gome eval`: run gome on tasks x modes x seeds x models, grade each run like MLE-bench, and aggregate.

Each cell (model, task, mode, seed) lives in its own folder (gome.evals.cells). An eval that is stopped and
started again skips graded cells, resumes runs that were cut off, and starts the rest: no finished work is redone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from gome.evals.aggregate import write_results
from gome.evals.cells import Cell, _suite_meta, model_for, run_cell
from gome.state.records import RunConfig
from gome.tools.llm.local_model import LocalModelError
from gome.tools.llm.models import ModelConfigError
from gome.tools.report.progress import Progress
from gome.tools.run.folder import write_json
from gome.tools.task.loading import load_task

__all__ = ["Cell", "main", "run_eval"]  # Cell: where a cell's folder is (tests, scripts)


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
