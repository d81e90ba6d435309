"""The reference population of a task: >= 50 scikit-learn pipelines (varied models and settings) trained on the
task's train set and scored on its hidden test set. Their scores are the task's leaderboard, from which the
grader takes MLE-bench's medal and median thresholds. The trivial baseline (class prior / mean / median) is the
0 of the normalized score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import discriminant_analysis, dummy, ensemble, linear_model, naive_bayes, neighbors, neural_network, tree
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gome.evals.suite.catalog import TaskSpec
from gome.tools.task.metrics import get_metric, score_frame

SEED = 0
Factory = Callable[[], BaseEstimator]


def _grid(kind: str) -> list[tuple[str, Factory, bool]]:
    """(name, factory, needs_dense) for every reference model of a problem kind."""
    clf = kind != "regression"
    out: list[tuple[str, Factory, bool]] = []

    def add(name, factory, dense=False):
        out.append((name, factory, dense))

    if clf:
        for c in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0):
            add(f"logistic C={c}", lambda c=c: linear_model.LogisticRegression(C=c, max_iter=2000))
        add("gaussian naive bayes", naive_bayes.GaussianNB, True)
        add("linear discriminant", discriminant_analysis.LinearDiscriminantAnalysis, True)
        for strategy in ("prior", "stratified", "uniform"):
            add(f"dummy {strategy}", lambda s=strategy: dummy.DummyClassifier(strategy=s, random_state=SEED))
    else:
        for a in (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0):
            add(f"ridge alpha={a}", lambda a=a: linear_model.Ridge(alpha=a))
        for a in (0.001, 0.01, 0.1, 1.0):
            add(f"lasso alpha={a}", lambda a=a: linear_model.Lasso(alpha=a, max_iter=5000))
        for strategy in ("mean", "median"):
            add(f"dummy {strategy}", lambda s=strategy: dummy.DummyRegressor(strategy=s))
    forest = ensemble.RandomForestClassifier if clf else ensemble.RandomForestRegressor
    extra = ensemble.ExtraTreesClassifier if clf else ensemble.ExtraTreesRegressor
    boost = ensemble.HistGradientBoostingClassifier if clf else ensemble.HistGradientBoostingRegressor
    knn = neighbors.KNeighborsClassifier if clf else neighbors.KNeighborsRegressor
    single = tree.DecisionTreeClassifier if clf else tree.DecisionTreeRegressor
    mlp = neural_network.MLPClassifier if clf else neural_network.MLPRegressor
    for n in (25, 100):
        for depth in (2, 4, 8, None):
            add(f"random forest n={n} depth={depth}",
                lambda n=n, d=depth: forest(n_estimators=n, max_depth=d, n_jobs=2, random_state=SEED))
    for depth in (4, None):
        for leaf in (1, 5):
            add(f"extra trees depth={depth} leaf={leaf}", lambda d=depth, leaf=leaf: extra(
                n_estimators=100, max_depth=d, min_samples_leaf=leaf, n_jobs=2, random_state=SEED))
    for lr in (0.03, 0.1, 0.3):
        for leaves in (7, 31):
            for iters in (50, 200):
                add(f"gradient boosting lr={lr} leaves={leaves} iters={iters}", lambda lr=lr, lv=leaves, it=iters:
                    boost(learning_rate=lr, max_leaf_nodes=lv, max_iter=it, random_state=SEED), True)
    for k in (1, 3, 5, 15, 31, 63):
        add(f"k-nearest neighbours k={k}", lambda k=k: knn(n_neighbors=k))
    for depth in (1, 2, 3, 5, 8, None):
        add(f"decision tree depth={depth}", lambda d=depth: single(max_depth=d, random_state=SEED))
    for hidden in ((32,), (64, 64)):
        for alpha in (1e-4, 1e-2):
            add(f"mlp hidden={hidden} alpha={alpha}", lambda h=hidden, a=alpha: mlp(
                hidden_layer_sizes=h, alpha=a, max_iter=300, early_stopping=True, random_state=SEED))
    return out


def features(spec: TaskSpec, frame: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """The model inputs of a train or test frame: every column but id and target; pixels for an image task."""
    if spec.modality == "image":
        from PIL import Image

        pixels = [np.asarray(Image.open(data_dir / "images" / f"{i}.png"), dtype=float).ravel() / 255
                  for i in frame["id"]]
        return pd.DataFrame(np.stack(pixels), columns=[f"p{k}" for k in range(len(pixels[0]))])
    return frame.drop(columns=["id", spec.target], errors="ignore")


def _preprocessor(spec: TaskSpec, x: pd.DataFrame, dense: bool) -> ColumnTransformer:
    text = [c for c in spec.text_columns if c in x.columns]
    numeric = [c for c in x.columns if c not in text and pd.api.types.is_numeric_dtype(x[c])]
    categorical = [c for c in x.columns if c not in text and c not in numeric]
    parts = [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
             ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                   OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=not dense)),
              categorical)]
    for c in text:
        vectorizer = TfidfVectorizer(min_df=2, max_features=5000, ngram_range=(1, 2), sublinear_tf=True)
        # Dense-only models get the text's first 64 latent directions instead of 5000 sparse columns.
        step = make_pipeline(vectorizer, TruncatedSVD(64, random_state=SEED)) if dense else vectorizer
        parts.append((f"text_{c}", step, c))
    return ColumnTransformer([p for p in parts if p[2]], sparse_threshold=0.0 if dense else 0.3)


def predictions(spec: TaskSpec, model: BaseEstimator, x_test: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """The submission columns (without id) of a fitted model, in the task's format."""
    metric = get_metric(spec.metric)
    if metric.kind == "regression":
        p = model.predict(x_test)
        return pd.DataFrame({spec.target: np.clip(p, 0, None) if spec.metric == "rmsle" else p})
    if metric.kind == "label":
        return pd.DataFrame({spec.target: model.predict(x_test)})
    prob = pd.DataFrame(model.predict_proba(x_test), columns=[str(c) for c in model.classes_])
    prob = prob.reindex(columns=classes, fill_value=0.0)
    if spec.kind == "binary":
        return pd.DataFrame({spec.target: prob[str(spec.positive_label)].to_numpy()})
    return prob.div(prob.sum(axis=1), axis=0)


def score(spec: TaskSpec, test_ids: pd.Series, answers: pd.DataFrame, pred: pd.DataFrame) -> float:
    sub = pd.concat([pd.DataFrame({"id": test_ids.to_numpy()}), pred.reset_index(drop=True)], axis=1)
    return score_frame(get_metric(spec.metric), answers, sub, id_column="id", target_columns=[spec.target],
                       prediction_columns=[c for c in sub.columns if c != "id"],
                       positive_label=spec.positive_label)


def leaderboard(spec: TaskSpec, train: pd.DataFrame, test: pd.DataFrame, answers: pd.DataFrame, data_dir: Path,
                classes: list[str], limit: int | None = None) -> pd.DataFrame:
    """Fit every reference pipeline and score it on the hidden test set: one row per pipeline, best first."""
    x_train, x_test = features(spec, train, data_dir), features(spec, test, data_dir)
    y = train[spec.target].astype(str) if spec.kind != "regression" else train[spec.target]
    rows = []
    for name, factory, dense in _grid(spec.kind)[:limit]:
        model = factory()
        if spec.metric == "rmsle":  # fit the log of the target, as anyone scored by RMSLE would
            model = TransformedTargetRegressor(model, func=np.log1p, inverse_func=np.expm1, check_inverse=False)
        pipe = make_pipeline(_preprocessor(spec, x_train, dense), model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and small-class warnings of weak settings are expected
            pipe.fit(x_train, y)
            rows.append({"teamName": name, "score": round(score(spec, test["id"], answers,
                                                                predictions(spec, pipe, x_test, classes)), 6)})
    board = pd.DataFrame(rows)
    return board.sort_values("score", ascending=get_metric(spec.metric).direction == "minimize", kind="stable")


def trivial_score(spec: TaskSpec, train: pd.DataFrame, test: pd.DataFrame, answers: pd.DataFrame,
                  classes: list[str]) -> float:
    """The score of knowing nothing but the training target: class prior, majority class, mean or median."""
    metric = get_metric(spec.metric)
    y = train[spec.target]
    n = len(test)
    if metric.kind == "regression":
        if spec.metric == "mae":
            value = float(y.median())
        elif spec.metric == "rmsle":
            value = float(np.expm1(np.log1p(y).mean()))
        else:
            value = float(y.mean())
        pred = pd.DataFrame({spec.target: np.full(n, value)})
    elif metric.kind == "label":
        pred = pd.DataFrame({spec.target: [y.astype(str).mode().iloc[0]] * n})
    else:
        prior = y.astype(str).value_counts(normalize=True).reindex(classes, fill_value=0.0)
        if spec.kind == "binary":
            pred = pd.DataFrame({spec.target: np.full(n, prior[str(spec.positive_label)])})
        else:
            pred = pd.DataFrame(np.tile(prior.to_numpy(), (n, 1)), columns=classes)
    return round(score(spec, test["id"], answers, pred), 6)
