"""select: re-run the best few candidates with other seeds and submit the one that holds up.

A single validation score can be lucky. The top_k candidates of the whole run (every trace) are run again with
GOME_SEED = 1..reruns (new splits and model seeds when the script honours it, as the rules ask) and ranked by
their mean harness score; a candidate that fails on another seed is not robust and ranks last. The time for this
was kept out of the search (select.reserve). select.json records every score.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from langgraph.runtime import Runtime

from gome.nodes.common import executor, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.state.records import RunConfig, Task
from gome.tools.files import copy_file
from gome.tools.run.experiment import run_and_score
from gome.tools.run.folder import MAX_CODE_BYTES, experiment_dir, fresh_folder, read_json, write_json
from gome.tools.sandbox.executor import Limits
from gome.tools.task.metrics import beats


def candidates(run_dir: str | Path, direction: str, k: int) -> list[dict]:
    """The k best valid, scored experiments of the run: runs diagnosed as buggy only after all others (a valid
    submission beats none), then harness before self-reported scores, then the metric's direction."""
    pool = []
    for path in sorted((Path(run_dir) / "experiments").glob("*/metrics.json")):
        rec = read_json(path)
        if isinstance(rec, dict) and rec.get("status") == "ok" and rec.get("submission_valid") \
                and rec.get("score") is not None:
            pool.append({k: rec.get(k) for k in ("id", "trace", "step", "score", "score_source", "submission_valid",
                                                 "status", "buggy")})
    ranked: list[dict] = []
    for cand in pool:  # insertion sort by _ahead
        i = next((i for i, r in enumerate(ranked) if _ahead(cand, r, direction)), len(ranked))
        ranked.insert(i, cand)
    return ranked[:k]


def _ahead(a: dict, b: dict, direction: str) -> bool:
    if bool(a.get("buggy")) != bool(b.get("buggy")):
        return not a.get("buggy")
    return beats(a, b, direction)


def rerun(runtime, run_dir: Path, task: Task, cand: dict, seed: int, limits: Limits) -> float | None:
    """Run a candidate again with another seed in experiments/<id>/rerun-seed<k>/; its harness score, or None."""
    folder = fresh_folder(experiment_dir(run_dir, cand["id"]) / f"rerun-seed{seed}")
    try:
        copy_file(experiment_dir(run_dir, cand["id"]) / "main.py", folder / "main.py", MAX_CODE_BYTES)
    except OSError:
        return None
    summary, result = run_and_score(executor(runtime), folder, run_dir, task, limits, env={"GOME_SEED": str(seed)})
    return summary["score"] if result.ok and summary["score_source"] == "harness" else None


def _robust(cand: dict) -> dict:
    return {**cand, "score": cand.get("mean_score", cand["score"])}


def select(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, task, run_dir = RunConfig.model_validate(state["config"]), task_of(state), Path(state["run_dir"])
    cands = candidates(run_dir, task.direction, cfg.select.top_k)
    report: dict = {"candidates": cands, "reruns": cfg.select.reruns, "skipped": None}
    if len(cands) > 1 and cfg.select.reruns:
        end = state.get("started_at", time.time()) + cfg.time_s
        jobs = [(c, s) for s in range(1, cfg.select.reruns + 1) for c in cands]  # seed-major: fair if time runs out
        for n, (cand, seed) in enumerate(jobs):
            left = end - time.time()
            if left < 2:
                report["skipped"] = f"{len(jobs) - n} re-runs skipped: the wall clock is spent"
                break
            limits = Limits(timeout_s=min(cfg.script_timeout_s, left / (len(jobs) - n) * 1.5, left),
                            max_output_bytes=cfg.max_output_bytes, threads=cfg.threads)
            cand.setdefault("rerun_scores", []).append(rerun(runtime, run_dir, task, cand, seed, limits))
        for cand in cands:
            scores = [cand["score"], *cand.get("rerun_scores", [])]
            cand["mean_score"] = None if None in scores else statistics.fmean(scores)
    chosen = None
    for cand in cands:
        if _robust(cand)["score"] is not None and beats(_robust(cand), chosen and _robust(chosen), task.direction):
            chosen = cand
    if chosen is None and cands:  # every candidate failed a re-run: fall back to the best single score
        chosen, report["skipped"] = cands[0], "no candidate survived its re-runs; submitting the best single score"
    report["selected"] = chosen and chosen["id"]
    write_json(run_dir / "select.json", report)
    return {"selected": chosen}
