import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold

from gome.nodes.template import skeleton
from gome.state.records import Task
from gome.tools.task.metrics import get_metric, score_frame

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("metric, columns, labels", [
    ("log_loss", ["a", "b", "c"], RNG.choice(["a", "b", "c"], 60)),
    ("accuracy", ["label"], RNG.choice(["x", "y"], 60)),
    ("roc_auc", ["label"], RNG.integers(0, 2, 60)),
    ("rmse", ["label"], RNG.random(60)),
])
def test_the_prompt_skeleton_runs_and_writes_predictions_the_harness_accepts(metric, columns, labels, tmp_path,
                                                                             monkeypatch):
    task = Task(name="t", data_dir="/", metric=metric, direction=get_metric(metric).direction, id_column="id",
                target_columns=["label"], submission_columns=columns)
    train = pd.DataFrame({"id": range(60), "f": RNG.random(60), "label": labels})
    monkeypatch.chdir(tmp_path)
    scope = {"np": np, "pd": pd, "KFold": KFold, "train": train, "SEED": 0,
             "model": LinearRegression() if metric == "rmse" else LogisticRegression()}
    exec(skeleton(task), scope)  # the few lines every script prompt shows, in this task's own columns
    pred = pd.read_csv(tmp_path / "val_predictions.csv")
    score = score_frame(get_metric(metric), train, pred, id_column="id", target_columns=["label"],
                        prediction_columns=columns, exact_ids=True)
    assert np.isfinite(score)


@pytest.mark.parametrize("example", ["breast-cancer", "diabetes"])
def test_the_draft_template_runs_in_the_sandbox_and_scores(example, tmp_path):
    """The template the draft prompt offers is a working solution as it stands: scored by the harness."""
    import shutil

    from gome.nodes.execute import execute
    from gome.nodes.prepare import prepare
    from gome.nodes.scripts import save_script
    from gome.nodes.template import baseline_template
    from gome.state.records import RunConfig
    from gome.tools.task.loading import load_task
    from tests.conftest import EXAMPLES

    task_dir = shutil.copytree(EXAMPLES / example, tmp_path / example)
    state = prepare({"task_dir": str(task_dir), "run_dir": str(tmp_path / "run"),
                     "config": RunConfig(challenges=False).model_dump(mode="json")})
    state = {**state, "trace": 0, "step": 0}
    code = baseline_template(load_task(task_dir))
    pending = save_script(state["run_dir"], "0001", code, parent=None, plan={"kind": "draft"}, errors=[])
    last = execute({**state, "pending": pending})["last"]
    assert last["status"] == "ok" and last["score_source"] == "harness" and last["submission_valid"], last
    assert (0.95 < last["score"] <= 1) if example == "breast-cancer" else (40 < last["score"] < 80)
