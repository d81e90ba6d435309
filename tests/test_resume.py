"""Kill `gome run` with SIGKILL at many points, resume each: the run completes, no finished experiment is lost
or run again, and the run folder agrees with the checkpoint."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
KILL_POINTS = [
    "llm:1",  # during the draft's LLM call
    "llm:2",  # during the first diagnosis
    "llm:5",  # during apply-momentum's LLM call
    "script:1",  # while the draft script trains
    "script:3",  # while the last script trains
    "before:checkpoint:1",  # between diagnose and checkpoint
    "after:execute:2",  # execute returned, its writes not yet saved
    "before:apply_momentum:2",  # between compute-gradient and apply-momentum
    "put:9",  # writing a checkpoint
    "writes:14",  # saving a node's pending writes
    "runjson:2",  # rewriting run.json inside the checkpoint node
    "before:select:1",  # every trace done, before selection
    "before:finalize:1",  # before the final submission is checked
]


def driver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.drivers.kill_run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def checkpoint_state(run_dir: Path) -> dict:
    from langgraph.checkpoint.sqlite import SqliteSaver

    with sqlite3.connect(run_dir / "checkpoints.sqlite") as conn:
        tup = SqliteSaver(conn).get_tuple({"configurable": {"thread_id": run_dir.name, "checkpoint_ns": ""}})
    return tup.checkpoint["channel_values"]


@pytest.mark.parametrize("kill", KILL_POINTS)
def test_killed_anywhere_a_run_resumes_and_completes(kill, tmp_path):
    task = tmp_path / "task"
    import shutil

    shutil.copytree(EXAMPLES / "breast-cancer", task)
    first = driver("run", str(task), str(tmp_path / "runs"), kill)
    assert first.returncode == -9, first.stderr[-2000:]  # really killed, mid-run
    run_dir = Path(first.stdout.splitlines()[0])
    done_before = {p.parent.name: os.stat(p.parent / "result.json").st_mtime_ns
                   for p in run_dir.glob("experiments/*/metrics.json")}

    second = driver("resume", str(run_dir))
    assert second.returncode == 0, second.stderr[-3000:]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "succeeded"
    assert [s["id"] for s in run["steps"]] == ["0001", "0002", "0003"]  # none lost, none twice
    assert sorted(p.name for p in (run_dir / "experiments").iterdir()) == ["0001", "0002", "0003"]
    for exp_id, mtime in done_before.items():  # what had finished was not run again
        assert os.stat(run_dir / "experiments" / exp_id / "result.json").st_mtime_ns == mtime, exp_id
    state = checkpoint_state(run_dir)  # the checkpoint and the run folder tell the same story
    assert state["status"] == "succeeded" and state["selected"]["id"] == run["best"]["id"]
    assert [r["steps"] for r in state["trace_results"]] == [3]
    assert (run_dir / "best/submission.csv").is_file() and (run_dir / "report.html").is_file()


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    first = driver("run", str(EXAMPLES / "breast-cancer"), str(tmp_path), "none")
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = Path(first.stdout.splitlines()[0])
    before = (run_dir / "run.json").read_text()
    again = driver("resume", str(run_dir))
    assert again.returncode == 0 and (run_dir / "run.json").read_text() == before
