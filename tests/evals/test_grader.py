import shutil

import pandas as pd
import pytest

from gome.evals.grader import grade_report, rank_thresholds, thresholds
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("teams, ranks", [(50, (5, 10, 20)), (9, (1, 1, 3)), (150, (10, 30, 60)),
                                          (500, (11, 50, 100)), (2000, (14, 100, 200))])
def test_medal_ranks_follow_the_number_of_teams(teams, ranks):
    assert rank_thresholds(teams) == ranks


def test_thresholds_are_the_scores_at_those_ranks():
    scores = [i / 100 for i in range(100, 0, -1)]  # 1.00 best ... 0.01, higher is better, 100 teams
    t = thresholds(scores, lower_is_better=False)
    assert (t["gold_threshold"], t["silver_threshold"], t["bronze_threshold"]) == (0.91, 0.81, 0.61)
    assert t["median_threshold"] == pytest.approx(0.505)
    low = thresholds(sorted(scores), lower_is_better=True)
    assert (low["gold_threshold"], low["bronze_threshold"]) == (0.10, 0.40)


@pytest.fixture
def task(tmp_path):
    dest = tmp_path / "diabetes"
    shutil.copytree(EXAMPLES / "diabetes", dest)
    # 50 teams, RMSE from 40 (best) to 89: lower is better, so the board is ascending
    pd.DataFrame({"teamName": [f"t{i}" for i in range(50)], "score": [40.0 + i for i in range(50)]}).to_csv(
        dest / "leaderboard.csv", index=False)
    return dest


def test_perfect_submission_wins_gold(task, tmp_path):
    sub = tmp_path / "submission.csv"
    shutil.copyfile(task / "private/answers.csv", sub)
    report = grade_report(task, sub)
    assert report["score"] == 0.0 and report["valid_submission"] and report["is_lower_better"]
    assert report["gold_medal"] and report["any_medal"] and not report["silver_medal"] and report["above_median"]
    assert report["gold_threshold"] == 44.0 and report["median_threshold"] == 64.5


def test_the_sample_submission_is_valid_but_wins_nothing(task):
    report = grade_report(task, task / "public/sample_submission.csv", competition_id="diabetes-local")
    assert report["valid_submission"] and report["score"] > 64.5
    assert not report["any_medal"] and not report["above_median"]
    assert report["competition_id"] == "diabetes-local"


def test_missing_or_invalid_submissions_score_none(task, tmp_path):
    missing = grade_report(task, tmp_path / "nope.csv")
    assert missing["submission_exists"] is False and missing["score"] is None and not missing["any_medal"]
    bad = tmp_path / "bad.csv"
    pd.read_csv(task / "public/sample_submission.csv").iloc[5:].to_csv(bad, index=False)
    report = grade_report(task, bad)
    assert report["submission_exists"] and not report["valid_submission"] and "no prediction" in report["error"]
