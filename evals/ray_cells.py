"""`gome eval --ray`: each cell a Ray task, spread over the cluster's nodes.

A cell runs whole on one node, exactly as `gome eval` runs it here (its run, its scripts in that node's local
sandbox, its grading), in its folder under the eval's --out: the suite and --out must be on a filesystem every
node sees (checked before any cell starts). A cell whose node dies is retried once by Ray, and the retry resumes
its run from its checkpoints; a cell lost again is in the results with its error and no cell.json, so running
the eval again retries it. Nothing is lost silently.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from gome.evals.aggregate import write_results
from gome.evals.cells import grade_cell, model_for, run_cell
from gome.tools.files import read_text, write_text
from gome.tools.sandbox.ray_executor import (
    CELL_UID_OFFSET,
    connect,
    fits,
    node_root,
    node_share,
    node_slot,
    too_weak,
    weak_ok,
)

MAX_TRACES = 64  # RunConfig's bound: a cell's block of uids

SHARED_CHECK_S = 120.0
CELL_RETRIES = 1  # a cell whose node died is run again once (its run resumes) before it counts as lost


def check_shared(ray, out: Path, paths: list[Path], cpus: float = 0) -> None:
    """Every live node that can hold a cell (`cpus`) sees `out` (a token written here, read and written there)
    and `paths`; ValueError names the nodes that do not. (A head of 0 CPUs, as on KubeRay, runs no cell.)"""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    probe = out / f".ray-shared-{token}"
    write_text(probe, token)
    try:
        sees = ray.remote(_sees)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= cpus]
        answers = ray.get([sees.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                           .remote(str(probe), token, [str(p) for p in paths]) for n in nodes], timeout=SHARED_CHECK_S)
    except ray.exceptions.RayError as e:
        raise ValueError(f"could not check that every Ray node sees {out}: {type(e).__name__}: {e}") from None
    finally:
        probe.unlink(missing_ok=True)
    blind = {node[:12]: missing for node, missing in zip(nodes, answers, strict=True) if missing}
    if blind:
        raise ValueError(f"gome eval --ray needs --out and the suite on a filesystem every Ray node sees; "
                         f"these nodes do not see: {blind}")


def _sees(probe: str, token: str, paths: list[str]) -> list[str]:
    """What this node cannot see (paths), or cannot see and write (the eval folder)."""
    missing = [p for p in paths if not Path(p).exists()]
    try:
        if read_text(probe, 64) != token:
            raise OSError("another folder of the same name")
        write_text(f"{probe}-{os.getpid()}", token)  # a read-only or root-squashed mount fails here
        os.unlink(f"{probe}-{os.getpid()}")
    except OSError:
        missing.append(str(Path(probe).parent))
    return missing


def _cell_task(cell, out: str, task_dir: str, config, weak: bool) -> dict:
    """On a node: the cell, run (or resumed, or graded) as `gome eval` runs it, with its model built here and its
    scripts in this node's sandbox, under uids no other cell on the node has."""
    import ray

    from gome.tools.sandbox.local import LocalExecutor

    with node_slot(node_root(), "cells") as slot:
        memory = node_share(ray, config.threads * config.traces) // config.traces  # the cell's share, per trace
        executor = LocalExecutor(slots=config.traces, cpus=config.threads, memory_bytes=memory,
                                 first_slot=CELL_UID_OFFSET + MAX_TRACES * slot)
        if (why := too_weak(executor, weak)) is not None:
            raise RuntimeError(why)
        record = run_cell(cell, Path(out), Path(task_dir), config, chat_model=model_for(cell.model, None),
                          executor=executor, log=lambda _: None)
    return {**record, "node": ray.get_runtime_context().get_node_id()}


def run_cells_on_ray(cells: list, out: Path, task_dirs: dict[str, Path], config, *, address: str | None = None,
                     log: Callable[[str], None] = print) -> list[dict]:
    """Run the cells as Ray tasks, each asking for its traces' CPUs, each building its model on its node from the
    cell's model name (a chat model object holds clients and locks: it does not travel); write the results as
    cells end."""
    ray = connect(address)
    out, task_dirs = out.resolve(), {t: d.resolve() for t, d in task_dirs.items()}  # the same on every node
    if not fits(ray, {"CPU": config.threads * config.traces}):  # Ray would wait for such a node forever
        raise ValueError(f"no live node of the Ray cluster has the {config.threads * config.traces} CPUs a cell asks "
                         f"for (threads x traces)")
    check_shared(ray, out, sorted(task_dirs.values()), config.threads * config.traces)
    task = ray.remote(_cell_task).options(num_cpus=config.threads * config.traces, max_retries=CELL_RETRIES,
                                          retry_exceptions=False, scheduling_strategy="SPREAD")
    started = time.time()
    refs = {task.remote(c, str(out), str(task_dirs[c.task]), config, weak_ok()): c
            for c in cells}
    results: dict = {}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        cell = refs[ready[0]]
        try:
            results[cell] = ray.get(ready[0])
            log(f"eval: {cell.model} {cell.task} {cell.mode} seed {cell.seed} done on node "
                f"{results[cell]['node'][:12]}: {results[cell].get('score')}")
        except ray.exceptions.RayError as e:  # lost twice (its node died), or gome failed there: say so
            error = f"failed on the Ray cluster: {type(e).__name__}: {e}"[:2000]
            log(f"eval: {cell.model} {cell.task} {cell.mode} seed {cell.seed} {error}")
            results[cell] = grade_cell(cell, cell.folder(out), task_dirs[cell.task], time.time() - started, error,
                                       keep=False)
        write_results(out, [results[c] for c in cells if c in results])
    return [results[c] for c in cells]
