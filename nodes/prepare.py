"""prepare: validate the task, lay out the run folder, describe the data and the environment once for every
prompt, and list the task's challenges (what the proposals of compute-gradient draw on)."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from langgraph.runtime import Runtime

from gome.nodes.prompts import CHALLENGES, ask
from gome.nodes.runtime import chat_model, context_of, emit, executor, llm, record_crash
from gome.state.context import GomeContext
from gome.state.graph_state import GomeState
from gome.state.records import RunConfig, SettingsError, TaskChallenges
from gome.tools.run.experiment import run_probe
from gome.tools.run.folder import RunFolder, new_run_dir
from gome.tools.sandbox.environment import VERSIONS_SCRIPT, describe, parse_answer
from gome.tools.task.loading import describe_data, load_task

FALLBACK_PACKAGES = ("numpy", "pandas", "sklearn", "scipy", "torch", "lightgbm", "xgboost", "catboost")


def environment(runtime: Runtime[GomeContext] | None, run: RunFolder) -> str:
    """The ML packages the sandbox's Python has, with versions (asked of the sandbox itself)."""
    versions = parse_answer(run_probe(executor(runtime), run.check_folder("environment"), VERSIONS_SCRIPT,
                                      timeout_s=60))
    if versions is None:  # the probe could not run: what this interpreter has, without versions
        return ", ".join(p for p in FALLBACK_PACKAGES if importlib.util.find_spec(p) is not None)
    run.write("environment", versions)
    return describe(versions)


def challenges(state: dict, runtime: Runtime[GomeContext] | None) -> tuple[list[dict], dict]:
    """The task's challenges from one LLM call ([] when the model cannot answer: the run goes on)."""
    caller = llm(state, runtime, "prepare")
    found = caller.decide(TaskChallenges, ask(state, CHALLENGES, challenges=False))
    return ([c.model_dump() for c in found.challenges] if found else []), caller.usage


def default_out() -> str:
    """Where a run invoked as a graph (the server, an app) writes when its input names no folder: outside any
    project, so that `langgraph dev`, which reloads on every new .py file under the project, never restarts
    because a run wrote a main.py. The CLI's default is ./runs (its --out)."""
    return os.environ.get("GOME_RUNS_DIR") or os.path.expanduser("~/gome-runs")


def model_name(config: RunConfig, runtime: Runtime[GomeContext] | None) -> str:
    """The chat model, as run.json names it."""
    model = chat_model(config.model_dump(mode="json"), runtime)
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return str(name) if isinstance(name, str) else type(model).__name__


def settings(state: GomeState, runtime: Runtime[GomeContext] | None) -> RunConfig:
    """The run's config, with everything it needs checked before anything runs: the task folder is given, the
    settings are known and valid, the sandbox and the chat model can be built (a run never starts
    half-configured; each problem is a SettingsError that names it)."""
    if not isinstance(state.get("task_dir"), str) or not state["task_dir"]:
        raise SettingsError('the input has no task_dir: give the task folder, e.g. {"task_dir": "/abs/path/task"}')
    ctx = context_of(runtime)
    # An assistant's defaults (context.config) under the run's own input config.
    config = RunConfig.checked({**ctx.config_dict(), **(state.get("config") or {})})
    try:
        executor(runtime)
        chat_model(config.model_dump(mode="json"), runtime)
    except (ValueError, ImportError, RuntimeError) as e:  # an unknown sandbox, e2b without a key, a bad model
        raise SettingsError(str(e)) from None
    return config


def prepare(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    config = settings(state, runtime)
    task = load_task(state["task_dir"], state.get("task_overrides"))
    run_dir = Path(state.get("run_dir") or new_run_dir(state.get("out") or default_out(), task.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunFolder(run_dir)
    try:
        return lay_out(state, runtime, config, task, run)
    except Exception as e:  # the folder exists now: it says how the run ended (the server has no runner to)
        record_crash(run, e)
        raise


def lay_out(state: GomeState, runtime: Runtime[GomeContext] | None, config: RunConfig, task, run: RunFolder) -> dict:
    """The run folder's own copy of the data, its descriptions, run.json; then the task's challenges."""
    run_dir = run.root
    run.copy_input(task.data_dir)
    run.write_schema(describe_data(task, run.input) +
                     f"\n- installed Python packages (import only these): {environment(runtime, run)}\n")
    existing = run.read("run", {})
    started = existing.get("started_at") or time.time()
    run_id = existing.get("run_id") or run_dir.name
    run.write("task", task.model_dump())
    run.update_run_json(run_id=run_id, task=task.name, task_dir=str(state["task_dir"]), metric=task.metric,
                        direction=task.direction, config=config.model_dump(mode="json"), status="running",
                        started_at=started, model=model_name(config, runtime),
                        isolation=getattr(executor(runtime), "isolation", type(executor(runtime)).__name__))
    emit(runtime, {"event": "phase", "phase": "searching", "steps": config.steps, "traces": config.traces,
                   "time_s": config.time_s, "direction": task.direction}, str(run_dir))
    # The description can be long: prompts read it from the run folder, state keeps the rest of the task.
    update = {"task": task.model_dump(mode="json", exclude={"description"}), "config": config.model_dump(mode="json"),
              "run_dir": str(run_dir), "run_id": run_id, "started_at": started,
              "deadline": started + config.search_time(), "challenges": [], "usage": {}}
    if config.challenges:
        update["challenges"], update["usage"] = challenges({**state, **update, "trace": None}, runtime)
        run.write("challenges", {"challenges": update["challenges"]})
    return update
