"""Grading a submission the way MLE-bench does: a score, medal and median thresholds from a leaderboard, and the
report fields MLE-bench writes.

Works for gome's own tasks and for real MLE-bench prepared competitions (given their private answers and
leaderboard.csv), for the metrics gome implements.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd

from gome.tools.task.loading import load_task
from gome.tools.task.metrics import ScoringError, get_metric
from gome.tools.task.submission import check_submission, grade


def rank_thresholds(teams: int) -> tuple[int, int, int]:
    """(gold, silver, bronze) as the last rank that earns each medal, by the number of teams (Kaggle's rules as
    MLE-bench applies them)."""
    if teams < 100:
        return max(1, int(teams * 0.1)), max(1, int(teams * 0.2)), max(1, int(teams * 0.4))
    if teams < 250:
        return 10, int(teams * 0.2), int(teams * 0.4)
    if teams < 1000:
        return 10 + int(teams * 0.002), 50, 100
    return 10 + int(teams * 0.002), int(teams * 0.05), int(teams * 0.1)


def leaderboard_scores(path: str | Path) -> list[float]:
    board = pd.read_csv(path)
    column = next((c for c in ("score", "scoreNullable", "Score") if c in board.columns), None)
    if column is None:
        raise ValueError(f"{path}: no score column (score or scoreNullable); columns are {list(board.columns)}")
    return [float(s) for s in board[column] if pd.notna(s)]


def thresholds(scores: list[float], lower_is_better: bool) -> dict[str, float]:
    ranked = sorted(scores, reverse=not lower_is_better)  # best first
    gold, silver, bronze = rank_thresholds(len(ranked))
    return {"gold_threshold": ranked[gold - 1], "silver_threshold": ranked[silver - 1],
            "bronze_threshold": ranked[bronze - 1], "median_threshold": float(pd.Series(ranked).median())}


def _at_least(score: float, threshold: float, lower_is_better: bool) -> bool:
    return score <= threshold if lower_is_better else score >= threshold


def grade_report(task_dir: str | Path, submission: str | Path, *, answers: str | Path | None = None,
                 leaderboard: str | Path | None = None, competition_id: str | None = None) -> dict:
    """MLE-bench's grade report for one submission. An invalid or missing submission gets score None and no
    medal; the thresholds still come from the leaderboard."""
    task = load_task(task_dir)
    root = Path(task.data_dir).parent
    answers = Path(answers) if answers else root / "private" / "answers.csv"
    board = Path(leaderboard) if leaderboard else root / "leaderboard.csv"
    scores = leaderboard_scores(board)
    # MLE-bench reads the direction from the leaderboard's order; with a tie at the ends, the metric says.
    lower = scores[0] < scores[-1] if scores[0] != scores[-1] else get_metric(task.metric).direction == "minimize"
    report = {"competition_id": competition_id or task.name, "score": None, **thresholds(scores, lower),
              "gold_medal": False, "silver_medal": False, "bronze_medal": False, "above_median": False,
              "submission_exists": Path(submission).is_file(), "valid_submission": False,
              "is_lower_better": lower, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "submission_path": str(submission), "error": None}
    if report["submission_exists"]:
        try:
            check_submission(task, submission)
            score = grade(task, submission, answers)
        except ScoringError as e:
            report["error"] = str(e)
        else:
            if math.isfinite(score):
                report.update(score=round(score, 5), valid_submission=True)
                report["gold_medal"] = _at_least(score, report["gold_threshold"], lower)
                report["silver_medal"] = not report["gold_medal"] and _at_least(score, report["silver_threshold"],
                                                                                lower)
                report["bronze_medal"] = not (report["gold_medal"] or report["silver_medal"]) and _at_least(
                    score, report["bronze_threshold"], lower)
                report["above_median"] = score < report["median_threshold"] if lower else \
                    score > report["median_threshold"]
    report["any_medal"] = report["gold_medal"] or report["silver_medal"] or report["bronze_medal"]
    return report
