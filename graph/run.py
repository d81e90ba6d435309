"""Running gome with persistence in the run folder (or Postgres): start a run, resume a killed one.

Checkpoints are written at every step boundary before the next node starts (durability "sync"; SQLite in WAL mode,
where a killed process loses none and a power cut those the system had not yet written), so a run killed at any
point resumes from its last finished node: `resume_gome(run_dir)` (the CLI's `gome resume`). Progress events go
to the caller and to <run_dir>/events.jsonl.

A run folder is held by one process at a time (a lock the kernel drops when the holder dies). A run that fails
after it started always leaves run.json with a final status and crash.txt. Resume refuses a checkpoint
database that is missing, damaged, or empty while experiments have finished: starting over would run finished
work again. A run folder can be moved or copied: the folder resumed is the one written to.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.types import Command

from gome.graph.builder import build_graph, recursion_limit
from gome.nodes.runtime import record_crash
from gome.state.context import GomeContext
from gome.state.records import RunConfig
from gome.tools.run.folder import RunFolder, RunFolderError, new_run_dir
from gome.tools.run.persistence import DB_NAME, check_resumable, damaged, persistence
from gome.tools.sandbox import make_executor
from gome.tools.task.loading import load_task

__all__ = ["DB_NAME", "resume_gome", "run_gome", "thread_id"]


def thread_id(folder: RunFolder) -> str:
    """The run's checkpoint thread: named once, at the start, so a renamed or moved folder keeps it."""
    return folder.read("run", {}).get("thread_id") or folder.root.name


def _thread(folder: RunFolder, config: RunConfig) -> dict:
    # Every trace is one task of the fan-out superstep: the pool must hold them all, or traces wait.
    return {"configurable": {"thread_id": thread_id(folder)}, "recursion_limit": recursion_limit(config),
            "max_concurrency": config.traces + 1}


def _drive(folder: RunFolder, config: RunConfig, inputs: dict | None, *, chat_model, executor, on_event, db,
           resume: Any = None) -> dict:
    """Hold the run folder, stream the graph, and record how the run ended if it did not end by itself."""
    with folder.lock("resume" if inputs is None else "run"):
        if inputs is not None:
            folder.update_run_json(inputs=inputs, db=_redact(db), thread_id=thread_id(folder))
        try:
            return _stream(folder, config, inputs, chat_model=chat_model, executor=executor, on_event=on_event,
                           db=db, resume=resume)
        except RunFolderError:
            raise
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):
                folder.update_run_json(status="interrupted", message="interrupted; continue with gome resume")
            raise
        except Exception as e:
            record_crash(folder, e)
            raise


def _stream(folder: RunFolder, config: RunConfig, inputs: dict | None, *, chat_model, executor, on_event, db,
            resume: Any = None) -> dict:
    """Stream the graph from `inputs` (None: from the last checkpoint) and return the final state."""
    if inputs is None:
        check_resumable(folder, db)
    if executor is None:  # one slot per trace: each runs as its own uid with its share of CPU and memory
        executor = make_executor("local", slots=config.traces)
    thread = _thread(folder, config)
    context = GomeContext(chat_model=chat_model, executor=executor, run_dir=str(folder.root),
                          on_event=_one_at_a_time(on_event) if on_event is not None else None)
    with persistence(folder, db) as (checkpointer, store):
        graph = build_graph(checkpointer=checkpointer, store=store)
        if inputs is None:
            try:
                saved = graph.get_state(thread)
            except sqlite3.DatabaseError as e:
                raise damaged(db or folder.path(DB_NAME), folder, e) from None
            if saved.values and not saved.next:  # already finished: nothing to resume
                return {**saved.values, "run_dir": str(folder.root)}
            if not saved.values:  # killed before the first checkpoint: start again from the inputs
                if finished := folder.finished():
                    raise RunFolderError(
                        f"the checkpoint database of {folder.root} holds no checkpoint of this run, yet {finished} "
                        "experiment(s) finished: it was replaced or emptied. gome will not start the run over; "
                        "restore the database, or start a new run.")
                inputs = {**(folder.read("run", {}).get("inputs") or {}), "run_dir": str(folder.root)}
            folder.update_run_json(status="running", resumed_at=time.time())
        folder.update_run_json(isolation=getattr(executor, "isolation", type(executor).__name__))
        payload = inputs
        if resume is not None:  # one answer for every script waiting for review (parallel traces may wait together)
            waiting = [i for task in _all_tasks(graph.get_state(thread, subgraphs=True)) for i in task.interrupts]
            payload = Command(resume={i.id: resume for i in waiting} if waiting else resume)
        # Events reach on_event from the nodes (the context), not through a stream of custom events: streaming
        # them made LangGraph run every node on a worker thread and wake this one for each event, about 1 ms a step.
        # A single trace runs here, in this thread (Ctrl-C reaches its node and stops its script at once).
        graph.invoke(payload, thread, context=context, durability="sync")
        state = graph.get_state(thread, subgraphs=True)
        final = dict(state.values)
        pending = [i.value for task in _all_tasks(state) for i in task.interrupts]
    if pending:
        final.update(status="paused", interrupts=pending)
    return {**final, "run_dir": str(folder.root)}


def _one_at_a_time(on_event: Callable[[dict], None]) -> Callable[[dict], None]:
    """on_event for parallel traces, whose nodes emit from threads of their own: called by one at a time."""
    lock = threading.Lock()

    def call(event: dict) -> None:
        with lock:
            on_event(event)
    return call


def _all_tasks(state) -> Iterator:
    for task in state.tasks:
        yield task
        if task.state is not None and hasattr(task.state, "tasks"):
            yield from _all_tasks(task.state)


def run_gome(
    task_dir: str | Path,
    config: RunConfig | None = None,
    *,
    out: str | Path = "runs",
    run_dir: str | Path | None = None,
    task_overrides: dict[str, Any] | None = None,
    chat_model=None,
    executor=None,
    on_event: Callable[[dict], None] | None = None,
    db: str | None = None,
) -> dict:
    """Run gome on a task folder and return the final state (status, message, run_dir, selected).

    The task is validated before anything is written (TaskError names every problem). Checkpoints and the
    success memory live in <run_dir>/checkpoints.sqlite (or the Postgres database `db`).
    """
    config = config or RunConfig()
    task = load_task(task_dir, task_overrides)
    run_dir = Path(run_dir).resolve() if run_dir else new_run_dir(out, task.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    inputs = {"task_dir": str(Path(task_dir).resolve()), "run_dir": str(run_dir),
              "config": config.model_dump(mode="json"), "task_overrides": task_overrides or {}}
    return _drive(RunFolder(run_dir), config, inputs, chat_model=chat_model, executor=executor, on_event=on_event,
                  db=db)


def resume_gome(run_dir: str | Path, *, chat_model=None, executor=None, on_event: Callable[[dict], None] | None = None,
                db: str | None = None, resume: Any = None) -> dict:
    """Continue a run from its last checkpoint (after a crash, a kill, or a review pause: `resume` is then the
    reviewer's answer). A finished run returns its final state unchanged."""
    folder = RunFolder(Path(run_dir).resolve())
    inputs = folder.read("run", {}).get("inputs")
    if not inputs:
        raise RunFolderError(f"{folder.root} is not a gome run folder (no run.json with the run's inputs)")
    config = RunConfig.model_validate(inputs["config"])
    return _drive(folder, config, None, chat_model=chat_model, executor=executor, on_event=on_event, db=db,
                  resume=resume)


def _redact(db: str | None) -> str | None:
    """A database URL without its password, for run.json."""
    if not db or "@" not in db:
        return db
    scheme, rest = db.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"

