import json
from pathlib import Path

from gome.nodes.execute import execute
from gome.nodes.finalize import finalize
from gome.nodes.scripts import save_script
from gome.nodes.select import select
from tests.fakes.scripts import PLAIN_LOGREG


def test_select_picks_the_best_valid_candidate_across_traces():
    results = [{"best": {"id": "a", "score": 0.91, "score_source": "harness", "submission_valid": True}},
               {"best": {"id": "b", "score": 0.97, "score_source": "harness", "submission_valid": False}},
               {"best": {"id": "c", "score": 0.95, "score_source": "harness", "submission_valid": True}},
               {"best": None}]
    assert select({"task": {"direction": "maximize"}, "trace_results": results}, None)["selected"]["id"] == "c"
    assert select({"task": {"direction": "minimize"}, "trace_results": results}, None)["selected"]["id"] == "a"


def test_finalize_submits_the_selected_solution(trace_state, make_runtime):
    pending = save_script(trace_state["run_dir"], "0001", PLAIN_LOGREG, parent=None, plan={"kind": "draft"},
                          errors=[])
    last = execute({**trace_state, "pending": pending}, make_runtime()[0])["last"]
    selected = {**last, "trace": 0, "step": 0}
    out = finalize({**trace_state, "selected": selected, "trace_results": [
        {"best": selected, "stop_reason": "steps", "usage": {"llm_calls": 3}}]})
    assert out["status"] == "succeeded" and "roc_auc" in out["message"]
    run = json.loads((Path(trace_state["run_dir"]) / "run.json").read_text())
    assert run["status"] == "succeeded" and run["usage"] == {"llm_calls": 3} and run["stopped_by"] == ["steps"]
    assert (Path(trace_state["run_dir"]) / "best/submission.csv").exists()


def test_finalize_without_a_candidate_says_so(trace_state):
    out = finalize({**trace_state, "selected": None, "trace_results": []})
    assert out["status"] == "no_valid_submission"
