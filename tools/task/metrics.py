"""Task metrics, computed the way a grader computes them, with the checks a grader applies.

Each metric is written out in numpy (and tested against scikit-learn's) so that the checks around it, not a
library default, decide what is a valid prediction: ids match, one row each, no missing values, probabilities
in range and summing to one.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

PROB_SUM_TOLERANCE = 1e-6  # MLE-bench's log-loss graders reject rows further from 1 than this
LOG_EPS = 1e-15


class ScoringError(ValueError):
    """Predictions a grader would refuse: the message says which check failed. It is clipped: it quotes what a
    script wrote (column names, ids), and it travels into records, prompts and events."""

    MAX_CHARS = 400

    def __init__(self, message: str):
        if len(message) > self.MAX_CHARS:
            message = message[: self.MAX_CHARS - 20] + " [... clipped]"
        super().__init__(message)


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Literal["maximize", "minimize"]
    kind: Literal["label", "probability", "regression"]
    fn: Callable[..., float]
    doc: str


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


def _f1_for(y: np.ndarray, p: np.ndarray, label) -> float:
    tp = np.sum((y == label) & (p == label))
    fp = np.sum((y != label) & (p == label))
    fn = np.sum((y == label) & (p != label))
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom else 0.0


def _f1_binary(y: np.ndarray, p: np.ndarray, positive) -> float:
    return _f1_for(y, p, positive)


def _f1_macro(y: np.ndarray, p: np.ndarray) -> float:
    labels = np.union1d(y, p)
    return float(np.mean([_f1_for(y, p, lab) for lab in labels]))


def _qwk(y: np.ndarray, p: np.ndarray) -> float:
    labels = np.union1d(y, p)
    n = len(labels)
    yi, pi = np.searchsorted(labels, y), np.searchsorted(labels, p)
    observed = np.zeros((n, n))
    np.add.at(observed, (yi, pi), 1)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    weights = (np.arange(n)[:, None] - np.arange(n)[None, :]) ** 2
    denom = np.sum(weights * expected)
    return float(1 - np.sum(weights * observed) / denom) if denom else 1.0


def _auc_binary(y01: np.ndarray, score: np.ndarray) -> float:
    pos = y01 == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ScoringError("ROC AUC needs both classes among the scored rows")
    _, where, counts = np.unique(score, return_inverse=True, return_counts=True)  # ties share their mean rank
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[where]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, prob: np.ndarray, classes: list[str]) -> float:
    """Binary: prob is (n, 1), the positive class's probability. Multiclass: one-vs-rest macro average."""
    if prob.shape[1] == 1:
        return _auc_binary((y == classes[0]).astype(int), prob[:, 0])
    return float(np.mean([_auc_binary((y == c).astype(int), prob[:, k]) for k, c in enumerate(classes)]))


def _log_loss(y: np.ndarray, prob: np.ndarray, classes: list[str]) -> float:
    if prob.shape[1] == 1:  # binary: the positive class's probability
        prob = np.column_stack([1 - prob[:, 0], prob[:, 0]])
        idx = (y == classes[0]).astype(int)
    else:
        lookup = {c: k for k, c in enumerate(classes)}
        idx = np.array([lookup[v] for v in y])
    p = np.clip(prob[np.arange(len(y)), idx], LOG_EPS, 1 - LOG_EPS)
    return float(-np.mean(np.log(p)))


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _rmsle(y: np.ndarray, p: np.ndarray) -> float:
    if (y < 0).any() or (p < 0).any():
        raise ScoringError("RMSLE is undefined for negative values (truth or prediction)")
    return float(np.sqrt(np.mean((np.log1p(y) - np.log1p(p)) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("accuracy", "maximize", "label", _accuracy, "share of exactly right labels"),
    Metric("f1", "maximize", "label", _f1_binary, "binary F1 of the positive label"),
    Metric("f1_macro", "maximize", "label", _f1_macro, "unweighted mean of per-label F1"),
    Metric("qwk", "maximize", "label", _qwk, "quadratic weighted Cohen's kappa of ordinal labels"),
    Metric("roc_auc", "maximize", "probability", _roc_auc, "area under the ROC curve (one-vs-rest macro)"),
    Metric("log_loss", "minimize", "probability", _log_loss, "cross-entropy of predicted probabilities"),
    Metric("rmse", "minimize", "regression", _rmse, "root mean squared error (mean over target columns)"),
    Metric("rmsle", "minimize", "regression", _rmsle, "root mean squared log error"),
    Metric("mae", "minimize", "regression", _mae, "mean absolute error"),
]}
ALIASES = {
    "auc": "roc_auc", "logloss": "log_loss", "multi_logloss": "log_loss", "binary_f1": "f1",
    "macro_f1": "f1_macro", "quadratic_weighted_kappa": "qwk", "kappa": "qwk",
}


def get_metric(name: str) -> Metric:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[key]


def _as_labels(col: pd.Series) -> np.ndarray:
    """Labels compared as text, so 1, 1.0 and '1' agree (CSV round trips change numeric types)."""
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all() and np.all(np.mod(num, 1) == 0):
        return num.astype("int64").astype(str).to_numpy()
    return col.astype(str).str.strip().to_numpy()


def id_texts(ids: pd.Series) -> np.ndarray:
    """Ids compared as text, stripped (a CSV may pad them), missing ones as None: an object array. Python's own
    str and strip: pandas' string methods and index building cost a fixed ~0.1 ms a call each, and gome scores at
    every step."""
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":  # numpy integers: nothing to strip or missing
        texts = [str(x) for x in ids.tolist()]
    else:
        texts = [x.strip() if isinstance(x, str) else None for x in ids.astype(str).tolist()]
    return np.array(texts, dtype=object)


class IdSet:
    """Known ids (id_texts) in their order, each one's first position, and how often those listed more than once
    are (a missing id, None, counts as one id)."""

    def __init__(self, texts: np.ndarray):
        self.texts, listed = texts, texts.tolist()
        self.first: dict = {}
        for i, t in enumerate(listed):
            self.first.setdefault(t, i)
        self.repeated = {} if len(self.first) == len(listed) else {t: n for t, n in Counter(listed).items() if n > 1}


def numbers(frame: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """The frame's columns (or these of them) as floats, NaN where a value is missing or not a number. Column by
    column: selecting a sub-frame costs pandas ~0.3 ms, and gome scores at every step."""
    columns = list(frame.columns) if columns is None else columns
    out = np.empty((len(frame), len(columns)))
    for k, name in enumerate(columns):
        col = frame[name]
        if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
            col = pd.to_numeric(col, errors="coerce")  # already numbers need no conversion
        out[:, k] = col.to_numpy(dtype=float)
    return out


def _no_missing(out: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    bad = np.isnan(out).any(axis=1)
    if bad.any():
        raise ScoringError(f"{what}: {int(bad.sum())} rows have missing or non-numeric values "
                           f"(first id: {ids[bad][0]!r})")
    return out


class Truth:
    """The answers indexed for scoring: the target columns by id (as text). Built once per version of train, it
    spares every step's scoring the whole train set's id conversion and index, and the targets' conversion to
    labels or numbers (the validation truth is the train set)."""

    def __init__(self, frame: pd.DataFrame, id_column: str, target_columns: list[str]):
        _check_columns(frame, [id_column, *target_columns], "truth")
        self.ids = IdSet(id_texts(frame[id_column]))
        self.targets = frame[list(target_columns)].set_axis(pd.Index(self.ids.texts, dtype=object))

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The positions of these ids (all known: check_ids said so). An id that train holds twice has no one
        answer: a ScoringError (train's other duplicated ids do not matter)."""
        first, repeated, listed = self.ids.first, self.ids.repeated, ids.tolist()
        for t in listed if repeated else ():
            if t in repeated:
                raise ScoringError(f"id {str(t)[:40]!r} has {repeated[t]} rows in the truth: its prediction cannot "
                                   "be matched to one answer")
        return np.fromiter((first[t] for t in listed), dtype=np.intp, count=len(listed))

    # cached_property holds a lock while it computes (Python 3.11): threads share one Truth.
    @functools.cached_property
    def floats(self) -> np.ndarray:
        """The targets as floats (NaN: missing or not a number), for regression."""
        return numbers(self.targets)

    @functools.cached_property
    def _labels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The first target as labels both ways _as_labels writes them (as integers, as stripped text) and, per
        row, whether it is a whole number: what _as_labels makes of any selection, reckoned once. None where the
        whole column would read integers less exactly than a selection: text among integers past 2**53 makes the
        column floats."""
        col = self.targets.iloc[:, 0]
        num = pd.to_numeric(col, errors="coerce")
        if num.dtype.kind == "f" and (num.abs() >= 2**53).any():
            return None
        whole = (num.notna() & (np.mod(num, 1) == 0)).to_numpy()
        as_int = num.where(whole, 0).astype("int64").astype(str).to_numpy()
        return as_int, col.astype(str).str.strip().to_numpy(), whole

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """_as_labels of the first target at these rows."""
        if self._labels is None:
            return _as_labels(self.targets.iloc[rows, 0])
        as_int, as_text, whole = self._labels
        return as_int[rows] if whole[rows].all() else as_text[rows]


def _check_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ScoringError(f"{what} lack column(s) {missing}; they have {_names(frame.columns)}")


def score_frame(
    metric: Metric,
    truth: pd.DataFrame | Truth,
    pred: pd.DataFrame,
    *,
    id_column: str,
    target_columns: list[str],
    prediction_columns: list[str],
    positive_label: str | None = None,
    exact_ids: bool = True,
    min_rows: int = 1,
) -> float:
    """Score predictions against the truth after a grader's checks. truth holds `id_column` and
    `target_columns` (or is them, indexed: a Truth); pred holds `id_column` and `prediction_columns` (the sample
    submission's columns; the class names for a multiclass probability metric). exact_ids: the id sets must be
    equal (test grading); otherwise pred's ids must be a subset (validation)."""
    if not isinstance(truth, Truth):
        truth = Truth(truth, id_column, target_columns)
    _check_columns(pred, [id_column, *prediction_columns], "predictions")
    ids = check_ids(pred[id_column], truth.ids, exact=exact_ids)
    if len(pred) < min_rows:
        raise ScoringError(f"only {len(pred)} rows predicted; at least {min_rows} are needed to score")
    rows = truth.rows(ids)

    if metric.kind == "regression":
        if len(prediction_columns) != len(target_columns):
            raise ScoringError(f"expected {len(target_columns)} prediction column(s), got {len(prediction_columns)}")
        y = _no_missing(truth.floats[rows], ids, "truth")
        p = _no_missing(numbers(pred, prediction_columns), ids, "predictions")
        return float(np.mean([metric.fn(y[:, k], p[:, k]) for k in range(y.shape[1])]))

    if len(target_columns) != 1:
        raise ScoringError(f"{metric.name} scores one target column, the task declares {target_columns}")
    y = truth.labels(rows)
    if metric.kind == "label":
        if any(pred[c].isna().any() for c in prediction_columns):
            raise ScoringError("predictions have missing values")
        p = _as_labels(pred[prediction_columns[0]])
        if metric.name == "f1":
            pos = positive_label if positive_label is not None else _default_positive(y)
            return metric.fn(y, p, str(pos))
        if metric.name == "qwk":
            try:
                return metric.fn(y.astype(float).astype(int), p.astype(float).astype(int))
            except ValueError as e:
                raise ScoringError(f"quadratic weighted kappa needs integer ratings: {e}") from None
        return metric.fn(y, p)

    prob = check_probabilities(_no_missing(numbers(pred, prediction_columns), ids, "predictions"))
    if prob.shape[1] == 1:
        classes = [str(positive_label) if positive_label is not None else _default_positive(y)]
    else:
        classes = [str(c) for c in prediction_columns]
        strays = sorted(set(y) - set(classes))
        if strays:
            raise ScoringError(f"truth labels {strays[:5]} have no probability column; columns are {classes}")
    return metric.fn(y, prob, classes)


def _names(columns, shown: int = 10) -> str:
    """A few column names, each clipped: what a message may quote of a header a script wrote."""
    names = [str(c)[:40] for c in list(columns)[:shown]]
    return repr(names) + (f" and {len(columns) - shown} more" if len(columns) > shown else "")


def check_ids(ids: pd.Series, expected: IdSet, *, exact: bool) -> np.ndarray:
    """A grader's id checks: one row per id, no unknown id, and (exact) no id left out. Returns the ids
    (id_texts)."""
    texts = id_texts(ids)
    listed = texts.tolist()
    seen = set(listed)  # set operations first; the lists that word an error only when there is one
    if len(seen) < len(listed):
        once: set = set()
        dups = [t for t in listed if t in once or once.add(t)]
        raise ScoringError(f"{len(dups)} duplicated ids (first: {str(dups[0])[:40]!r}); write one row per id")
    if not seen <= expected.first.keys():
        unknown = [t for t in listed if t not in expected.first]
        raise ScoringError(f"{len(unknown)} ids are not expected here (first: {str(unknown[0])[:40]!r})")
    if exact and len(seen) < len(expected.first):
        absent = [t for t in expected.first if t not in seen]
        raise ScoringError(f"{len(absent)} ids have no prediction (first: {str(absent[0])[:40]!r})")
    return texts


def check_probabilities(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1]; with one column per class, each row sums to 1."""
    if (prob < 0).any() or (prob > 1).any():
        raise ScoringError("probabilities must lie in [0, 1]")
    if prob.shape[1] > 1:
        sums = prob.sum(axis=1)
        off = np.abs(sums - 1) > PROB_SUM_TOLERANCE
        if off.any():
            raise ScoringError(f"{int(off.sum())} rows of probabilities do not sum to 1 "
                               f"(first: {sums[off][0]:.8f}); normalise each row")
    return prob


def _default_positive(y: np.ndarray) -> str:
    labels = sorted(set(y))
    if set(labels) <= {"0", "1"}:
        return "1"
    if set(labels) <= {"False", "True"}:
        return "True"
    raise ScoringError(f"binary labels {labels} need `positive_label` in task.toml")
