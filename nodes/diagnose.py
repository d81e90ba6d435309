"""diagnose: read the run (code, diff against the best, logs, scores) and return a typed Diagnosis."""

from __future__ import annotations

import difflib
from pathlib import Path

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.common import CODE_CHARS, LOG_CHARS, clip, llm, read_code, system, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import Diagnosis, Problem
from gome.tools.files import read_text
from gome.tools.run.folder import experiment_dir, write_json
from gome.tools.task.metrics import beats

PROMPT = """# Task
{task_name}: metric {metric} ({direction}). Scripts must write val_predictions.csv (held-out rows of train) that the
harness scores with the metric, and {submission} for the test set.

# The script that just ran
```python
{code}
```

# Diff against the best script so far
{diff}

# What happened
status: {status} ({detail}); runtime {runtime:.1f} s
harness validation score: {score}
validation problem: {val_error}
submission check: {submission}
best score so far: {best}

# stdout (tail)
{stdout}

# stderr (tail)
{stderr}

Diagnose this run. Say what happened (bug, timeout, oom, ran), list the problems you see with evidence from the
code or logs and the component each lives in, check that the validation matches how the metric scores the test
set and that no held-out label leaks into training or features, and say whether this run should replace the best
(accept only a correct, leak-free run that beats it)."""

OUTCOME = {"timeout": "timeout", "oom": "oom"}  # any other failure is a bug


def fallback_diagnosis(last: dict, best: dict | None, direction: str) -> Diagnosis:
    """What the harness alone can say when the LLM cannot: it ran or not, and whether the score beats the best."""
    ran = last["status"] == "ok" and last.get("submission_valid")
    problems = [Problem(description=msg[:600], evidence=msg[:600], component="validation")
                for msg in (last.get("val_error"), last.get("submission_error")) if msg]
    better = bool(ran and beats(last, best, direction))
    return Diagnosis(outcome="ran" if ran else OUTCOME.get(last["status"], "bug"),
                     summary=f"status {last['status']}: {last.get('detail', '')}"[:800], problems=problems,
                     accept=better, reason="harness score beats the best" if better else "not better or failed")


def _tail(path: Path) -> str:
    try:
        return clip(read_text(path, 1 << 20), LOG_CHARS)
    except OSError:
        return "(none)"


def diagnose(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, best, task = state["last"], state.get("best"), task_of(state)
    folder = experiment_dir(state["run_dir"], last["id"])
    if last["status"] == "no_script":  # nothing ran: no LLM call can add to that
        diag = Diagnosis(outcome="bug", summary=f"no script to run: {last.get('detail')}"[:800], accept=False,
                         reason="no script")
        write_json(folder / "diagnosis.json", {"source": "fallback", **diag.model_dump()})
        return {"diagnosis": {"source": "fallback", **diag.model_dump()}}
    if state.get("mode_now") == "tree" and last["status"] != "ok":
        # Tree search uses a diagnosis only as bug status, and a failed run is a bug: save the LLM call.
        record = {"source": "fallback", **fallback_diagnosis(last, best, task.direction).model_dump()}
        write_json(folder / "diagnosis.json", record)
        return {"diagnosis": record}

    code = read_code(state["run_dir"], last["id"]) or ""
    best_code = read_code(state["run_dir"], best["id"]) if best else None
    diff = ("(no best yet: this is the first working attempt)" if best_code is None else
            clip("".join(difflib.unified_diff(best_code.splitlines(True), code.splitlines(True), "best.py",
                                              "this.py")) or "(identical)", CODE_CHARS // 2))
    caller = llm(state, runtime, "diagnose")
    prompt = PROMPT.format(
        task_name=task.name, metric=task.metric, direction=task.direction, code=clip(code, CODE_CHARS), diff=diff,
        status=last["status"], detail=last.get("detail", ""), runtime=last.get("runtime_s", 0.0),
        score=_score_text(last), val_error=last.get("val_error") or "none",
        submission="valid" if last.get("submission_valid") else f"INVALID: {last.get('submission_error')}",
        best=_score_text(best) if best else "none yet", stdout=_tail(folder / "stdout.txt"),
        stderr=_tail(folder / "stderr.txt"))
    diag = caller.decide(Diagnosis, [system(state), HumanMessage(prompt)])
    source = "llm"
    if diag is None:
        diag, source = fallback_diagnosis(last, best, task.direction), "fallback"
    record = {"source": source, **diag.model_dump(), "llm_errors": caller.errors[-3:]}
    write_json(folder / "diagnosis.json", record)
    return {"diagnosis": {"source": source, **diag.model_dump()}, "usage": caller.usage}


def _score_text(summary: dict) -> str:
    if summary.get("score") is None:
        return "none"
    return f"{summary['score']:.6g} ({summary.get('score_source')})"
