import json
import os
import stat
from pathlib import Path

import pytest

from gome.nodes.draft import draft
from tests.fakes.scripts import PLAIN_LOGREG, script


def test_prepare_lays_out_the_run_folder(trace_state, breast_cancer):
    run = Path(trace_state["run_dir"])
    assert sorted(p.name for p in (run / "input").iterdir()) == [
        "description.md", "sample_submission.csv", "test.csv", "train.csv"]  # public only: no answers
    assert not (run / "input" / "train.csv").stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert "description" not in trace_state["task"]  # long text stays out of checkpoints
    assert trace_state["deadline"] - trace_state["started_at"] == pytest.approx(600 * 0.85)  # select keeps 15%


def test_draft_prompt_carries_the_data_schema_and_rules(trace_state, make_runtime):
    runtime, model, _ = make_runtime([script(PLAIN_LOGREG)])
    update = draft(trace_state, runtime)
    prompt = model.calls[0]["prompt"]
    for needle in ("mean radius: float64", "id column 'id'", "target column(s) ['benign']", "id,benign",
                   "GOME_DATA_DIR", "GOME_SEED",
                   "# Approach:", "val_predictions.csv", "roc_auc (maximize)", "installed Python packages"):
        assert needle in prompt, needle
    pending = update["pending"]
    assert pending == {"id": "0001", "parent": None, "kind": "draft", "has_script": True, "llm_error": None,
                       "approach": "logistic regression on raw features, 5-fold CV"}
    main = Path(trace_state["run_dir"]) / "experiments" / "0001" / "main.py"
    assert main.read_text() == PLAIN_LOGREG
    assert update["usage"]["llm_calls"] == 1


def test_draft_without_code_costs_the_step_not_the_run(trace_state, make_runtime):
    runtime, _, _ = make_runtime(["I would use a random forest.", "Really, a random forest."])
    pending = draft(trace_state, runtime)["pending"]
    assert pending["has_script"] is False and "python" in pending["llm_error"]
    assert not os.path.exists(Path(trace_state["run_dir"]) / "experiments" / "0001" / "main.py")
