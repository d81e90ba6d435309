"""Checkpoints are saved in the background (durability "async"): the checkpoint node records an experiment as
finished only once the save holding its run and diagnosis has landed, a save that fails stops the run at the next
node with the cause recorded, and resume continues from the last checkpoint that was saved."""

import itertools
import json
import time
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from gome import RunConfig, run_gome
from gome.evals.bench_overhead import scripted_model
from gome.graph.run import resume_gome
from gome.tools.run.folder import ExperimentFolder
from gome.tools.run.persistence import CheckpointSaveError
from tests.fakes.scripts import diagnosis


def test_an_experiment_is_recorded_finished_only_after_its_run_and_diagnosis_are_saved(breast_cancer, tmp_path,
                                                                                         monkeypatch):
    """Slow saves: without the wait, metrics.json would be written while the save of the experiment's run was still
    on its way, and a kill then would resume from before execute and run a finished experiment again."""
    saved, put, write_experiment = [], SqliteSaver.put, ExperimentFolder.write_experiment

    def slow_put(self, config, checkpoint, *args, **kwargs):
        time.sleep(0.05)
        out = put(self, config, checkpoint, *args, **kwargs)
        values = checkpoint["channel_values"]
        saved.append(((values.get("last") or {}).get("id"), (values.get("diagnosis") or {}).get("summary")))
        return out

    def checked_write(self, exp):
        assert (exp.id, exp.diagnosis.summary) in saved, f"{exp.id} recorded before its save landed"
        write_experiment(self, exp)

    monkeypatch.setattr(SqliteSaver, "put", slow_put)
    monkeypatch.setattr(ExperimentFolder, "write_experiment", checked_write)
    model = scripted_model(3)
    calls = itertools.count(1)
    model.by_kind["Diagnosis"] = lambda prompt: diagnosis("ran", True, f"the script ran (diagnosis {next(calls)})")
    final = run_gome(breast_cancer, RunConfig(steps=3, time_s=600), out=tmp_path / "out", chat_model=model)
    run = json.loads((Path(final["run_dir"]) / "run.json").read_text())
    assert run["status"] == "succeeded" and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003"]


def test_a_checkpoint_that_cannot_be_saved_stops_the_run_and_resume_continues(breast_cancer, tmp_path, monkeypatch):
    saves, put = [0], SqliteSaver.put

    def full_disk(self, *args, **kwargs):
        saves[0] += 1
        if saves[0] >= 6:  # mid first step: the disk filled up
            raise OSError(28, "No space left on device")
        return put(self, *args, **kwargs)

    monkeypatch.setattr(SqliteSaver, "put", full_disk)
    with pytest.raises(CheckpointSaveError, match=r"could not be saved \(OSError: \[Errno 28\] No space left"):
        run_gome(breast_cancer, RunConfig(steps=4, time_s=600), out=tmp_path / "out", chat_model=scripted_model(4))
    run_dir = next((tmp_path / "out").iterdir())
    # it stopped at the next node: no more experiments ran unsaved, and the run says why
    assert [p.name for p in (run_dir / "experiments").iterdir()] == ["0001"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "crashed"
    assert "CheckpointSaveError: a checkpoint could not be saved" in (run_dir / "crash.txt").read_text()

    monkeypatch.setattr(SqliteSaver, "put", put)  # space freed
    final = resume_gome(run_dir, chat_model=scripted_model(4))
    run = json.loads((Path(final["run_dir"]) / "run.json").read_text())
    assert run["status"] == "succeeded" and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003", "0004"]
