"""What a node works with, resolved in one place: the run folder, the run's typed config and task, and its
collaborators from the runtime context (chat model, executor, store, progress events).

A node never takes a collaborator from a global: tests pass fakes in the context, the LangGraph server passes
settings (`model`, `sandbox`) that are built here once and reused.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
import traceback
import weakref
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from gome.state.context import GomeContext
from gome.state.records import ModelSpec, RunConfig, Task
from gome.tools.llm.models import make_chat_model
from gome.tools.llm.structured import LLMCaller
from gome.tools.llm.usage import Ledger
from gome.tools.run.folder import RunFolder, is_disk_full
from gome.tools.sandbox import Executor, make_executor

log = logging.getLogger("gome")

_built: dict[tuple, object] = {}  # models and executors built from settings, reused across nodes and steps


def context_of(runtime: Runtime[GomeContext] | None) -> GomeContext:
    return (runtime.context if runtime is not None else None) or GomeContext()


def located(node):
    """A node that works in the run folder where it is now (a run folder moved or copied after its checkpoints
    were written carries its old path in state; the runner passes the real one in the context), and records its
    crash there (crash.txt, run.json "crashed"), however the graph was invoked."""

    @functools.wraps(node)
    def run(state: dict, runtime: Runtime[GomeContext] | None = None):
        actual = context_of(runtime).run_dir
        if actual and state.get("run_dir") and state["run_dir"] != actual:
            state = {**state, "run_dir": actual}
        try:
            return node(state, runtime)
        except GraphBubbleUp:  # an interrupt, or a command to the parent graph: not a failure
            raise
        except Exception as e:  # the server has no runner around the graph: the node records its own crash
            record_crash(folder_of(state), e)
            raise

    return run


def record_crash(folder: RunFolder, error: BaseException) -> None:
    """crash.txt, run.json status "crashed" and the report, whatever it takes: on a full disk, the space set
    aside at the start is freed first. Nothing here may raise: the caller re-raises the original error. Once per
    error: the node that raised it records it, and so does the runner it passes through."""
    if getattr(error, "_gome_recorded", False):
        return
    with contextlib.suppress(Exception):
        error._gome_recorded = True
    full = is_disk_full(error)
    if full:
        folder.free_reserve()
    message = (f"no space left on the disk ({error}); free some, then continue with gome resume" if full else
               f"{type(error).__name__}: {error}")
    with contextlib.suppress(OSError):
        folder.write_text("crash.txt", "".join(traceback.format_exception(error)))
    with contextlib.suppress(Exception):
        folder.update_run_json(status="crashed", message=message[:2000], finished_at=time.time())
    with contextlib.suppress(Exception):
        from gome.tools.report.report import write_report

        write_report(folder.root)


def folder_of(state: dict) -> RunFolder:
    return RunFolder(state["run_dir"])


def config_of(state: dict) -> RunConfig:
    """The run's typed config (shared: read it, never change it)."""
    return _typed(RunConfig, state["config"])


def task_of(state: dict) -> Task:
    """The task, its data read from the run's own copy (the task folder may have moved since)."""
    return _typed(Task, state["task"], str(folder_of(state).input))


_validated: dict[tuple, tuple[dict, Any]] = {}  # (model, id of a state value, data_dir) -> (the value, typed)
_validated_lock = threading.Lock()


def _typed(model: type, value: dict, data_dir: str | None = None):
    """model.model_validate(value), once per state value: LangGraph hands every node of a step the same dict for a
    channel that did not change, and never changes it in place; a step asked ~10 times. The value is kept with
    its typed form, so its id is not reused while it is cached."""
    key = (model, id(value), data_dir)
    hit = _validated.get(key)
    if hit is not None and hit[0] is value:
        return hit[1]
    typed = model.model_validate(value if data_dir is None else {**value, "data_dir": data_dir})
    with _validated_lock:  # parallel traces are threads of one process
        _validated[key] = (value, typed)
        while len(_validated) > 256:  # two per trace (a resumed trace has its own values), runs of an eval
            _validated.pop(next(iter(_validated)))
    return typed


def llm(state: dict, runtime: Runtime[GomeContext] | None, node: str) -> LLMCaller:
    """The node's LLM access: the context's chat model, else one built from the context's or the run's spec."""
    return LLMCaller(chat_model(state["config"], runtime), node, ledger=Ledger.of(folder_of(state).path("usage.jsonl")),
                     trace=state.get("trace"), deadline=state.get("deadline"))


def chat_model(config: dict, runtime: Runtime[GomeContext] | None):
    """The context's chat model, else one built (once) from the context's or the run config's spec."""
    ctx = context_of(runtime)
    if ctx.chat_model is not None:
        return ctx.chat_model
    spec = ModelSpec(**config.get("model", {}))
    spec = spec.model_copy(update={k: v for k, v in (("model", ctx.model), ("base_url", ctx.base_url)) if v})
    key = ("model", spec.model_dump_json())
    return _built.get(key) or _built.setdefault(key, make_chat_model(spec))


def executor(runtime: Runtime[GomeContext] | None) -> Executor:
    ctx = context_of(runtime)
    if ctx.executor is not None:
        return ctx.executor
    key = ("executor", ctx.sandbox, ctx.allow_network)
    if key not in _built:
        _built[key] = make_executor(ctx.sandbox, allow_network=ctx.allow_network)
    return _built[key]


def store_of(runtime: Runtime[GomeContext] | None):
    return runtime.store if runtime is not None else None


def emit(runtime: Runtime[GomeContext] | None, event: dict, run_dir: str | None = None) -> None:
    """A progress event for whoever follows the run: the context's on_event (the CLI's table), a stream of custom
    events (the server's clients), and the run folder's events.jsonl, however the graph was invoked."""
    event = {**event, "at": round(time.time(), 3)}
    if run_dir:
        with contextlib.suppress(OSError):  # a full disk must not end the run over a progress line
            RunFolder(run_dir).append_event(json.dumps(event, default=str))
    if runtime is not None and runtime.stream_writer is not None:
        runtime.stream_writer(event)
    if callable(on_event := context_of(runtime).on_event):
        try:
            on_event(event)
        except Exception as e:  # a progress display that broke (`gome run --json | head`) must not end the run
            _warn_once(on_event, f"gome: an event could not be shown ({type(e).__name__}: {e}); the run goes on, and "
                                 "its events are kept in events.jsonl")


_warned: weakref.WeakSet = weakref.WeakSet()  # on_event callbacks that raised


def _warn_once(on_event: Any, message: str) -> None:
    try:
        if on_event in _warned:
            return
        _warned.add(on_event)
    except TypeError:  # not weakly referable: warned each time
        pass
    log.warning(message)
