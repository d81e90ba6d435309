"""TypedDict graph states and their reducers.

State carries ids and small summaries only; code, logs and predictions live as files in the run folder. Every
field here is bounded, so a checkpoint does not grow with the number of steps.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def keep_last(n: int):
    """Reducer: append new items, keep the most recent n (bounded history)."""

    def reduce(old: list | None, new: list | None) -> list:
        return ((old or []) + (new or []))[-n:]

    reduce.__name__ = f"keep_last_{n}"
    return reduce


def add_usage(old: dict | None, new: dict | None) -> dict:
    """Reducer: sum token / call counters key by key."""
    out = dict(old or {})
    for k, v in (new or {}).items():
        out[k] = out.get(k, 0) + v
    return out


FEEDBACK_WINDOW = 8  # steps of a trace's own history kept in state (prompts and auto mode see at most this many)


class GomeInput(TypedDict, total=False):
    task_dir: str  # the task folder (or MLE-bench `prepared/` folder)
    run_dir: str  # where the run writes; a new folder under `out` when missing
    out: str  # parent of new run folders (default "runs")
    config: dict[str, Any]  # RunConfig as a dict
    task_overrides: dict[str, Any]  # metric / direction / columns when the folder has no task.toml


class GomeState(GomeInput, total=False):
    run_id: str
    task: dict[str, Any]  # Task as a dict
    started_at: float
    deadline: float  # end of search: the rest of the wall clock is kept for select
    trace_results: Annotated[list[dict[str, Any]], operator.add]
    selected: dict[str, Any] | None
    status: str
    message: str


class GomeOutput(TypedDict, total=False):
    run_dir: str
    status: str
    message: str
    selected: dict[str, Any] | None
    trace_results: list[dict[str, Any]]


class TraceState(TypedDict, total=False):
    trace: int
    run_dir: str
    run_id: str
    task: dict[str, Any]
    config: dict[str, Any]
    deadline: float
    budget: int  # experiments this trace may run
    step: int  # experiments this trace has finished
    pending: dict[str, Any] | None  # the experiment being worked on: id, parent, gradient
    last: dict[str, Any] | None  # result summary of the last execute
    best: dict[str, Any] | None  # id, score, score_source of this trace's best
    diagnosis: dict[str, Any] | None  # last diagnosis (small: capped fields)
    gradient: dict[str, Any] | None
    feedback: Annotated[list[dict[str, Any]], keep_last(FEEDBACK_WINDOW)]
    usage: Annotated[dict[str, float], add_usage]
    stop_reason: str | None
    mode_now: str  # gradient or tree: what the next step is (auto mode changes it)
    mode_steps: int  # steps taken in mode_now since the last switch
    since_improvement: int  # steps since this trace's best last improved
    spent: dict[str, float]  # run-wide LLM tokens and dollars, read from the ledger at each checkpoint
    # This trace's summary, replaced at every checkpoint (no reducer here): the trace returns it once, and the
    # parent's operator.add collects one per trace.
    trace_results: list[dict[str, Any]]


class TraceOutput(TypedDict):
    trace_results: list[dict[str, Any]]
