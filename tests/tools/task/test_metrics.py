import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from gome.tools.task.metrics import ScoringError, Truth, get_metric, score_frame

RNG = np.random.default_rng(7)
N = 300


def frames(y, pred_cols: dict, target="y"):
    ids = [f"r{i}" for i in range(len(y))]
    truth = pd.DataFrame({"id": ids, target: y})
    pred = pd.DataFrame({"id": ids, **pred_cols})
    return truth, pred


def score(name, truth, pred, cols, **kw):
    return score_frame(get_metric(name), truth, pred, id_column="id", target_columns=["y"],
                       prediction_columns=cols, **kw)


def test_accuracy_matches_sklearn():
    y, p = RNG.integers(0, 3, N), RNG.integers(0, 3, N)
    truth, pred = frames(y, {"y": p})
    assert score("accuracy", truth, pred, ["y"]) == pytest.approx(skm.accuracy_score(y, p))


def test_f1_binary_and_macro_match_sklearn():
    y, p = RNG.integers(0, 2, N), RNG.integers(0, 2, N)
    truth, pred = frames(y, {"y": p})
    assert score("f1", truth, pred, ["y"]) == pytest.approx(skm.f1_score(y, p))
    y3, p3 = RNG.integers(0, 4, N), RNG.integers(0, 4, N)
    truth, pred = frames(y3, {"y": p3})
    assert score("f1_macro", truth, pred, ["y"]) == pytest.approx(skm.f1_score(y3, p3, average="macro"))


def test_qwk_matches_sklearn_including_gaps_in_ratings():
    y = RNG.choice([0, 1, 2, 4, 5], N)
    p = np.clip(y + RNG.integers(-1, 2, N), 0, 5)
    truth, pred = frames(y, {"y": p})
    assert score("qwk", truth, pred, ["y"]) == pytest.approx(skm.cohen_kappa_score(y, p, weights="quadratic"))


def test_binary_auc_with_ties_matches_sklearn():
    y = RNG.integers(0, 2, N)
    prob = np.round(RNG.random(N) * 0.5 + 0.4 * y, 1)  # rounding makes many ties
    truth, pred = frames(y, {"y": prob})
    assert score("roc_auc", truth, pred, ["y"]) == pytest.approx(skm.roc_auc_score(y, prob))


def test_multiclass_auc_ovr_macro_matches_sklearn():
    y = RNG.integers(0, 3, N)
    prob = RNG.dirichlet([1, 1, 1], N)
    prob[np.arange(N), y] += 0.5
    prob /= prob.sum(1, keepdims=True)
    labels = np.array(["a", "b", "c"])
    truth, pred = frames(labels[y], {"a": prob[:, 0], "b": prob[:, 1], "c": prob[:, 2]})
    assert score("roc_auc", truth, pred, ["a", "b", "c"]) == pytest.approx(
        skm.roc_auc_score(y, prob, multi_class="ovr", average="macro"))


def test_log_loss_binary_and_multiclass_match_sklearn():
    y = RNG.integers(0, 2, N)
    p = np.clip(RNG.random(N) * 0.6 + 0.3 * y, 0.01, 0.99)
    truth, pred = frames(y, {"y": p})
    assert score("log_loss", truth, pred, ["y"]) == pytest.approx(skm.log_loss(y, p))
    y3 = RNG.integers(0, 3, N)
    prob = RNG.dirichlet([2, 2, 2], N)
    truth, pred = frames(np.array(["x", "y", "z"])[y3], {"x": prob[:, 0], "y": prob[:, 1], "z": prob[:, 2]},
                         target="label")
    got = score_frame(get_metric("log_loss"), truth, pred, id_column="id", target_columns=["label"],
                      prediction_columns=["x", "y", "z"])
    assert got == pytest.approx(skm.log_loss(y3, prob))


def test_regression_metrics_match_sklearn():
    y = RNG.random(N) * 100
    p = y + RNG.normal(0, 5, N).clip(-y)
    truth, pred = frames(y, {"y": p})
    assert score("rmse", truth, pred, ["y"]) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert score("rmsle", truth, pred, ["y"]) == pytest.approx(np.sqrt(skm.mean_squared_log_error(y, p)))
    assert score("mae", truth, pred, ["y"]) == pytest.approx(skm.mean_absolute_error(y, p))


def test_row_order_does_not_matter():
    y, p = RNG.integers(0, 2, N), RNG.random(N)
    truth, pred = frames(y, {"y": p})
    shuffled = pred.sample(frac=1, random_state=1)
    assert score("roc_auc", truth, shuffled, ["y"]) == pytest.approx(skm.roc_auc_score(y, p))


@pytest.mark.parametrize("mutate, message", [
    (lambda pred: pd.concat([pred, pred.iloc[:1]]), "duplicated ids"),
    (lambda pred: pred.iloc[1:], "have no prediction"),
    (lambda pred: pred.assign(id=["zz"] + list(pred.id[1:])), "not expected"),
    (lambda pred: pred.assign(y=[1.5] + list(pred.y[1:])), r"\[0, 1\]"),
    (lambda pred: pred.assign(y=[None] + list(pred.y[1:])), "missing or non-numeric"),
    (lambda pred: pred.rename(columns={"y": "p"}), "lack column"),
])
def test_grader_checks_refuse_bad_predictions(mutate, message):
    y, p = RNG.integers(0, 2, 50), RNG.random(50)
    truth, pred = frames(y, {"y": p})
    with pytest.raises(ScoringError, match=message):
        score("roc_auc", truth, mutate(pred), ["y"])


def test_multiclass_probabilities_must_sum_to_one():
    truth, pred = frames(np.array(["a", "b"] * 10), {"a": [0.6] * 20, "b": [0.5] * 20})
    with pytest.raises(ScoringError, match="do not sum to 1"):
        score("log_loss", truth, pred, ["a", "b"])


def test_validation_allows_a_subset_but_not_a_handful():
    y, p = RNG.integers(0, 2, 100), RNG.random(100)
    truth, pred = frames(y, {"y": p})
    assert 0 <= score("roc_auc", truth, pred.iloc[:40], ["y"], exact_ids=False, min_rows=10) <= 1
    with pytest.raises(ScoringError, match="at least 10"):
        score("roc_auc", truth, pred.iloc[:5], ["y"], exact_ids=False, min_rows=10)


def test_labels_compare_across_csv_types():
    truth, pred = frames(np.array([1, 0, 1]), {"y": ["1.0", "0", "1"]})
    assert score("accuracy", truth, pred, ["y"]) == 1.0


def test_unknown_metric_and_aliases():
    assert get_metric("AUC").name == "roc_auc"
    assert get_metric("quadratic_weighted_kappa").name == "qwk"
    with pytest.raises(KeyError, match="unknown metric"):
        get_metric("bleu")


@pytest.mark.parametrize("name, draw", [
    ("roc_auc", lambda rng: (rng.integers(0, 2, N), rng.random(N))),
    ("accuracy", lambda rng: (rng.integers(0, 3, N), rng.integers(0, 3, N))),
    ("rmse", lambda rng: (rng.random(N) * 100, rng.random(N) * 100)),
])
def test_an_indexed_truth_scores_exactly_as_the_frame_it_was_built_from(name, draw):
    y, p = draw(np.random.default_rng(3))
    truth, pred = frames(y, {"y": p})
    held = pred.sample(frac=0.3, random_state=2)  # validation: a shuffled subset of the truth's rows
    indexed = Truth(truth, "id", ["y"])
    assert len(indexed) == N
    for kw in ({}, {"exact_ids": False}):
        rows = pred if not kw else held
        assert score(name, indexed, rows, ["y"], **kw) == score(name, truth, rows, ["y"], **kw)


def test_a_truth_without_its_target_column_is_refused_by_name():
    truth, pred = frames(RNG.integers(0, 2, 20), {"y": RNG.random(20)}, target="label")
    with pytest.raises(ScoringError, match=r"truth lack column\(s\) \['y'\]"):
        Truth(truth, "id", ["y"])
    with pytest.raises(ScoringError, match=r"truth lack column\(s\) \['y'\]"):
        score("roc_auc", truth, pred, ["y"])


def test_integer_ids_match_ids_padded_with_spaces():
    y, p = RNG.integers(0, 2, 30), RNG.random(30)
    truth = pd.DataFrame({"id": np.arange(30), "y": y})
    padded = pd.DataFrame({"id": [f" {i}" for i in range(30)], "y": p})  # a CSV writer padded the ids
    expected = skm.roc_auc_score(y, p)
    assert score("roc_auc", Truth(truth, "id", ["y"]), padded, ["y"]) == pytest.approx(expected)
    assert score("roc_auc", padded.assign(y=y), truth.assign(y=p), ["y"]) == pytest.approx(expected)


def test_labels_are_read_as_the_scored_rows_hold_them_though_train_has_gaps():
    # A train set with an unlabelled row reads its label column as floats (1.0, NaN); the rows a script held out
    # are whole numbers, and predictions of 0 and 1 must match them, as they would in a train set without gaps.
    truth = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "y": [0, 1, None, 1, 0]})
    pred = pd.DataFrame({"id": ["e", "a", "b"], "y": [0, 0, 1]})
    indexed = Truth(truth, "id", ["y"])
    assert score("accuracy", indexed, pred, ["y"], exact_ids=False) == 1.0
    assert score("accuracy", indexed, pred.assign(y=["0", "1", "1"]), ["y"], exact_ids=False) == pytest.approx(2 / 3)
    text = pd.DataFrame({"id": ["a", "b", "c"], "y": [" cat", "dog ", "1.5"]})  # not numbers: compared as text
    assert score("accuracy", Truth(text, "id", ["y"]), pd.DataFrame({"id": ["b", "a"], "y": ["dog", "cat"]}),
                 ["y"], exact_ids=False) == 1.0


def test_an_id_that_train_holds_twice_is_a_scoring_error_and_the_others_still_score():
    truth = pd.DataFrame({"id": [1, 1, 2, 3, 4], "y": [0, 1, 1, 0, 1]})
    for name in ("roc_auc", "rmse"):
        with pytest.raises(ScoringError, match=r"id '1' has 2 rows in the truth"):
            score(name, truth, pd.DataFrame({"id": [1, 3, 4], "y": [0.2, 0.1, 0.9]}), ["y"], exact_ids=False)
    pred = pd.DataFrame({"id": [2, 3, 4], "y": [0.9, 0.1, 0.8]})
    assert score("roc_auc", truth, pred, ["y"], exact_ids=False) == 1.0
    assert score("rmse", truth, pred, ["y"], exact_ids=False) == pytest.approx(np.sqrt((0.01 + 0.01 + 0.04) / 3))


def test_integer_labels_past_two_to_the_53_are_read_exactly_beside_text():
    # "unknown" makes train's whole column floats; the scored rows are integers, read exactly as they are
    truth = pd.DataFrame({"id": ["a", "b", "c"], "y": ["9007199254740993", "unknown", "3"]})
    pred = pd.DataFrame({"id": ["a", "c"], "y": [9007199254740993, 3]})
    assert score("accuracy", Truth(truth, "id", ["y"]), pred, ["y"], exact_ids=False) == 1.0
    assert score("accuracy", truth, pred.assign(y=[9007199254740992, 3]), ["y"], exact_ids=False) == 0.5


def test_regression_truth_with_a_missing_answer_among_the_scored_rows_names_its_id():
    truth = pd.DataFrame({"id": ["a", "b", "c"], "y": [1.0, None, 3.0]})
    assert score("rmse", truth, pd.DataFrame({"id": ["c", "a"], "y": [3.0, 1.0]}), ["y"], exact_ids=False) == 0.0
    with pytest.raises(ScoringError, match=r"truth: 1 rows have missing or non-numeric values \(first id: 'b'\)"):
        score("rmse", truth, pd.DataFrame({"id": ["a", "b"], "y": [1.0, 2.0]}), ["y"], exact_ids=False)


def test_a_missing_id_is_missing_whatever_the_column_type():
    """Nullable integers (Int64) keep a missing id missing, as text columns do: it matches the other side's."""
    truth = pd.DataFrame({"id": pd.array([1, None, 3], dtype="Int64"), "y": [1.0, 2.0, 3.0]})
    pred = pd.DataFrame({"id": ["1", None, "3"], "y": [1.0, 2.0, 3.0]})
    assert score("rmse", truth, pred, ["y"]) == 0.0


def test_an_id_train_holds_twice_cannot_be_scored_but_the_others_can():
    truth = pd.DataFrame({"id": ["a", "b", "b", "c"], "y": [0.0, 1.0, 2.0, 3.0]})
    indexed = Truth(truth, "id", ["y"])
    assert score("rmse", indexed, pd.DataFrame({"id": ["c", "a"], "y": [3.0, 0.0]}), ["y"], exact_ids=False) == 0.0
    with pytest.raises(ScoringError, match="'b' has 2 rows in the truth"):
        score("rmse", indexed, pd.DataFrame({"id": ["a", "b"], "y": [0.0, 1.0]}), ["y"], exact_ids=False)
    gaps = Truth(pd.DataFrame({"id": ["a", None, None, ""], "y": [0.0, 1.0, 2.0, 3.0]}), "id", ["y"])
    with pytest.raises(ScoringError, match="'None' has 2 rows in the truth"):  # missing twice: no one answer
        score("rmse", gaps, pd.DataFrame({"id": ["a", None], "y": [0.0, 1.0]}), ["y"], exact_ids=False)
    assert score("rmse", gaps, pd.DataFrame({"id": [""], "y": [3.0]}), ["y"], exact_ids=False, min_rows=1) == 0.0
