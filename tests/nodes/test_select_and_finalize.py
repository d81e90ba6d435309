import json
from pathlib import Path

from gome.nodes.execute import execute
from gome.nodes.finalize import finalize
from gome.nodes.scripts import save_script
from gome.nodes.select import candidates, rerun_order, select
from gome.state.records import RunConfig
from gome.tools.run.folder import RunFolder
from tests.fakes.scripts import PLAIN_LOGREG


def record(run: Path, exp_id: str, score, **kw):
    folder = run / "experiments" / exp_id
    folder.mkdir(parents=True)
    rec = {"id": exp_id, "trace": 0, "step": 0, "score": score, "score_source": "harness", "status": "ok",
           "submission_valid": True, "buggy": False, **kw}
    (folder / "metrics.json").write_text(json.dumps(rec))


def test_candidates_are_the_best_valid_runs_across_traces(tmp_path):
    record(tmp_path, "0001", 0.91)
    record(tmp_path, "0002", 0.97, submission_valid=False)
    record(tmp_path, "0003", 0.95, trace=1)
    record(tmp_path, "0004", 0.99, status="error", buggy=True)
    record(tmp_path, "0005", 0.99, score_source="self_reported")
    record(tmp_path, "0006", 0.93, trace=2)
    record(tmp_path, "0007", 0.999, buggy=True)  # valid and scored, but a tree diagnosis called it buggy
    assert [c["id"] for c in candidates(tmp_path, "maximize", 3)] == ["0003", "0006", "0001"]
    assert [c["id"] for c in candidates(tmp_path, "minimize", 2)] == ["0001", "0006"]
    assert [c["id"] for c in candidates(tmp_path, "maximize", 9)][-2:] == ["0005", "0007"]


def test_a_blend_is_re_run_after_its_parts_which_are_re_run_even_when_not_candidates(tmp_path):
    for exp_id, score in (("0001", 0.91), ("0002", 0.92), ("0003", 0.95)):
        record(tmp_path, exp_id, score)
    hypothesis = {"change": "blend", "component": "ensembling"}
    record(tmp_path, "0004", 0.97, intent="blend",
           gradient={"hypothesis": hypothesis, "source": "late-stage", "blend": ["0003", "0002", "0001"]})
    cands = candidates(tmp_path, "maximize", 2)
    assert [c["id"] for c in cands] == ["0004", "0003"]
    order = rerun_order(RunFolder(tmp_path), cands)
    assert [c["id"] for c in order] == ["0002", "0001", "0003", "0004"]  # parts only to be blended, then the two
    assert [c["intent"] for c in order[:2]] == ["part", "part"]


def test_a_run_whose_only_valid_submission_was_called_buggy_still_submits(tmp_path):
    record(tmp_path, "0001", 0.98, buggy=True)
    assert [c["id"] for c in candidates(tmp_path, "maximize", 3)] == ["0001"]


def test_without_reruns_the_best_single_score_is_selected(trace_state):
    run = Path(trace_state["run_dir"])
    record(run, "0001", 0.91)
    record(run, "0002", 0.95)
    cfg = RunConfig(select={"reruns": 0}).model_dump(mode="json")
    assert select({**trace_state, "config": cfg})["selected"]["id"] == "0002"
    assert json.loads((run / "select.json").read_text())["selected"] == "0002"


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
