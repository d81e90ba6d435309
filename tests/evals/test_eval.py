import json

import pandas as pd
import pytest

from gome.cli import main
from gome.evals.runner import Cell, run_eval
from gome.evals.suite.build import build_suite
from gome.state.records import RunConfig
from tests.fakes.chat import KindChatModel
from tests.fakes.scripts import diagnosis, generic_script, hypotheses

TASKS = ["penguin-mass", "credit-card"]  # regression scored by MAE, binary scored by accuracy


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    build_suite(out, TASKS)
    return out


def fake_model() -> KindChatModel:
    return KindChatModel(by_kind={
        "text": generic_script,
        "Diagnosis": diagnosis("ran", True, "it ran and validated"),
        "HypothesisSet": hypotheses(("Regularize less: the model underfits", "model", "minimal", 3))})


CONFIG = RunConfig(steps=2, time_s=600, select={"reruns": 0})


def test_eval_grades_every_cell_and_aggregates(suite, tmp_path):
    model = fake_model()
    out = tmp_path / "eval"
    results = run_eval(suite, out, tasks=TASKS, modes=["gradient", "tree"], seeds=[0], models=["fake"],
                       config=CONFIG, chat_models={"fake": model}, log=lambda _: None)
    assert len(results) == 4
    for r in results:
        cell = json.loads((Cell(r["model"], r["task"], r["mode"], r["seed"]).folder(out) / "cell.json").read_text())
        assert cell["valid_submission"] and cell["submission_exists"] and cell["run_status"] == "succeeded"
        assert cell["score"] is not None and cell["normalized_score"] >= 0 and cell["steps"] >= 2
        assert {"gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold", "any_medal",
                "above_median", "is_lower_better"} <= set(cell)
        assert cell["curve"] and all(at >= 0 for at, _ in cell["curve"])
    penguin = next(r for r in results if r["task"] == "penguin-mass")
    assert penguin["is_lower_better"] and penguin["score"] < penguin["trivial_score"]  # ridge beats the median
    table = (out / "results.md").read_text()
    assert "| fake | gradient | 2 |" in table and "| fake | tree | 2 |" in table
    assert "| fake | penguin-mass | tree | 0 |" in table
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert (out / "score_vs_time.png").stat().st_size > 5000
    summary = json.loads((out / "summary.json").read_text())
    assert {s["mode"] for s in summary} == {"gradient", "tree"} and all(s["valid_submission"] == 100 for s in summary)

    # Run again: every cell is graded, so nothing runs and the model is never asked.
    calls = len(model._calls)
    again = run_eval(suite, out, tasks=TASKS, modes=["gradient", "tree"], seeds=[0], models=["fake"],
                     config=CONFIG, chat_models={"fake": model}, log=lambda _: None)
    assert len(model._calls) == calls and [r["score"] for r in again] == [r["score"] for r in results]


def test_eval_resumes_a_cut_off_cell_and_grades_a_finished_one(suite, tmp_path):
    model = fake_model()
    out = tmp_path / "eval"
    kwargs = dict(tasks=["penguin-mass"], modes=["gradient"], seeds=[0, 1], models=["fake"], config=CONFIG,
                  chat_models={"fake": model}, log=lambda _: None)
    run_eval(suite, out, **kwargs)
    first, second = (Cell("fake", "penguin-mass", "gradient", s).folder(out) for s in (0, 1))
    (first / "cell.json").unlink()  # a finished run whose grading was lost: graded again, not rerun
    run_json = next(second.glob("*/run.json"))
    run = json.loads(run_json.read_text())
    (second / "cell.json").unlink()
    run_json.write_text(json.dumps({**run, "status": "running"}))  # a run killed mid-way: resumed
    calls = len(model._calls)
    results = run_eval(suite, out, **kwargs)
    assert len(model._calls) == calls  # its checkpoint had finished every node; resuming asks nothing
    assert [len(list(c.glob("*/run.json"))) for c in (first, second)] == [1, 1]  # no new run started
    assert all(r["valid_submission"] for r in results)


def test_eval_cli_names_a_missing_suite(tmp_path, capsys):
    assert main(["eval", "--suite", str(tmp_path / "nope"), "--out", str(tmp_path / "e")]) == 2
    assert "gome tasks build" in capsys.readouterr().err


def test_a_run_that_cannot_start_stops_the_eval_without_recording_a_result(suite, tmp_path, monkeypatch, capsys):
    from gome.tools.llm import local_model

    def not_installed(path=None):
        raise local_model.LocalModelError("the local model's weights are not installed")

    monkeypatch.setattr(local_model, "find_weights", not_installed)
    out = tmp_path / "eval"
    assert main(["eval", "--suite", str(suite), "--tasks", "penguin-mass", "--modes", "gradient",
                 "--out", str(out)]) == 2
    assert "weights are not installed" in capsys.readouterr().err
    assert not list(out.glob("cells/**/cell.json"))
