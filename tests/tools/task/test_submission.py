import os

import pandas as pd
import pytest

from gome.tools.task.loading import load_task
from gome.tools.task.metrics import ScoringError
from gome.tools.task.submission import check_submission, grade, parse_self_reported, read_artifact_csv, score_validation


@pytest.fixture
def task(breast_cancer):
    return load_task(breast_cancer)


def test_sample_submission_itself_is_valid(task, breast_cancer):
    check_submission(task, breast_cancer / "public" / "sample_submission.csv")


def test_submission_checks(task, breast_cancer, tmp_path):
    sample = pd.read_csv(breast_cancer / "public" / "sample_submission.csv")
    cases = {
        "columns": sample.rename(columns={"benign": "prob"}),
        "duplicated": pd.concat([sample, sample.iloc[:1]]),
        "no prediction": sample.iloc[1:],
        "missing values": sample.assign(benign=[None] + [0.5] * (len(sample) - 1)),
        "probabilities must be numbers": sample.assign(benign=["high"] + [0.5] * (len(sample) - 1)),
        r"\[0, 1\]": sample.assign(benign=2.0),
    }
    for message, frame in cases.items():
        path = tmp_path / "submission.csv"
        frame.to_csv(path, index=False)
        with pytest.raises(ScoringError, match=message):
            check_submission(task, path)


def test_a_valid_submission_is_accepted_and_a_changed_sample_is_read_again(task, breast_cancer, tmp_path):
    sample_path = breast_cancer / "public" / "sample_submission.csv"
    sample = pd.read_csv(sample_path)
    sub = tmp_path / "submission.csv"
    sample.assign(benign=[0, 1] * (len(sample) // 2) + [1] * (len(sample) % 2)).to_csv(sub, index=False)
    check_submission(task, sub)  # integer probabilities are numbers too
    sample.iloc[:40].to_csv(sample_path, index=False)  # the task's sample changed: fewer ids
    with pytest.raises(ScoringError, match="not expected"):
        check_submission(task, sub)
    sample.iloc[:40].assign(benign=0.25).to_csv(sub, index=False)
    check_submission(task, sub)


def test_symlinked_artifact_is_refused(tmp_path):
    secret = tmp_path / "host_secret.csv"
    secret.write_text("id,benign\n1,0.5\n")
    link = tmp_path / "submission.csv"
    os.symlink(secret, link)
    with pytest.raises(ScoringError, match="links are refused"):
        read_artifact_csv(link)
    with pytest.raises(ScoringError, match="was not written"):
        read_artifact_csv(tmp_path / "absent.csv")


def test_validation_scored_on_held_out_train_rows(task, breast_cancer, tmp_path):
    train = pd.read_csv(breast_cancer / "public" / "train.csv")
    held = train.iloc[:100]
    perfect = tmp_path / "val_predictions.csv"
    held[["id", "benign"]].to_csv(perfect, index=False)
    assert score_validation(task, perfect, train) == 1.0
    held.assign(benign=1 - held.benign)[["id", "benign"]].to_csv(perfect, index=False)
    assert score_validation(task, perfect, train) == 0.0
    held.iloc[:5][["id", "benign"]].to_csv(perfect, index=False)
    with pytest.raises(ScoringError, match="at least"):
        score_validation(task, perfect, train)


def test_grade_against_private_answers(task, breast_cancer, tmp_path):
    answers = pd.read_csv(breast_cancer / "private" / "answers.csv")
    sub = tmp_path / "submission.csv"
    answers.to_csv(sub, index=False)
    assert grade(task, sub, breast_cancer / "private" / "answers.csv") == 1.0


def test_self_reported_score_is_the_last_one_printed():
    assert parse_self_reported("fold 1\nvalidation score: 0.91\nValidation_Score = 0.93\n") == 0.93
    assert parse_self_reported("validation score: nan") is None
    assert parse_self_reported("no score here") is None


def test_a_header_of_a_million_columns_is_refused_before_pandas_sees_it(tmp_path):
    import time

    wide = tmp_path / "val_predictions.csv"
    wide.write_text("," * 1_000_000 + "\n1\n")
    t0 = time.monotonic()
    with pytest.raises(ScoringError, match="header line is over"):
        read_artifact_csv(wide, max_columns=7)
    wide.write_text(",".join(f"c{i}" for i in range(20)) + "\n" + ",".join("1" * 20) + "\n")
    with pytest.raises(ScoringError, match="has 20 columns; expected at most 7"):
        read_artifact_csv(wide, max_columns=7)
    assert time.monotonic() - t0 < 1


def test_messages_quoting_what_a_script_wrote_are_clipped(task, tmp_path):
    sub = tmp_path / "submission.csv"
    sub.write_text(("x" * 100_000) + ",benign\n1,0.5\n")
    with pytest.raises(ScoringError) as err:
        check_submission(task, sub)
    assert len(str(err.value)) <= ScoringError.MAX_CHARS
