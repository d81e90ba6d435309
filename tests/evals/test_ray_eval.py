"""`gome eval --ray` on a real Ray cluster of two nodes (tests/conftest.py): cells spread over the nodes, land in
the eval folder as without Ray, and resume; a folder the nodes cannot see is refused before any cell runs."""

import json
import os
import threading
import time

import pytest
import ray

from gome.evals.ray_cells import check_shared
from gome.evals.runner import Cell, run_eval
from gome.evals.suite.build import build_suite
from gome.state.records import RunConfig
from tests.drivers.ray_nodes import add_node, kill_node, live_nodes

TASKS = ["penguin-mass", "credit-card"]
CONFIG = RunConfig(steps=2, time_s=600, threads=1, select={"reruns": 0})  # one CPU per cell: one per node


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    build_suite(out, TASKS)
    return out


MODEL = "python:tests.fakes.server_model:generic"  # what each node builds: a scripted model, by name


def test_an_eval_of_four_cells_spreads_over_both_nodes_and_resumes(ray_cluster, suite, tmp_path):
    out, logged = tmp_path / "eval", []
    kwargs = dict(tasks=TASKS, modes=["gradient", "tree"], seeds=[0], models=[MODEL], config=CONFIG,
                  log=logged.append, ray=True, ray_address=ray_cluster.address)
    results = run_eval(suite, out, **kwargs)
    assert len(results) == 4
    assert {r["node"] for r in results} == live_nodes()
    for r in results:
        cell = json.loads((Cell(r["model"], r["task"], r["mode"], r["seed"]).folder(out) / "cell.json").read_text())
        assert cell["valid_submission"] and cell["run_status"] == "succeeded" and cell["steps"] >= 2
        assert cell["score"] is not None and cell["error"] is None
    assert f"| {MODEL} | penguin-mass | tree | 0 |" in (out / "results.md").read_text()
    assert sum("done on node" in line for line in logged) == 4

    # Again: every cell is graded, so each task only reads its cell.json (same scores, no new run).
    again = run_eval(suite, out, **kwargs)
    assert [r["score"] for r in again] == [r["score"] for r in results]
    assert all(len(list(Cell(r["model"], r["task"], r["mode"], r["seed"]).folder(out).glob("*/run.json"))) == 1
               for r in again)


def test_an_eval_whose_cells_no_node_can_hold_stops_before_any_cell_runs(ray_cluster, suite, tmp_path):
    with pytest.raises(ValueError, match="no live node .* 4 CPUs"):
        run_eval(suite, tmp_path / "eval", tasks=["penguin-mass"], modes=["gradient"], seeds=[0], models=[MODEL],
                 config=CONFIG.model_copy(update={"threads": 2, "traces": 2}), log=lambda _: None, ray=True,
                 ray_address=ray_cluster.address)
    assert not list((tmp_path / "eval").glob("cells/*"))


def test_a_folder_some_node_cannot_see_is_refused_by_name(ray_cluster, tmp_path):
    with pytest.raises(ValueError, match="every Ray node sees.*no-such-suite"):
        check_shared(ray, tmp_path, [tmp_path / "no-such-suite"])
    assert not list(tmp_path.glob(".ray-shared-*"))  # the probe is removed


def _full_runs() -> list[int]:
    """Pids of sandboxed scripts in their full run (GOME_DEBUG=0), outermost process of each."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"GOME_DEBUG=0" in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as f:
                pid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            break
    return seen


def test_a_cell_whose_node_dies_is_retried_and_resumes_its_run(ray_cluster, suite, tmp_path):
    out = tmp_path / "eval"
    kwargs = dict(tasks=["penguin-mass"], modes=["gradient"], seeds=[0, 1], config=CONFIG, log=lambda _: None,
                  ray=True, ray_address=ray_cluster.address)
    got = {}
    runner = threading.Thread(target=lambda: got.setdefault("results", run_eval(
        suite, out, models=["python:tests.fakes.server_model:slow_generic"], **kwargs)))
    runner.start()
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:  # a worker node (not the head) running a full run
        scripts = {a for pid in _full_runs() for a in _ancestors(pid)}
        victim = next((n for n in ray_cluster.worker_nodes
                       if n.all_processes["raylet"][0].process.pid in scripts), None)
        time.sleep(0.2)
    assert victim is not None, "no cell's script ran on a worker node"
    kill_node(ray_cluster, victim)
    add_node(ray_cluster)  # the cluster keeps two nodes
    runner.join(600)
    results = got["results"]
    assert [r["run_status"] for r in results] == ["succeeded", "succeeded"]
    assert all(r["valid_submission"] and r["error"] is None for r in results)
    runs = [json.loads(next(Cell(r["model"], r["task"], r["mode"], r["seed"]).folder(out).glob("*/run.json"))
                       .read_text()) for r in results]
    assert sum("resumed_at" in run for run in runs) == 1  # the lost cell went on from its checkpoints


def test_a_cell_that_fails_on_its_node_is_in_the_results_with_why_and_runs_again_next_time(ray_cluster, suite,
                                                                                          tmp_path):
    out = tmp_path / "eval"
    kwargs = dict(tasks=["penguin-mass"], modes=["gradient"], seeds=[0], config=CONFIG, log=lambda _: None,
                  ray=True, ray_address=ray_cluster.address)
    [result] = run_eval(suite, out, models=["python:tests.fakes.server_model:broken_on_nodes"], **kwargs)
    assert "failed on the Ray cluster" in result["error"] and "cannot build the model" in result["error"]
    assert result["valid_submission"] is False and result["normalized_score"] == 0
    folder = Cell(result["model"], "penguin-mass", "gradient", 0).folder(out)
    assert not (folder / "cell.json").exists()  # not graded for good: the next eval runs it again
    assert "failed on the Ray cluster" in (out / "results.md").read_text()
