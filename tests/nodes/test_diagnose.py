import json
from pathlib import Path

from gome.nodes.diagnose import diagnose, fallback_diagnosis
from gome.nodes.execute import execute
from gome.nodes.scripts import save_script
from tests.fakes.scripts import BUGGY_DRAFT, PLAIN_LOGREG, SCALED_LOGREG, diagnosis


def ran(state, runtime, exp_id, code):
    pending = save_script(state["run_dir"], exp_id, code, parent=None, plan={"kind": "draft"}, errors=[])
    return execute({**state, "pending": pending}, runtime)["last"]


def test_diagnosis_sees_code_log_and_scores(trace_state, make_runtime):
    runtime, model, _ = make_runtime([diagnosis("bug", False, "KeyError on the target column")])
    last = ran(trace_state, runtime, "0001", BUGGY_DRAFT)
    update = diagnose({**trace_state, "last": last}, runtime)
    assert update["diagnosis"]["outcome"] == "bug" and update["diagnosis"]["source"] == "llm"
    prompt = model.calls[0]["prompt"]
    assert "KeyError: 'target'" in prompt and 'TARGET = "target"' in prompt and "status: error" in prompt
    saved = json.loads((Path(trace_state["run_dir"]) / "experiments/0001/diagnosis.json").read_text())
    assert saved["summary"] == "KeyError on the target column"


def test_diff_against_the_best_is_shown(trace_state, make_runtime):
    runtime, model, _ = make_runtime([diagnosis("ran", True, "better")])
    best = ran(trace_state, runtime, "0001", PLAIN_LOGREG)
    last = ran(trace_state, runtime, "0002", SCALED_LOGREG)
    diagnose({**trace_state, "last": last, "best": best}, runtime)
    prompt = model.calls[0]["prompt"]
    assert "+from sklearn.preprocessing import StandardScaler" in prompt
    assert f"best score so far: {best['score']:.6g} (harness)" in prompt


def test_unusable_reply_falls_back_to_the_harness(trace_state, make_runtime):
    runtime, _, _ = make_runtime(["???"] * 4)
    last = ran(trace_state, runtime, "0001", PLAIN_LOGREG)
    d = diagnose({**trace_state, "last": last}, runtime)["diagnosis"]
    assert d["source"] == "fallback" and d["outcome"] == "ran" and d["accept"] is True


def test_fallback_outcomes():
    assert fallback_diagnosis({"status": "timeout", "detail": "x"}, None, "maximize").outcome == "timeout"
    assert fallback_diagnosis({"status": "ok", "submission_valid": False, "submission_error": "bad ids"}, None,
                              "maximize").outcome == "bug"
    worse = {"status": "ok", "submission_valid": True, "score": 0.5, "score_source": "harness"}
    assert not fallback_diagnosis(worse, {"score": 0.9, "score_source": "harness"}, "maximize").accept
