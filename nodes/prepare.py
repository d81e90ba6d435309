"""prepare: validate the task, lay out the run folder, describe the data once for every prompt."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from langgraph.runtime import Runtime

from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.state.records import RunConfig
from gome.tools.files import write_text
from gome.tools.run.folder import copy_input, new_run_dir, read_json, update_run_json, write_json
from gome.tools.task.loading import describe_data, load_task

OPTIONAL_PACKAGES = ("numpy", "pandas", "sklearn", "scipy", "torch", "lightgbm", "xgboost", "catboost")


def installed_packages() -> str:
    return ", ".join(p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is not None)


def prepare(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    # An assistant's defaults (context.config) under the run's own input config.
    defaults = (runtime.context.config if runtime is not None and runtime.context is not None else None) or {}
    config = RunConfig.model_validate({**defaults, **(state.get("config") or {})})
    task = load_task(state["task_dir"], state.get("task_overrides"))
    run_dir = Path(state.get("run_dir") or new_run_dir(state.get("out") or "runs", task.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "experiments").mkdir(exist_ok=True)
    copy_input(task.data_dir, run_dir)
    schema = describe_data(task) + f"\n- installed Python packages: {installed_packages()}\n"
    write_text(run_dir / "schema.md", schema)
    existing = read_json(run_dir / "run.json", {})
    started = existing.get("started_at") or time.time()
    run_id = existing.get("run_id") or run_dir.name
    write_json(run_dir / "task.json", task.model_dump())
    update_run_json(run_dir, run_id=run_id, task=task.name, task_dir=str(state["task_dir"]), metric=task.metric,
                    direction=task.direction, config=config.model_dump(mode="json"), status="running",
                    started_at=started)
    # The description can be long: prompts read it from the run folder, state keeps the rest of the task.
    return {"task": task.model_dump(mode="json", exclude={"description"}), "config": config.model_dump(mode="json"),
            "run_dir": str(run_dir), "run_id": run_id, "started_at": started,
            "deadline": started + config.search_time()}
