import json
from pathlib import Path

import pytest

from gome.nodes.checkpoint import checkpoint
from gome.nodes.execute import execute
from gome.nodes.judge import decide
from gome.nodes.memory import namespace as memory_namespace
from gome.nodes.scripts import save_script
from tests.fakes.scripts import PLAIN_LOGREG, diagnosis

OK = {"status": "ok", "submission_valid": True, "score": 0.95, "score_source": "harness"}
BEST = {"id": "0001", "score": 0.9, "score_source": "harness"}
FINE = {"accept": True, "validation_aligned": True, "leakage": False, "reason": "better"}


@pytest.mark.parametrize("last, diag, best, accepted, why", [
    (OK, FINE, BEST, True, "new best"),
    (OK, {**FINE, "accept": False}, None, True, "first working solution"),
    (OK, {**FINE, "accept": False, "reason": "overfits", "problems": [{"description": "fits the validation rows"}]},
     BEST, False, "diagnosis rejects it: overfits"),
    # a rejection that names no problem, or says the run crashed when the harness saw it finish, is not a veto
    (OK, {**FINE, "accept": False, "reason": "not sure"}, BEST, True, "new best"),
    (OK, {**FINE, "accept": False, "outcome": "bug", "reason": "MemoryError",
          "problems": [{"description": "out of memory"}]}, BEST, True, "new best"),
    (OK, {**FINE, "leakage": True}, BEST, False, "leakage"),
    (OK, {**FINE, "validation_aligned": False}, None, False, "not aligned"),
    ({**OK, "score": 0.8}, FINE, BEST, False, "does not beat"),
    ({**OK, "status": "timeout", "detail": "killed"}, FINE, None, False, "run failed (timeout)"),
    ({**OK, "submission_valid": False, "submission_error": "bad ids"}, FINE, None, False, "invalid submission"),
    ({**OK, "score": None, "val_error": "not written"}, FINE, None, False, "no validation score"),
])
def test_decide(last, diag, best, accepted, why):
    ok, reason = decide(last, diag, best, "maximize")
    assert ok is accepted and why in reason


def test_accepted_update_is_recorded_promoted_and_remembered(trace_state, make_runtime):
    runtime, _, events = make_runtime()
    gradient = {"hypothesis": {"change": "scale features", "component": "features", "rationale": "",
                               "step_size": "moderate", "impact": 4, "confidence": 4, "novelty": 3, "cost": 2},
                "alternatives": [], "source": "llm"}
    pending = save_script(trace_state["run_dir"], "0002", PLAIN_LOGREG, parent="0001", plan={"kind": "update"},
                          errors=[])
    state = {**trace_state, "step": 1, "pending": pending, "gradient": gradient,
             "best": {"id": "0001", "score": 0.5, "score_source": "harness"},
             "diagnosis": {"source": "llm", **diagnosis("ran", True, "scaled")}}
    state["last"] = execute(state, runtime)["last"]
    update = checkpoint(state, runtime)

    assert update["best"]["id"] == "0002" and update["step"] == 2 and update["stop_reason"] is None
    run = Path(trace_state["run_dir"])
    record = json.loads((run / "experiments/0002/metrics.json").read_text())
    assert record["accepted"] and record["improved_best"] and record["hypothesis"] == "scale features"
    assert (run / "best/solution.py").read_text() == PLAIN_LOGREG
    assert (run / "best/submission.csv").exists()
    assert json.loads((run / "run.json").read_text())["steps"][0]["id"] == "0002"
    [item] = runtime.store.search(memory_namespace(trace_state["run_id"]))
    assert item.value["change"] == "scale features" and item.value["gain"] == pytest.approx(
        state["last"]["score"] - 0.5)
    assert [e["event"] for e in events] == ["step_started", "step"] and events[1]["improved_best"] is True
    assert update["trace_results"][0]["best"]["id"] == "0002"


def test_last_step_sets_the_stop_reason(trace_state, make_runtime):
    runtime, _, _ = make_runtime()
    pending = save_script(trace_state["run_dir"], "0004", None, parent=None, plan={"kind": "update"}, errors=["x"])
    state = {**trace_state, "step": 3, "pending": pending,
             "diagnosis": {"source": "fallback", **diagnosis("bug", False, "no script")}}
    state["last"] = execute(state, runtime)["last"]
    update = checkpoint(state, runtime)
    assert update["stop_reason"] == "steps" and "best" not in update
    assert update["feedback"][0]["accepted"] is False
    assert runtime.store.search(memory_namespace(trace_state["run_id"])) == []


def test_buggy_means_the_harness_saw_a_failure_except_that_tree_mode_trusts_a_review_that_names_a_problem():
    from gome.nodes.checkpoint import is_buggy

    worked = {"status": "ok", "submission_valid": True, "score": 0.98}
    said_bug = {"outcome": "bug", "problems": [{"description": "the validation split overlaps the training rows",
                                                "evidence": "train_test_split on X after fit", "component": "data"}]}
    assert not is_buggy(worked, said_bug, "gradient")  # a small model called a working run a bug
    assert is_buggy(worked, said_bug, "tree")
    # Seen with Qwen2.5-Coder-1.5B: "The script crashed and wrote no valid output." with no problem, on a run
    # that exited 0 and scored 0.823: the harness's facts win.
    assert not is_buggy(worked, {"outcome": "bug", "problems": []}, "tree")
    assert is_buggy({**worked, "status": "error"}, {"outcome": "ran"}, "gradient")


def test_tree_mode_accepts_a_working_run_whose_review_says_bug_without_naming_a_problem():
    bare_bug = {**FINE, "outcome": "bug", "summary": "The script crashed and did not write any valid output.",
                "problems": []}
    assert decide(OK, bare_bug, None, "maximize", "tree")[0]
    named = {**bare_bug, "problems": [{"description": "predicts the training labels", "evidence": "...",
                                       "component": "model"}]}
    ok, reason = decide(OK, named, None, "maximize", "tree")
    assert not ok and reason.startswith("diagnosed as buggy")
