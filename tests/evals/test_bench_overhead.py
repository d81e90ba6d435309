"""The overhead bench's scripted model holds the conversation gome really has: every step runs, and the edit
steps it times are edits that applied (not retries or whole-script fallbacks). A run that strays is refused."""

import json
from pathlib import Path

from gome import RunConfig, run_gome
from gome.evals.bench_overhead import off_script, scripted_model


def run_bench_model(breast_cancer, tmp_path, steps: int):
    model = scripted_model(steps)
    final = run_gome(breast_cancer, RunConfig(steps=steps, time_s=600), out=tmp_path / "out", chat_model=model)
    run_dir = Path(final["run_dir"])
    edits = {p.parent.name: json.loads(p.read_text()).get("edit") or {}
             for p in run_dir.glob("experiments/*/plan.json")}
    return json.loads((run_dir / "run.json").read_text()), edits, model.calls


def test_the_scripted_model_drives_every_step_and_its_edits_apply(breast_cancer, tmp_path):
    run, edits, calls = run_bench_model(breast_cancer, tmp_path, steps=3)
    assert [s["status"] for s in run["steps"]] == ["ok"] * 3
    updates = [s["id"] for s in run["steps"] if s["intent"] == "update"]
    assert updates and all(edits[i]["asked"] == "edits" and edits[i]["applied"] for i in updates)
    assert off_script(run, edits, calls, 3) is None


def test_a_run_that_left_the_script_is_refused(breast_cancer, tmp_path):
    run, edits, calls = run_bench_model(breast_cancer, tmp_path, steps=3)
    update = next(s["id"] for s in run["steps"] if s["intent"] == "update")
    assert "did not apply" in off_script(run, {**edits, update: {"asked": "edits", "applied": False}}, calls, 3)
    assert "calls" in off_script(run, edits, [*calls, {"method": "json_schema"}], 3)  # a re-asked decision
    assert "not ok" in off_script({**run, "steps": [{**run["steps"][0], "status": "error"}, *run["steps"][1:]]},
                                  edits, calls, 3)
