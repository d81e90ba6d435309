"""diagnose: read the run (code, diff against the best, logs, scores) and return a typed Diagnosis."""

from __future__ import annotations

import difflib

from langgraph.runtime import Runtime

from gome.nodes.judge import working
from gome.nodes.prompts import CODE_CHARS, DIAGNOSE, LOG_CHARS, ask, clip, implements
from gome.nodes.runtime import folder_of, llm, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import BestRef, DiagnosisRecord, RunSummary, TraceState
from gome.state.journal import beats
from gome.state.records import Diagnosis, Problem

OUTCOME = {"timeout": "timeout", "oom": "oom"}  # any other failure is a bug
DIFF_LINES = 2000  # difflib is quadratic on repetitive lines: a diff of longer scripts is cut


def fallback_diagnosis(last: RunSummary, best: BestRef | None, direction: str) -> Diagnosis:
    """What the harness alone can say when the LLM cannot: it ran or not, and whether the score beats the best."""
    ran = last["status"] == "ok" and last.get("submission_valid")
    problems = [Problem(description=msg[:600], evidence=msg[:600], component="validation")
                for msg in (last.get("val_error"), last.get("submission_error")) if msg]
    better = bool(ran and beats(last, best, direction))
    return Diagnosis(outcome="ran" if ran else OUTCOME.get(last["status"], "bug"),
                     summary=f"status {last['status']}: {last.get('detail', '')}"[:800], problems=problems,
                     accept=better, reason="harness score beats the best" if better else "not better or failed",
                     hypothesis_verdict="confirmed" if better else "refuted" if ran else "untested")


def _record(diag: Diagnosis, source: str) -> DiagnosisRecord:
    return DiagnosisRecord(source=source, **diag.model_dump())


def _untested_if_failed(diag: Diagnosis, last: RunSummary) -> Diagnosis:
    """A change whose implementation failed was not tested, whatever the model says."""
    return diag if working(last) else diag.model_copy(update={"hypothesis_verdict": "untested"})


def diagnose(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, best, task, run = state["last"], state.get("best"), task_of(state), folder_of(state)
    folder = run.experiment(last["id"])
    if last["status"] == "no_script":  # nothing ran: no LLM call can add to that
        record = _record(Diagnosis(outcome="bug", summary=f"no script to run: {last.get('detail')}"[:800],
                                   accept=False, reason="no script"), "fallback")
        folder.write("diagnosis", record)
        return {"diagnosis": record}
    if state.get("mode_now") == "tree" and last["status"] != "ok":
        # Tree search uses a diagnosis only as bug status, and a failed run is a bug: save the LLM call.
        record = _record(fallback_diagnosis(last, best, task.direction), "fallback")
        folder.write("diagnosis", record)
        return {"diagnosis": record}

    code = folder.read_code() or ""
    best_code = run.experiment(best["id"]).read_code() if best else None
    diff = ("(no best yet: this is the first working attempt)" if best_code is None else
            clip("".join(difflib.unified_diff(best_code.splitlines(True)[:DIFF_LINES],
                                              code.splitlines(True)[:DIFF_LINES], "best.py", "this.py"))
                 or "(identical)", CODE_CHARS // 2))
    caller = llm(state, runtime, "diagnose")
    attempts = state.get("attempt", 0) + 1
    prompt = DIAGNOSE.format(
        hypothesis=implements(state),
        code=clip(code, CODE_CHARS), diff=diff, status=last["status"], detail=last.get("detail", ""),
        runtime=last.get("runtime_s", 0.0),
        attempts=f"{attempts} attempt(s), {attempts - 1} repair(s)" if attempts > 1 else "first attempt",
        score=_score_text(last), val_error=last.get("val_error") or "none",
        submission="valid" if last.get("submission_valid") else f"INVALID: {last.get('submission_error')}",
        best=_score_text(best) if best else "none yet", stdout=_tail(folder.read_log("stdout")),
        stderr=_tail(folder.read_log("stderr")))
    diag = caller.decide(Diagnosis, ask(state, prompt))
    source = "llm"
    if diag is None:
        diag, source = fallback_diagnosis(last, best, task.direction), "fallback"
    record = _record(_untested_if_failed(diag, last), source)
    folder.write("diagnosis", {**record, "llm_errors": caller.errors[-3:]})
    return {"diagnosis": record, "usage": caller.usage}


def _tail(log: str | None) -> str:
    return clip(log, LOG_CHARS) if log is not None else "(none)"


def _score_text(summary: RunSummary | BestRef) -> str:
    if summary.get("score") is None:
        return "none"
    return f"{summary['score']:.6g} ({summary.get('score_source')})"
