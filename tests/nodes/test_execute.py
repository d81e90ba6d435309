from pathlib import Path

import pytest

from gome.nodes.execute import execute
from gome.nodes.scripts import save_script
from tests.fakes.scripts import BUGGY_DRAFT, PLAIN_LOGREG

SELF_REPORT_ONLY = PLAIN_LOGREG.replace('.to_csv("val_predictions.csv", index=False)', '.head(0)')


def run_script(state, runtime, code):
    pending = save_script(state["run_dir"], "0001", code, parent=None, plan={"kind": "draft"}, errors=[])
    return execute({**state, "pending": pending}, runtime)["last"]


def test_harness_scores_held_out_predictions(trace_state, make_runtime):
    last = run_script(trace_state, make_runtime()[0], PLAIN_LOGREG)
    assert last["status"] == "ok" and last["score_source"] == "harness"
    assert 0.95 < last["score"] < 1.0 and last["submission_valid"]
    folder = Path(trace_state["run_dir"]) / "experiments" / "0001"
    printed = float((folder / "stdout.txt").read_text().split("validation score:")[1])
    assert last["score"] == pytest.approx(printed, abs=1e-5)  # the harness agrees with sklearn in the script


def test_self_reported_score_is_only_a_marked_fallback(trace_state, make_runtime):
    last = run_script(trace_state, make_runtime()[0], SELF_REPORT_ONLY)
    assert last["score_source"] == "self_reported" and last["val_error"] == "val_predictions.csv was not written"


def test_crash_is_recorded_with_its_log(trace_state, make_runtime):
    last = run_script(trace_state, make_runtime()[0], BUGGY_DRAFT)
    assert last["status"] == "error" and last["score"] is None and not last["submission_valid"]
    assert "KeyError: 'target'" in (Path(trace_state["run_dir"]) / "experiments/0001/stderr.txt").read_text()


def test_no_script_runs_nothing(trace_state, make_runtime):
    pending = save_script(trace_state["run_dir"], "0001", None, parent=None, plan={"kind": "draft"},
                          errors=["script: no ```python block"])
    last = execute({**trace_state, "pending": pending}, make_runtime()[0])["last"]
    assert last["status"] == "no_script" and "python block" in last["detail"]


def test_a_sandbox_that_fails_to_start_is_a_recorded_error(trace_state, make_runtime):
    class Broken:
        def run(self, *args, **kwargs):
            raise OSError("no space left on device")

    runtime = make_runtime()[0]
    runtime.context.executor = Broken()
    last = run_script(trace_state, runtime, PLAIN_LOGREG)
    assert last["status"] == "error" and last["detail"] == "the sandbox failed to start"
    assert "no space left" in (Path(trace_state["run_dir"]) / "experiments/0001/stderr.txt").read_text()
