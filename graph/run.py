"""Running the gome graph with SQLite persistence in the run folder: what the CLI and embedding apps call."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from gome.graph.builder import build_graph, recursion_limit
from gome.state.context import GomeContext
from gome.state.records import RunConfig
from gome.tools.local_executor import LocalExecutor
from gome.tools.run_folder import new_run_dir, update_run_json
from gome.tools.tasks import load_task

DB_NAME = "checkpoints.sqlite"


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
) -> dict:
    """Run gome on a task folder and return the final state (status, message, run_dir, selected).

    The task is validated before anything is written (TaskError names every problem). Checkpoints and the
    success memory live in <run_dir>/checkpoints.sqlite; the thread id is the run id.
    """
    config = config or RunConfig()
    task = load_task(task_dir, task_overrides)
    run_dir = Path(run_dir) if run_dir else new_run_dir(out, task.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    if executor is None:  # one slot per trace: each runs as its own uid with its share of CPU and memory
        executor = LocalExecutor(slots=config.traces)
    update_run_json(run_dir, isolation=getattr(executor, "isolation", type(executor).__name__))
    db = str(run_dir / DB_NAME)
    with closing(sqlite3.connect(db, check_same_thread=False)) as saver_conn, \
            closing(sqlite3.connect(db, check_same_thread=False, isolation_level=None)) as store_conn:
        store = SqliteStore(store_conn)
        store.setup()
        graph = build_graph(checkpointer=SqliteSaver(saver_conn), store=store)
        # Every trace is one task of the fan-out superstep: the pool must hold them all, or traces wait.
        run_config = {"configurable": {"thread_id": run_dir.name}, "recursion_limit": recursion_limit(config),
                      "max_concurrency": config.traces + 1}
        inputs = {"task_dir": str(Path(task_dir).resolve()), "run_dir": str(run_dir),
                  "config": config.model_dump(mode="json"), "task_overrides": task_overrides or {}}
        for _namespace, mode, chunk in graph.stream(
                inputs, run_config, context=GomeContext(chat_model=chat_model, executor=executor),
                stream_mode=["custom", "values"], subgraphs=True, durability="sync"):
            if mode == "custom" and on_event is not None:
                on_event(chunk)
        final = graph.get_state(run_config).values
    return {**final, "run_dir": str(run_dir)}
