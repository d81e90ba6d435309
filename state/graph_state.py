"""Graph states, the typed records they carry, and their reducers.

State carries ids and small summaries only; code, logs and predictions live as files in the run folder and the
experiments in its journal. Every field here is bounded, so a checkpoint does not grow with the number of steps.
Records are TypedDicts: typed for readers, Studio and type checkers, plain dicts in checkpoints (no msgpack
allow-list, nothing to re-validate). typing_extensions' TypedDict, since LangGraph cannot build a JSON schema
from typing's on Python 3.11.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Required

from typing_extensions import TypedDict


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


class PendingScript(TypedDict):
    """The experiment about to run: written by draft, apply-momentum or expand, read by execute and checkpoint."""

    id: str
    parent: str | None
    kind: str  # draft, update, debug, improve
    has_script: bool
    approach: str | None  # the script's own `# Approach:` line
    llm_error: str | None  # why there is no script


class RunSummary(TypedDict, total=False):
    """What execute saw: how the script ended and how the harness scored it (also experiments/<id>/result.json)."""

    id: str
    status: str  # ok, error, timeout, oom, killed, no_script
    runtime_s: float
    score: float | None
    score_source: str | None  # harness or self_reported
    val_error: str | None
    submission_valid: bool
    submission_error: str | None
    detail: str
    returncode: int | None
    left: list[str]  # files the script left in its folder
    phase: str  # where it ended: static (the import check), debug (the run on a sample) or full
    repair_error: str | None  # the repair that should have followed could not get a script
    node: str  # the cluster node it ran on (Ray's node id); absent when it ran on gome's own host


class BestRef(TypedDict):
    """The best experiment so far: enough to compare a new score with it."""

    id: str
    trace: int
    step: int
    score: float | None
    score_source: str | None
    submission_valid: bool
    status: str


class HypothesisRecord(TypedDict, total=False):
    change: str
    component: str
    rationale: str
    step_size: str  # minimal, moderate, rewrite
    impact: int
    confidence: int
    novelty: int
    cost: int


class GradientRecord(TypedDict, total=False):
    """The chosen hypothesis (records.Gradient as a dict)."""

    hypothesis: HypothesisRecord
    alternatives: list[str]
    source: str  # llm, fallback or late-stage
    dropped: list[str]  # proposals that repeated a refuted change
    blend: list[str]  # late stage: the experiments to blend, best first
    ensemble: bool  # late stage: average the best script's model with another kind of model


class DiagnosisRecord(TypedDict, total=False):
    """The last diagnosis (records.Diagnosis as a dict) and where it came from."""

    outcome: str  # bug, timeout, oom, ran
    summary: str
    problems: list[dict[str, str]]
    validation_aligned: bool
    leakage: bool
    accept: bool
    reason: str
    hypothesis_verdict: str  # confirmed, refuted or untested (the model's view)
    source: str  # llm or fallback


class Feedback(TypedDict):
    """One finished step of this trace, as later prompts and auto mode see it."""

    step: int
    id: str
    hypothesis: str | None
    status: str
    score: float | None
    accepted: bool
    reason: str
    mode: str
    verdict: str | None  # of the gradient's hypothesis: confirmed, refuted, untested


class Challenge(TypedDict):
    name: str
    detail: str
    component: str


class TraceResult(TypedDict):
    trace: int
    best: BestRef | None
    steps: int
    stop_reason: str | None
    usage: dict[str, float]


class GomeInput(TypedDict, total=False):
    task_dir: Required[str]  # the task folder (or MLE-bench `prepared/` folder)
    run_dir: str  # where the run writes; a new folder under `out` when missing
    out: str  # parent of new run folders (default $GOME_RUNS_DIR, else ~/gome-runs)
    config: dict[str, Any]  # RunConfig as a dict
    task_overrides: dict[str, Any]  # metric / direction / columns when the folder has no task.toml


class GomeState(GomeInput, total=False):
    run_id: str
    task: dict[str, Any]  # records.Task as a dict, without its description (prompts read it from the run folder)
    started_at: float
    deadline: float  # end of search: the rest of the wall clock is kept for select
    trace_results: Annotated[list[TraceResult], operator.add]
    challenges: list[Challenge]  # the task's own challenges, listed once at prepare (at most 6)
    usage: Annotated[dict[str, float], add_usage]  # prepare's LLM use (each trace's is in its result)
    selected: BestRef | None
    status: str
    message: str


class GomeOutput(TypedDict, total=False):
    run_dir: str
    status: str
    message: str
    selected: BestRef | None
    trace_results: list[TraceResult]


class TraceState(TypedDict, total=False):
    trace: int
    run_dir: str
    run_id: str
    task: dict[str, Any]  # records.Task as a dict
    config: dict[str, Any]  # records.RunConfig as a dict
    deadline: float
    budget: int  # experiments this trace may run
    step: int  # experiments this trace has finished
    challenges: list[Challenge]
    pending: PendingScript | None
    attempt: int  # repairs so far of the pending experiment's script
    last: RunSummary | None
    best: BestRef | None  # this trace's best
    diagnosis: DiagnosisRecord | None
    gradient: GradientRecord | None
    feedback: Annotated[list[Feedback], keep_last(FEEDBACK_WINDOW)]
    usage: Annotated[dict[str, float], add_usage]
    stop_reason: str | None
    mode_now: str  # gradient or tree: what the next step is (auto mode changes it)
    mode_steps: int  # steps taken in mode_now since the last switch
    since_improvement: int  # steps since this trace's best last improved
    spent: dict[str, float]  # run-wide LLM tokens and dollars, read from the ledger at each checkpoint
    # This trace's summary, replaced at every checkpoint (no reducer here): the trace returns it once, and the
    # parent's operator.add collects one per trace.
    trace_results: list[TraceResult]


class TraceOutput(TypedDict):
    trace_results: list[TraceResult]
