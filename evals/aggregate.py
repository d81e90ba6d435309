"""Aggregating graded eval cells the way MLE-bench reports agents: any-medal %, valid-submission %,
above-median % and a normalized score, each as mean +- SEM over cells (tasks x seeds), per model and mode."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from gome.tools.run.folder import write_json

MEASURES = {"any_medal": "any medal %", "valid_submission": "valid %", "above_median": "above median %",
            "normalized_score": "normalized score"}


def mean_sem(values) -> tuple[float, float]:
    x = np.asarray(list(values), dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def summarize(results: list[dict]) -> pd.DataFrame:
    """One row per (model, mode): cells, each measure's mean and SEM, median wall time."""
    frame = pd.DataFrame(results)
    rows = []
    for (model, mode), group in frame.groupby(["model", "mode"], sort=False):
        row = {"model": model, "mode": mode, "cells": len(group), "wall_s_median": float(group["wall_s"].median())}
        for key in MEASURES:
            scale = 1 if key == "normalized_score" else 100
            m, s = mean_sem(group[key].astype(float) * scale)
            row[key], row[f"{key}_sem"] = m, s
        rows.append(row)
    return pd.DataFrame(rows)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _pm(mean: float, sem: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {sem:.{digits}f}" if not math.isnan(sem) else f"{mean:.{digits}f} ± n/a"


def markdown(results: list[dict]) -> str:
    summary = summarize(results)
    lines = ["# gome eval", "", "| model | mode | cells | " + " | ".join(MEASURES.values()) + " | median wall |",
             "|---|---|---|" + "---|" * len(MEASURES) + "---|"]
    for r in summary.to_dict("records"):
        cells = [_pm(r[k], r[f"{k}_sem"], 3 if k == "normalized_score" else 1) for k in MEASURES]
        lines.append(f"| {r['model']} | {r['mode']} | {r['cells']} | " + " | ".join(cells)
                     + f" | {_duration(r['wall_s_median'])} |")
    lines += ["", "Mean ± SEM over cells (tasks × seeds). Normalized score: 0 = trivial baseline (or no valid "
              "submission), 1 = gold threshold; below the baseline counts as 0.", "",
              "| model | task | mode | seed | score | medal | above median | normalized | status | wall |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["model"], r["task"], r["mode"], r["seed"])):
        medal = next((m for m in ("gold", "silver", "bronze") if r.get(f"{m}_medal")), "-")
        score = "invalid" if r["score"] is None else f"{r['score']:.5g}"
        lines.append(f"| {r['model']} | {r['task']} | {r['mode']} | {r['seed']} | {score} | {medal} | "
                     f"{'yes' if r['above_median'] else 'no'} | {r['normalized_score']:.3f} | {r['run_status']} | "
                     f"{_duration(r['wall_s'])} |")
    failed = [r for r in results if r.get("error")]
    if failed:  # a crashed run, or a cell lost on a Ray cluster: say why, not only that it has no score
        lines += ["", "## Errors", ""] + [
            f"- {r['model']} {r['task']} {r['mode']} seed {r['seed']}: {' '.join(str(r['error']).split())[:300]}"
            for r in failed]
    return "\n".join(lines) + "\n"


def plot_score_vs_time(results: list[dict], path: Path) -> None:
    """Mean normalized test score of the best-so-far experiment against time, one line per model and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = max([r["wall_s"] for r in results] + [1.0])
    grid = np.linspace(0, horizon, 200)
    fig, ax = plt.subplots(figsize=(7, 4))
    for (model, mode), group in pd.DataFrame(results).groupby(["model", "mode"], sort=False):
        curves = []
        for curve in group["curve"]:
            y = np.zeros_like(grid)
            for at, value in curve or []:
                y[grid >= at] = value
            curves.append(y)
        ax.step(grid / 60, np.mean(curves, axis=0), where="post", label=f"{model} · {mode}")
    ax.set_xlabel("minutes since the run started")
    ax.set_ylabel("normalized test score (best so far)")
    ax.set_title("score vs time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, results: list[dict]) -> None:
    """results.csv (a row per cell), summary.json, results.md and score_vs_time.png in `out`."""
    pd.DataFrame([{k: v for k, v in r.items() if k != "curve"} for r in results]).to_csv(out / "results.csv",
                                                                                         index=False)
    write_json(out / "summary.json", summarize(results).to_dict("records"))
    (out / "results.md").write_text(markdown(results))
    plot_score_vs_time(results, out / "score_vs_time.png")
