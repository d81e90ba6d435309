"""The overhead bench's scripted model holds the conversation gome really has: every step runs, and the edit
steps it times are edits that applied (not retries or whole-script fallbacks)."""

import json
from pathlib import Path

from gome import RunConfig, run_gome
from gome.evals.bench_overhead import scripted_model


def test_the_scripted_model_drives_every_step_and_its_edits_apply(breast_cancer, tmp_path):
    steps = 3
    model = scripted_model(steps)
    final = run_gome(breast_cancer, RunConfig(steps=steps, time_s=600), out=tmp_path / "out", chat_model=model)
    run_dir = Path(final["run_dir"])
    run = json.loads((run_dir / "run.json").read_text())
    assert [s["status"] for s in run["steps"]] == ["ok"] * steps
    assert len(model.calls) <= 3 * steps  # what the bench itself refuses beyond: re-asked requests
    edits = [json.loads(p.read_text()).get("edit") or {} for p in sorted(run_dir.glob("experiments/*/plan.json"))]
    assert any(e.get("asked") == "edits" and e.get("applied") for e in edits)
