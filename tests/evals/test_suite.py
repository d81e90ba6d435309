import dataclasses
import json

import pandas as pd
import pytest

from gome.cli import EXIT_USAGE, main
from gome.evals.grader import grade_report
from gome.evals.suite.build import CHECKSUMS, SuiteError, build_suite, build_task, file_checksums
from gome.evals.suite.catalog import TASKS, get_spec
from gome.tools.task.loading import load_task
from gome.tools.task.metrics import get_metric


def test_the_suite_mixes_kinds_modalities_and_metrics():
    assert len(TASKS) >= 12
    assert {s.kind for s in TASKS} == {"binary", "multiclass", "regression"}
    assert {s.modality for s in TASKS} == {"tabular", "text", "image"}
    assert len({s.metric for s in TASKS}) >= 6
    assert len({s.name for s in TASKS}) == len(TASKS)


@pytest.fixture(scope="module")
def data_only(tmp_path_factory):
    """Every task's data, built without reference pipelines (seconds) and checked against checksums.json."""
    out = tmp_path_factory.mktemp("suite")
    build_suite(out, leaderboard=False)  # raises SuiteError on any file that differs from the committed bytes
    return out


def test_every_task_builds_to_the_committed_checksums(data_only):
    committed = json.loads(CHECKSUMS.read_text())
    assert set(committed) == {s.name for s in TASKS}
    for spec in TASKS:
        assert file_checksums(data_only / spec.name) == committed[spec.name]


@pytest.mark.parametrize("spec", TASKS, ids=lambda s: s.name)
def test_built_task_is_a_valid_prepared_competition_without_leaks(data_only, spec):
    task_dir = data_only / spec.name
    task = load_task(task_dir)
    assert (task.metric, task.target_columns) == (spec.metric, [spec.target])
    train = pd.read_csv(task_dir / "public/train.csv")
    test = pd.read_csv(task_dir / "public/test.csv")
    answers = pd.read_csv(task_dir / "private/answers.csv")
    sample = pd.read_csv(task_dir / "public/sample_submission.csv")
    for leak in spec.leaks:
        assert leak not in train.columns and leak not in test.columns
    assert spec.target not in test.columns
    assert set(test["id"]) == set(answers["id"]) == set(sample["id"])
    assert not set(train["id"]) & set(test["id"])
    assert len(test) == pytest.approx(0.2 * (len(train) + len(test)), abs=1)
    if spec.modality == "image":
        assert all((task_dir / f"public/images/{i}.png").is_file() for i in [*train["id"], *test["id"]])
    meta = json.loads((task_dir / "suite.json").read_text())
    assert meta["leaks_removed"] == spec.leaks and meta["source"] == spec.source


def test_a_reserved_dataset_is_refused(tmp_path):
    spec = dataclasses.replace(get_spec("wage"), name="diamonds", source="ggplot2:diamonds")
    with pytest.raises(SuiteError, match="reserved for independent evaluation"):
        build_task(spec, tmp_path)


@pytest.fixture(scope="module")
def with_leaderboards(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    build_suite(out, ["penguin-mass", "credit-card", "wine-cultivar"])
    return out


@pytest.mark.parametrize("name", ["penguin-mass", "credit-card", "wine-cultivar"])
def test_reference_leaderboard_gives_medal_thresholds_a_trivial_baseline_misses(with_leaderboards, name):
    task_dir = with_leaderboards / name
    board = pd.read_csv(task_dir / "leaderboard.csv")
    assert len(board) >= 50 and board["teamName"].is_unique
    lower = get_metric(get_spec(name).metric).direction == "minimize"
    assert board["score"].is_monotonic_increasing if lower else board["score"].is_monotonic_decreasing
    # the trivial baseline, as a submission, is valid and wins nothing
    trivial = json.loads((task_dir / "suite.json").read_text())["trivial_score"]
    sample = task_dir / "public/sample_submission.csv"
    report = grade_report(task_dir, sample)
    assert report["valid_submission"] and not report["any_medal"] and not report["above_median"]
    assert (trivial > report["median_threshold"]) if lower else (trivial < report["median_threshold"])
    # the hidden answers themselves would win gold
    perfect = task_dir / "perfect.csv"
    answers = pd.read_csv(task_dir / "private/answers.csv")
    if get_metric(get_spec(name).metric).kind == "probability":
        classes = [c for c in pd.read_csv(sample).columns if c != "id"]
        answers = pd.concat([answers[["id"]], pd.get_dummies(answers[get_spec(name).target]).reindex(
            columns=classes, fill_value=0).astype(float)], axis=1)
    answers.to_csv(perfect, index=False)
    assert grade_report(task_dir, perfect)["gold_medal"]


def test_tasks_build_names_an_unknown_task(tmp_path, capsys):
    assert main(["tasks", "build", "no-such-task", "--out", str(tmp_path)]) == EXIT_USAGE
    assert "no suite task 'no-such-task'" in capsys.readouterr().err


def test_tasks_list_prints_the_built_suite_table(with_leaderboards, capsys):
    assert main(["tasks", "list", "--suite", str(with_leaderboards)]) == 0
    table = capsys.readouterr().out
    task_dir = with_leaderboards / "penguin-mass"
    report = grade_report(task_dir, task_dir / "public/sample_submission.csv")
    assert "| penguin-mass | regression | tabular | mae | 273 / 69 |" in table
    assert f"| {report['gold_threshold']:.4g} | 52 |" in table
    assert "adult-income" not in table  # not built here
