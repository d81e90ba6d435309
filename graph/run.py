"""Running gome with persistence in the run folder (or Postgres): start a run, resume a killed one.

Checkpoints are written durably at every step boundary (durability "sync"), so a run killed at any point resumes
from its last finished node: `resume_gome(run_dir)` (the CLI's `gome resume`). Progress events go to the caller
and to <run_dir>/events.jsonl.

A run folder is held by one process at a time (a lock the kernel drops when the holder dies). A run that fails
after it started always leaves run.json with a final status and crash.txt. Resume refuses a checkpoint
database that is missing, damaged, or empty while experiments have finished: starting over would run finished
work again. A run folder can be moved or copied: the folder resumed is the one written to.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore
from langgraph.types import Command

from gome.graph.builder import build_graph, recursion_limit
from gome.state.context import GomeContext
from gome.state.records import RunConfig
from gome.tools.files import write_text
from gome.tools.run.folder import (
    RunFolderError,
    free_reserve,
    is_disk_full,
    new_run_dir,
    read_json,
    run_lock,
    update_run_json,
)
from gome.tools.sandbox.local import LocalExecutor
from gome.tools.task.loading import load_task

DB_NAME = "checkpoints.sqlite"


@contextmanager
def persistence(run_dir: Path, db: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(checkpointer, store): SQLite in the run folder by default, Postgres for a postgresql:// URL."""
    if db and db.startswith(("postgresql://", "postgres://")):
        from gome.tools.run.persistence import postgres_persistence

        with postgres_persistence(db) as pair:
            yield pair
        return
    path = str(run_dir / DB_NAME)
    with closing(sqlite3.connect(path, check_same_thread=False)) as saver_conn, \
            closing(sqlite3.connect(path, check_same_thread=False, isolation_level=None)) as store_conn:
        store = SqliteStore(store_conn)
        store.setup()
        yield SqliteSaver(saver_conn), store


def thread_id(run_dir: Path) -> str:
    """The run's checkpoint thread: named once, at the start, so a renamed or moved folder keeps it."""
    return (read_json(run_dir / "run.json", {}) or {}).get("thread_id") or run_dir.name


def _thread(run_dir: Path, config: RunConfig) -> dict:
    # Every trace is one task of the fan-out superstep: the pool must hold them all, or traces wait.
    return {"configurable": {"thread_id": thread_id(run_dir)}, "recursion_limit": recursion_limit(config),
            "max_concurrency": config.traces + 1}


def _drive(run_dir: Path, config: RunConfig, inputs: dict | None, *, chat_model, executor, on_event, db,
           resume: Any = None) -> dict:
    """Hold the run folder, stream the graph, and record how the run ended if it did not end by itself."""
    with run_lock(run_dir, "resume" if inputs is None else "run"):
        if inputs is not None:
            update_run_json(run_dir, inputs=inputs, db=_redact(db), thread_id=thread_id(run_dir))
        try:
            return _stream(run_dir, config, inputs, chat_model=chat_model, executor=executor, on_event=on_event,
                           db=db, resume=resume)
        except RunFolderError:
            raise
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):
                update_run_json(run_dir, status="interrupted", message="interrupted; continue with gome resume")
            raise
        except Exception as e:
            record_crash(run_dir, e)
            raise


def record_crash(run_dir: Path, error: BaseException) -> None:
    """crash.txt, run.json status "crashed" and the report, whatever it takes: on a full disk, the space set
    aside at the start is freed first. Nothing here may raise: the caller re-raises the original error."""
    full = is_disk_full(error)
    if full:
        free_reserve(run_dir)
    message = (f"no space left on the disk ({error}); free some, then continue with gome resume" if full else
               f"{type(error).__name__}: {error}")
    with contextlib.suppress(OSError):
        write_text(run_dir / "crash.txt", "".join(traceback.format_exception(error)))
    with contextlib.suppress(Exception):
        update_run_json(run_dir, status="crashed", message=message[:2000], finished_at=time.time())
    with contextlib.suppress(Exception):
        from gome.tools.report.report import write_report

        write_report(run_dir)


def _finished_experiments(run_dir: Path) -> int:
    return len(list((run_dir / "experiments").glob("*/metrics.json")))


def _check_database(run_dir: Path, db: str | None) -> None:
    """Before a resume: the SQLite checkpoint file must exist and be a database (Postgres is checked once open)."""
    if db:
        return
    path = run_dir / DB_NAME
    if not path.is_file() or path.is_symlink():
        raise RunFolderError(
            f"{path} is missing: without it gome cannot tell what has finished, and will not start the run over "
            f"({_finished_experiments(run_dir)} experiment(s) finished). Restore the file, or start a new run.")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
    except sqlite3.DatabaseError as e:
        raise _damaged(path, run_dir, e) from None


def _damaged(db: Path | str, run_dir: Path, error: Exception) -> RunFolderError:
    return RunFolderError(f"{db} is damaged ({error}); gome will not start the run over. The finished "
                          f"experiments are in {run_dir / 'experiments'}; restore the database from a backup, or "
                          "start a new run.")


def _stream(run_dir: Path, config: RunConfig, inputs: dict | None, *, chat_model, executor, on_event, db,
            resume: Any = None) -> dict:
    """Stream the graph from `inputs` (None: from the last checkpoint) and return the final state."""
    if inputs is None:
        _check_database(run_dir, db)
    if executor is None:  # one slot per trace: each runs as its own uid with its share of CPU and memory
        executor = LocalExecutor(slots=config.traces)
    thread = _thread(run_dir, config)
    context = GomeContext(chat_model=chat_model, executor=executor, run_dir=str(run_dir))
    events = os.open(run_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with persistence(run_dir, db) as (checkpointer, store), open(events, "a") as log:
        graph = build_graph(checkpointer=checkpointer, store=store)
        if inputs is None:
            try:
                saved = graph.get_state(thread)
            except sqlite3.DatabaseError as e:
                raise _damaged(db or run_dir / DB_NAME, run_dir, e) from None
            if saved.values and not saved.next:  # already finished: nothing to resume
                return {**saved.values, "run_dir": str(run_dir)}
            if not saved.values:  # killed before the first checkpoint: start again from the inputs
                if _finished_experiments(run_dir):
                    raise RunFolderError(
                        f"the checkpoint database of {run_dir} holds no checkpoint of this run, yet "
                        f"{_finished_experiments(run_dir)} experiment(s) finished: it was replaced or emptied. "
                        "gome will not start the run over; restore the database, or start a new run.")
                inputs = {**(read_json(run_dir / "run.json", {}).get("inputs") or {}), "run_dir": str(run_dir)}
            update_run_json(run_dir, status="running", resumed_at=time.time())
        update_run_json(run_dir, isolation=getattr(executor, "isolation", type(executor).__name__))
        payload = inputs
        if resume is not None:  # one answer for every script waiting for review (parallel traces may wait together)
            waiting = [i for task in _all_tasks(graph.get_state(thread, subgraphs=True)) for i in task.interrupts]
            payload = Command(resume={i.id: resume for i in waiting} if waiting else resume)
        for _ns, chunk in graph.stream(payload, thread, context=context, stream_mode="custom", subgraphs=True,
                                       durability="sync"):
            event = {**chunk, "at": round(time.time(), 3)}
            log.write(json.dumps(event, default=str) + "\n")
            log.flush()
            if on_event is not None:
                on_event(event)
        state = graph.get_state(thread, subgraphs=True)
        final = dict(state.values)
        pending = [i.value for task in _all_tasks(state) for i in task.interrupts]
    if pending:
        final.update(status="paused", interrupts=pending)
    return {**final, "run_dir": str(run_dir)}


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
    success memory live in <run_dir>/checkpoints.sqlite (or the Postgres database `db`); the thread id is the
    run folder's name.
    """
    config = config or RunConfig()
    task = load_task(task_dir, task_overrides)
    run_dir = Path(run_dir).resolve() if run_dir else new_run_dir(out, task.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    inputs = {"task_dir": str(Path(task_dir).resolve()), "run_dir": str(run_dir),
              "config": config.model_dump(mode="json"), "task_overrides": task_overrides or {}}
    return _drive(run_dir, config, inputs, chat_model=chat_model, executor=executor, on_event=on_event, db=db)


def resume_gome(run_dir: str | Path, *, chat_model=None, executor=None, on_event: Callable[[dict], None] | None = None,
                db: str | None = None, resume: Any = None) -> dict:
    """Continue a run from its last checkpoint (after a crash, a kill, or a review pause: `resume` is then the
    reviewer's answer). A finished run returns its final state unchanged."""
    run_dir = Path(run_dir).resolve()
    inputs = (read_json(run_dir / "run.json", {}) or {}).get("inputs")
    if not inputs:
        raise RunFolderError(f"{run_dir} is not a gome run folder (no run.json with the run's inputs)")
    config = RunConfig.model_validate(inputs["config"])
    return _drive(run_dir, config, None, chat_model=chat_model, executor=executor, on_event=on_event, db=db,
                  resume=resume)


def _redact(db: str | None) -> str | None:
    """A database URL without its password, for run.json."""
    if not db or "@" not in db:
        return db
    scheme, rest = db.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
