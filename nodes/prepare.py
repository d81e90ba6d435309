"""prepare: validate the task, lay out the run folder, describe the data once for every prompt."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from langgraph.runtime import Runtime

from gome.nodes.runtime import context_of
from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.state.records import RunConfig
from gome.tools.run.folder import RunFolder, new_run_dir
from gome.tools.task.loading import describe_data, load_task

OPTIONAL_PACKAGES = ("numpy", "pandas", "sklearn", "scipy", "torch", "lightgbm", "xgboost", "catboost")


def installed_packages() -> str:
    return ", ".join(p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is not None)


def prepare(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    # An assistant's defaults (context.config) under the run's own input config.
    config = RunConfig.model_validate({**(context_of(runtime).config or {}), **(state.get("config") or {})})
    task = load_task(state["task_dir"], state.get("task_overrides"))
    run_dir = Path(state.get("run_dir") or new_run_dir(state.get("out") or "runs", task.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(run_dir)
    folder.copy_input(task.data_dir)
    folder.write_schema(describe_data(task, folder.input) +
                        f"\n- installed Python packages: {installed_packages()}\n")
    existing = folder.read("run", {})
    started = existing.get("started_at") or time.time()
    run_id = existing.get("run_id") or run_dir.name
    folder.write("task", task.model_dump())
    folder.update_run_json(run_id=run_id, task=task.name, task_dir=str(state["task_dir"]), metric=task.metric,
                           direction=task.direction, config=config.model_dump(mode="json"), status="running",
                           started_at=started)
    # The description can be long: prompts read it from the run folder, state keeps the rest of the task.
    return {"task": task.model_dump(mode="json", exclude={"description"}), "config": config.model_dump(mode="json"),
            "run_dir": str(run_dir), "run_id": run_id, "started_at": started,
            "deadline": started + config.search_time()}
