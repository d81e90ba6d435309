"""Scripts that follow every rule, generated for the task's own columns: the few lines every script prompt shows
(how held-out predictions are written) and the complete baseline the draft starts from.

A small model copies a working frame far more reliably than it follows rules; a strong one loses nothing.
"""

from __future__ import annotations

from gome.state.records import Task
from gome.tools.task.metrics import get_metric

SCORERS = {  # how a template script prints its own validation score (the harness's score is the one that counts)
    "accuracy": "accuracy_score(y, oof)", "f1": "f1_score(y, oof)", "f1_macro": "f1_score(y, oof, average='macro')",
    "qwk": "cohen_kappa_score(y, oof, weights='quadratic')", "roc_auc": "roc_auc_score(y, oof)",
    "rmse": "mean_squared_error(y, oof) ** 0.5", "rmsle": "mean_squared_log_error(y, oof.clip(0)) ** 0.5",
    "mae": "mean_absolute_error(y, oof)",
}


def skeleton(task: Task) -> str:
    """A few lines showing the val_predictions.csv contract in this task's own columns: small models get the
    ids right from an example far more often than from a rule."""
    kind, cols, idc = get_metric(task.metric).kind, task.submission_columns, task.id_column
    if kind == "probability" and len(cols) > 1:
        predict = "model.predict_proba(X.iloc[va])"
        frame = f'pd.DataFrame(oof, columns=[str(c) for c in model.classes_]).assign({idc}=train["{idc}"].values)'
        init = f"oof = np.zeros((len(train), {len(cols)}))"
    else:
        predict = "model.predict_proba(X.iloc[va])[:, 1]" if kind == "probability" else "model.predict(X.iloc[va])"
        # Labels keep the target's own type: an object array of ints would make sklearn's scorers see "unknown"
        # targets (and f1_score raise) after val_predictions.csv is written and before the submission is.
        init = ("oof = np.zeros(len(train))" if kind != "label" else
                "oof = np.empty(len(train), dtype=y.to_numpy().dtype)")
        frame = f'pd.DataFrame({{"{idc}": train["{idc}"], "{cols[0]}": oof}})'
    target = task.target_columns[0]
    dropped = ", ".join(f'"{c}"' for c in [idc, *task.target_columns])
    return (f'X = train.drop(columns=[{dropped}])\n'
            f'y = train["{target}"]\n{init}\n'
            f"for tr, va in KFold(5, shuffle=True, random_state=SEED).split(X):\n"
            f"    model.fit(X.iloc[tr], y.iloc[tr])\n    oof[va] = {predict}\n"
            f'{frame}.to_csv("val_predictions.csv", index=False)')


def format_rule(task: Task) -> str:
    kind = get_metric(task.metric).kind
    if kind == "probability" and len(task.submission_columns) > 1:
        return ("Predict probabilities: one column per class named as in the sample submission, each row summing "
                "to 1 (write full precision).")
    if kind == "probability":
        return f"Predict the probability of the positive class in column {task.submission_columns[0]!r}."
    if kind == "label":
        return "Predict labels with the same values and type as the target column."
    return "Predict numbers on the target's scale."


def model_code(metric, ensemble: bool) -> tuple[str, str]:
    """The body of the template's make_model() and the sklearn.ensemble names it imports."""
    regression = metric.kind == "regression"
    learner = "HistGradientBoostingRegressor" if regression else "HistGradientBoostingClassifier"
    core, learners = f"{learner}(random_state=SEED)", learner
    if ensemble:
        voting = "VotingRegressor" if regression else "VotingClassifier"
        trees = "ExtraTreesRegressor" if regression else "ExtraTreesClassifier"
        core = (f'{voting}([("gbm", {learner}(random_state=SEED)),\n'
                f'                   ("trees", {trees}(n_estimators=300, min_samples_leaf=2, n_jobs=2, '
                f'random_state=SEED))]{"" if regression else ", voting=" + chr(34) + "soft" + chr(34)})')
        learners = f"{learner}, {trees}, {voting}"
    if metric.name == "rmsle":  # fit log1p(target), predict back on its scale: never below 0, where RMSLE breaks
        return (f"return TransformedTargetRegressor({core}, func=np.log1p,\n"
                "                                      inverse_func=lambda z: np.clip(np.expm1(z), 0, None))"), learners
    return f"return {core}", learners


def output_code(task: Task, metric) -> tuple[str, str, str]:
    """The template's test prediction, its submission write and its own validation score, in this task's shape."""
    idc, cols = task.id_column, task.submission_columns
    if metric.kind == "probability" and len(cols) > 1:
        write = (f'sub = pd.DataFrame(pred, columns=[str(c) for c in model.classes_])\n'
                 f'sub.insert(0, "{idc}", test["{idc}"].values)\nsub.to_csv("{task.submission_file}", index=False)')
        score = "log_loss(y, oof, labels=model.classes_)" if metric.name == "log_loss" else \
            "roc_auc_score(y, oof, multi_class='ovr')"
        return "model.predict_proba(X_test)", write, score
    predict = "model.predict_proba(X_test)[:, 1]" if metric.kind == "probability" else "model.predict(X_test)"
    write = f'pd.DataFrame({{"{idc}": test["{idc}"], "{cols[0]}": pred}}).to_csv("{task.submission_file}", index=False)'
    score = "log_loss(y, oof)" if metric.name == "log_loss" else SCORERS.get(metric.name, "float('nan')")
    return predict, write, score


def baseline_template(task: Task, debug_rows: int = 2000, ensemble: bool = False) -> str:
    """A complete script that already follows every rule, for the draft to start from. ensemble: gradient-boosted
    trees averaged with extra trees (soft voting for classes), a different kind of model whose errors differ."""
    metric = get_metric(task.metric)
    make, learners = model_code(metric, ensemble)
    idc, targets = task.id_column, task.target_columns
    predict, write, score = output_code(task, metric)
    scorer = score.split("(")[0]
    metrics_import = f"from sklearn.metrics import {scorer}\n" if scorer != "float" else ""
    compose_import = "from sklearn.compose import TransformedTargetRegressor\n" if metric.name == "rmsle" else ""
    lines = skeleton(task).split("\n")[2:]  # X and y are built above from the encoded features
    lines = [line.replace("model.fit", "model = make_model()\n    model.fit") for line in lines]
    dropped = ", ".join(f'"{t}"' for t in targets)
    approach = ("gradient-boosted trees and extra trees, averaged, on every column" if ensemble else
                "gradient-boosted trees on every column (replace with yours)")
    return f"""# Approach: {approach}
import os
import numpy as np
import pandas as pd
from sklearn.ensemble import {learners}
{compose_import}{metrics_import}from sklearn.model_selection import KFold

DATA_DIR = os.environ["GOME_DATA_DIR"]
SEED = int(os.environ.get("GOME_SEED", "0"))
train = pd.read_csv(os.path.join(DATA_DIR, "{task.train_file}"))
test = pd.read_csv(os.path.join(DATA_DIR, "{task.test_file}"))
if os.environ.get("GOME_DEBUG") == "1":  # a quick first run: the same code on a sample of train
    train = train.sample(n=min(len(train), {debug_rows}), random_state=SEED).reset_index(drop=True)

# Features: every column but the id and the target; categories one-hot encoded over train and test together.
full = pd.concat([train.drop(columns=[{dropped}]), test]).drop(columns=["{idc}"])
wide = [c for c in full.columns if full[c].dtype == object and full[c].nunique() > 50]
full = pd.get_dummies(full.drop(columns=wide), dummy_na=True).astype(float)
full = full.fillna(full.median())
X, X_test = full.iloc[: len(train)].reset_index(drop=True), full.iloc[len(train):].reset_index(drop=True)
y = train["{targets[0]}"]


def make_model():
    {make}


{chr(10).join(lines)}
try:  # the script's own view; the harness scores val_predictions.csv itself
    print(f"validation score: {{{score}}}")
except Exception as e:
    print(f"validation score not computed here: {{e}}")

model = make_model()
model.fit(X, y)
pred = {predict}
{write}
"""


def blend_template(task: Task, candidates: list[str]) -> str:
    """A complete script that blends earlier experiments' predictions (read-only in GOME_CANDIDATES_DIR/<id>/):
    on the held-out rows every candidate predicted, and on the test set. Probabilities and numbers are averaged,
    labels put to a vote (ties to the first, best candidate)."""
    kind, idc, cols = get_metric(task.metric).kind, task.id_column, task.submission_columns
    combine = ("pd.concat(frames).groupby(level=0, sort=False).agg(lambda v: v.value_counts(sort=False).idxmax())"
               if kind == "label" else "sum(frames) / len(frames)")
    return f"""# Approach: blend of experiments {", ".join(candidates)} ({"vote" if kind == "label" else "mean"})
import os
import pandas as pd

CANDIDATES_DIR = os.environ["GOME_CANDIDATES_DIR"]
CANDIDATES = {candidates!r}  # best first
COLUMNS = {cols!r}


def read(candidate, name):
    frame = pd.read_csv(os.path.join(CANDIDATES_DIR, candidate, name))
    frame["{idc}"] = frame["{idc}"].astype(str)
    return frame.set_index("{idc}")[COLUMNS]


def blend(name):
    frames = [read(c, name) for c in CANDIDATES]
    common = frames[0].index
    for f in frames[1:]:
        common = common.intersection(f.index)  # rows every candidate predicted
    frames = [f.loc[common] for f in frames]
    return {combine}


for name in ("val_predictions.csv", "{task.submission_file}"):  # held-out rows, then the test set
    blended = blend(name).reset_index().rename(columns={{"index": "{idc}"}})
    blended.to_csv(name, index=False)
    print(name, "blended rows:", len(blended))
"""
