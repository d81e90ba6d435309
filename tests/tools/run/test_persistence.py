"""A checkpoint that cannot be saved stops the run before the next node starts (durability "sync": with "async",
LangGraph reports a failed save only when the graph ends, and the run would go on unsaved), with the cause
recorded, and resume continues from the last checkpoint that was saved."""

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from gome import RunConfig, run_gome
from gome.evals.bench_overhead import scripted_model
from gome.graph.run import resume_gome


def test_a_checkpoint_that_cannot_be_saved_stops_the_run_and_resume_continues(breast_cancer, tmp_path, monkeypatch):
    saves, put = [0], SqliteSaver.put

    def full_disk(self, *args, **kwargs):
        saves[0] += 1
        if saves[0] >= 6:  # mid first step: the disk filled up
            raise OSError(28, "No space left on device")
        return put(self, *args, **kwargs)

    monkeypatch.setattr(SqliteSaver, "put", full_disk)
    with pytest.raises(OSError, match=r"No space left on device"):
        run_gome(breast_cancer, RunConfig(steps=4, time_s=600), out=tmp_path / "out", chat_model=scripted_model(4))
    run_dir = next((tmp_path / "out").iterdir())
    # it stopped there: no more experiments ran unsaved, and the run says why
    assert [p.name for p in (run_dir / "experiments").iterdir()] == ["0001"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "crashed"
    assert "OSError: [Errno 28] No space left on device" in (run_dir / "crash.txt").read_text()

    monkeypatch.setattr(SqliteSaver, "put", put)  # space freed
    final = resume_gome(run_dir, chat_model=scripted_model(4))
    run = json.loads((Path(final["run_dir"]) / "run.json").read_text())
    assert run["status"] == "succeeded" and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003", "0004"]
