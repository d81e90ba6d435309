import pytest

from gome.nodes.compute_gradient import FALLBACKS, choose, compute_gradient, dropped_why, fallback_gradient
from gome.nodes.scripts import save_script
from gome.state.records import Experiment, Gradient, Hypothesis
from tests.fakes.scripts import BUGGY_DRAFT, diagnosis, hypotheses

FAILED = {"id": "0001", "status": "error", "score": None, "submission_valid": False}


def test_after_a_failure_the_fix_is_chosen_even_if_less_exciting():
    fix = Hypothesis(change="fix KeyError", step_size="minimal", impact=3, confidence=3, novelty=1, cost=1)
    bold = Hypothesis(change="stack five models", step_size="rewrite", impact=5, confidence=4, novelty=5, cost=2)
    assert choose([bold, fix], failed=True) is fix
    assert choose([bold, fix], failed=False) is bold


@pytest.mark.parametrize(("change", "dropped"), [
    ("Add a check for missing data before fitting the model", True),
    ("Add a check that all labels are integers", True),
    ("Wrap training in try/except to handle errors", True),
    ("Add logging of the fold scores", True),
    ("Check for missing values and impute them with the median", False),  # names a change to the data
    ("Try a shallow decision tree", False),
    ("Log-transform the target", False),
    ("Raise the learning rate to 0.1", False),
    ("Print the feature importances", True),
    # a guard or a log later in the sentence is a detail of a real change
    ("Use LightGBM with early stopping, printing the best iteration", False),
    ("Add interaction features between age and fare, and check their correlation", False),
    ("Train CatBoost on the categorical columns and silence its warnings", False),
    ("Add a cross-validation check with GroupKFold", False),
])
def test_a_proposal_that_changes_no_prediction_is_dropped_once_a_script_works(change, dropped):
    h = Hypothesis(change=change, component="model")
    assert (dropped_why(h, []) == "it changes no prediction") is dropped
    assert dropped_why(h, [], failed=True) is None  # while nothing works, a guard may be the fix


def test_gradient_from_the_diagnosis_and_feedback(trace_state, make_runtime):
    save_script(trace_state["run_dir"], "0001", BUGGY_DRAFT, parent=None, plan={"kind": "draft"}, errors=[])
    runtime, model, _ = make_runtime([hypotheses(("Use column 'benign'", "data", "minimal", 5),
                                                 ("Gradient boosting", "model", "rewrite", 4))])
    state = {**trace_state, "last": FAILED, "diagnosis": {"source": "llm", **diagnosis("bug", False, "KeyError")},
             "feedback": [{"step": 0, "id": "0001", "hypothesis": "draft", "status": "error", "score": None,
                           "accepted": False, "reason": "run failed"}]}
    g = compute_gradient(state, runtime)["gradient"]
    assert g["hypothesis"]["change"] == "Use column 'benign'" and g["alternatives"] == ["Gradient boosting"]
    prompt = model.calls[0]["prompt"]
    assert "KeyError" in prompt and "step 0: draft -> error" in prompt and 'TARGET = "target"' in prompt


def test_garbage_reply_gives_a_fallback_fix(trace_state, make_runtime):
    runtime, _, _ = make_runtime(["no idea"] * 4)
    state = {**trace_state, "last": FAILED, "diagnosis": None}
    g = compute_gradient(state, runtime)["gradient"]
    assert g["source"] == "fallback" and g["hypothesis"]["step_size"] == "minimal"


def test_the_fallback_idea_is_not_one_the_run_refuted():
    def refuted(h: Hypothesis) -> Experiment:
        return Experiment(id="0002", trace=0, step=1, status="ok", gradient=Gradient(hypothesis=h), verdict="refuted")

    assert fallback_gradient(False).hypothesis == FALLBACKS[0]
    # the stock tuning idea, and the model's own wording of it, were refuted: the next stock idea, of another component
    tuned = refuted(Hypothesis(change="Tune the model's main hyperparameters: more trees, a lower learning rate",
                               component="model"))
    g = fallback_gradient(False, [tuned])
    assert g.hypothesis == FALLBACKS[1] and g.hypothesis.component == "features" and g.source == "fallback"
    assert fallback_gradient(False, [refuted(h) for h in FALLBACKS]).hypothesis == FALLBACKS[-1]  # never no step
    assert fallback_gradient(True, [tuned]).hypothesis.step_size == "minimal"  # nothing works: fix it
