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


def _task_folder(root, metric: str, labels, positive=None, classes_as_columns=False):
    """A small task of this shape: 300 train rows, 100 test rows, two informative features."""
    rng = np.random.default_rng(1)
    n = 400
    y = np.asarray(labels)[rng.integers(0, len(labels), n)] if not np.issubdtype(np.asarray(labels).dtype,
                                                                                   np.floating) else None
    f1, f2 = rng.normal(size=n), rng.normal(size=n)
    if y is None:  # regression: a non-negative target for rmsle
        y = np.round(np.exp(1 + f1 + 0.3 * rng.normal(size=n)), 3)
    frame = pd.DataFrame({"id": np.arange(1000, 1000 + n), "f1": f1, "f2": f2, "target": y})
    if y.dtype != float:  # the labels depend on the features, so there is something to learn
        order = np.argsort(f1)
        frame.loc[order, "target"] = np.sort(np.asarray(y))
    public = root / "public"
    public.mkdir(parents=True)
    frame.iloc[:300].to_csv(public / "train.csv", index=False)
    test = frame.iloc[300:].drop(columns=["target"])
    test.to_csv(public / "test.csv", index=False)
    if classes_as_columns:
        columns = {str(c): 1 / len(labels) for c in sorted(set(map(str, labels)))}
        pd.DataFrame({"id": test["id"], **columns}).to_csv(public / "sample_submission.csv", index=False)
    else:
        pd.DataFrame({"id": test["id"], "target": frame["target"].iloc[300:].iloc[0]}).to_csv(
            public / "sample_submission.csv", index=False)
    (public / "description.md").write_text(f"A synthetic task scored by {metric}.\n")
    toml = f'[task]\nmetric = "{metric}"\ntarget_columns = ["target"]\n'
    (root / "task.toml").write_text(toml + (f'positive_label = "{positive}"\n' if positive else ""))
    return root


SHAPES = {  # metric, labels, positive label, one probability column per class
    "f1, binary int labels": ("f1", [0, 1], "1", False),
    "accuracy, binary int labels": ("accuracy", [0, 1], None, False),
    "accuracy, string labels": ("accuracy", ["no", "yes"], None, False),
    "f1, string labels": ("f1", ["neg", "pos"], "pos", False),
    "f1_macro, multiclass strings": ("f1_macro", ["a", "b", "c"], None, False),
    "qwk, ordinal ints": ("qwk", [1, 2, 3, 4], None, False),
    "roc_auc, binary ints": ("roc_auc", [0, 1], "1", False),
    "log_loss, multiclass strings": ("log_loss", ["cat", "dog", "eel"], None, True),
    "rmse, regression": ("rmse", [0.0], None, False),
    "mae, regression": ("mae", [0.0], None, False),
    "rmsle, regression": ("rmsle", [0.0], None, False),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_the_draft_template_runs_for_every_metric_kind_and_label_type(shape, tmp_path):
    """Rendered for the task's own columns and run in the sandbox, the template scores and submits."""
    from gome.nodes.execute import execute
    from gome.nodes.prepare import prepare
    from gome.nodes.scripts import save_script
    from gome.nodes.template import baseline_template
    from gome.state.records import RunConfig
    from gome.tools.task.loading import load_task

    metric, labels, positive, per_class = SHAPES[shape]
    task_dir = _task_folder(tmp_path / "task", metric, labels, positive, per_class)
    state = prepare({"task_dir": str(task_dir), "run_dir": str(tmp_path / "run"),
                     "config": RunConfig(challenges=False, repair={"debug_rows": 0}).model_dump(mode="json")})
    state = {**state, "trace": 0, "step": 0}
    pending = save_script(state["run_dir"], "0001", baseline_template(load_task(task_dir)), parent=None,
                          plan={"kind": "draft"}, errors=[])
    last = execute({**state, "pending": pending})["last"]
    assert last["status"] == "ok", (last, (tmp_path / "run/experiments/0001/stderr.txt").read_text()[-2000:])
    assert last["score_source"] == "harness" and last["submission_valid"], last
    assert np.isfinite(last["score"])
