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

from gome.nodes.runtime import config_of, emit, executor, folder_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.state.journal import beats
from gome.state.records import Task
from gome.tools.run.experiment import run_and_score, stage_candidates
from gome.tools.run.folder import RunFolder
from gome.tools.sandbox.executor import Limits

CANDIDATE_FIELDS = {"id", "trace", "step", "score", "score_source", "submission_valid", "status", "buggy", "intent"}


def candidates(run_dir: str | Path, direction: str, k: int) -> list[dict]:
    """The k best working experiments of the run, as the journal ranks them."""
    return [e.model_dump(mode="json", include=CANDIDATE_FIELDS) for e in RunFolder(run_dir).journal().ranked(
        direction)[:k]]


def blend_parts(run: RunFolder, cand: dict) -> list[str]:
    """The experiments a blend candidate blends (none for any other candidate)."""
    exp = run.experiment(cand["id"]).read_experiment() if cand.get("intent") == "blend" else None
    return list(exp.gradient.blend) if exp is not None and exp.gradient is not None else []


def rerun_order(run: RunFolder, cands: list[dict]) -> list[dict]:
    """Within a seed: first the parts of the blends that are not candidates themselves (re-run only so that a blend
    can blend their re-runs; never chosen), then the single experiments, then the blends."""
    ids = {c["id"] for c in cands}
    parts = dict.fromkeys(p for c in cands for p in blend_parts(run, c) if p not in ids)
    singles = [c for c in cands if c.get("intent") != "blend"]
    return [*({"id": p, "intent": "part"} for p in parts), *singles, *(c for c in cands if c.get("intent") == "blend")]


def rerun(runtime, run: RunFolder, task: Task, cand: dict, seed: int, limits: Limits) -> float | None:
    """Run a candidate again with another seed in its rerun-seed<k> folder; its harness score, or None. A blend
    blends its candidates' re-runs with that seed (where they were re-run): a blend of fixed predictions would
    score the same on every seed and look robust whatever its parts do."""
    folder = run.rerun(cand["id"], seed).fresh()
    candidates = None
    try:
        folder.copy_code_from(run.experiment(cand["id"]))
        if cand.get("intent") == "blend":
            parts = blend_parts(run, cand)
            if not parts or stage_candidates(run, folder, task, parts, seed):
                return None
            candidates = folder.candidates
    except OSError:
        return None
    summary, result = run_and_score(executor(runtime), folder, task, limits, env={"GOME_SEED": str(seed)},
                                    candidates=candidates)
    return summary["score"] if result.ok and summary["score_source"] == "harness" else None


def _robust(cand: dict) -> dict:
    return {**cand, "score": cand.get("mean_score", cand["score"])}


def select(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, task, run = config_of(state), task_of(state), folder_of(state)
    cands = candidates(run.root, task.direction, cfg.select.top_k)
    report: dict = {"candidates": cands, "reruns": cfg.select.reruns, "skipped": None}
    emit(runtime, {"event": "phase", "phase": "selecting", "candidates": [c["id"] for c in cands],
                   "reruns": cfg.select.reruns if len(cands) > 1 else 0}, state["run_dir"])
    if len(cands) > 1 and cfg.select.reruns:
        end = state.get("started_at", time.time()) + cfg.time_s
        # Seed-major, fair if time runs out; within a seed, blends after the experiments they blend.
        order = rerun_order(run, cands)
        jobs = [(c, s) for s in range(1, cfg.select.reruns + 1) for c in order]
        for n, (cand, seed) in enumerate(jobs):
            left = end - time.time()
            if left < 2:
                report["skipped"] = f"{len(jobs) - n} re-runs skipped: the wall clock is spent"
                break
            limits = Limits.of(cfg, min(left / (len(jobs) - n) * 1.5, left))
            cand.setdefault("rerun_scores", []).append(rerun(runtime, run, task, cand, seed, limits))
            emit(runtime, {"event": "rerun", "id": cand["id"], "seed": seed, "score": cand["rerun_scores"][-1],
                           "done": n + 1, "of": len(jobs)}, state["run_dir"])
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
    run.write("select", report)
    return {"selected": chosen}
