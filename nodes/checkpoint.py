"""checkpoint: record the experiment, decide accept / reject, update the best and the success memory."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from gome.graph.routing import stop_reason
from gome.nodes.common import task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import Experiment, MemoryEntry
from gome.tools.metrics import beats
from gome.tools.run_folder import experiment_dir, promote_best, update_run_json, write_json


def memory_namespace(run_id: str) -> tuple[str, ...]:
    return ("gome", run_id, "memory")


def decide(last: dict, diagnosis: dict, best: dict | None, direction: str) -> tuple[bool, str]:
    """The harness and the diagnosis together: accept only a valid, aligned, leak-free run that beats the best.

    The first working run of a trace is accepted unless the diagnosis finds leakage or misaligned validation:
    there is nothing for it to beat, and a trace needs a base to improve.
    """
    if last["status"] != "ok":
        return False, f"run failed ({last['status']}): {last.get('detail', '')}"
    if not last.get("submission_valid"):
        return False, f"invalid submission: {last.get('submission_error')}"
    if last.get("score") is None:
        return False, f"no validation score: {last.get('val_error')}"
    if diagnosis.get("leakage"):
        return False, "leakage found: " + diagnosis.get("reason", "")
    if not diagnosis.get("validation_aligned", True):
        return False, "validation not aligned with the metric: " + diagnosis.get("reason", "")
    if not beats(last, best, direction):
        return False, f"score {last['score']:.6g} does not beat the best {best['score']:.6g}"
    if best and not diagnosis.get("accept"):
        return False, "diagnosis rejects it: " + diagnosis.get("reason", "")
    return True, "new best" if best else "first working solution"


def gain(last: dict, best: dict | None, direction: str) -> float | None:
    if not best or best.get("score") is None or best.get("score_source") != last.get("score_source"):
        return None
    delta = last["score"] - best["score"]
    return delta if direction == "maximize" else -delta


def checkpoint(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, pending, diagnosis, task = state["last"], state["pending"], state.get("diagnosis") or {}, task_of(state)
    best, step, trace = state.get("best"), state.get("step", 0), state["trace"]
    gradient = state.get("gradient") if pending.get("kind") == "update" else None
    accepted, reason = decide(last, diagnosis, best, task.direction)
    exp = Experiment(
        id=last["id"], trace=trace, step=step, parent=pending.get("parent"), status=last["status"],
        runtime_s=last.get("runtime_s", 0.0), score=last.get("score"), score_source=last.get("score_source"),
        val_error=last.get("val_error"), submission_valid=bool(last.get("submission_valid")),
        submission_error=last.get("submission_error"), gradient=gradient,
        diagnosis={k: v for k, v in diagnosis.items() if k != "source"} or None,
        diagnosis_source=diagnosis.get("source"), accepted=accepted, decision=reason, finished_at=time.time())
    summary = {"id": exp.id, "trace": trace, "step": step, "score": exp.score, "score_source": exp.score_source,
               "submission_valid": exp.submission_valid, "status": exp.status}
    update: dict = {"step": step + 1, "gradient": None}
    if accepted:
        exp.improved_best = promote_best(state["run_dir"], summary, task.direction,
                                         submission_file=task.submission_file)
        update["best"] = summary
        store = runtime.store if runtime is not None else None
        if gradient and store is not None:
            h = gradient["hypothesis"]
            entry = MemoryEntry(change=h["change"], component=h["component"], step_size=h["step_size"],
                                gain=gain(last, best, task.direction), trace=trace, step=step, experiment=exp.id,
                                created_at=exp.finished_at)
            store.put(memory_namespace(state["run_id"]), exp.id, entry.model_dump())
    record = exp.model_dump(mode="json")
    record["hypothesis"] = gradient["hypothesis"]["change"] if gradient else pending.get("kind")
    write_json(experiment_dir(state["run_dir"], exp.id) / "metrics.json", record)
    update_run_json(state["run_dir"])

    update["feedback"] = [{"step": step, "id": exp.id, "hypothesis": record["hypothesis"], "status": exp.status,
                           "score": exp.score, "accepted": accepted, "reason": reason[:300]}]
    after = {**state, **update}
    update["stop_reason"] = stop_reason(after)
    new_best = update.get("best", best)
    update["trace_results"] = [{"trace": trace, "best": new_best, "steps": step + 1,
                                "stop_reason": update["stop_reason"], "usage": state.get("usage", {})}]
    if runtime is not None and runtime.stream_writer is not None:
        runtime.stream_writer({"event": "step", "trace": trace, "step": step + 1, "budget": state.get("budget"),
                               "id": exp.id, "status": exp.status, "score": exp.score,
                               "score_source": exp.score_source, "accepted": accepted,
                               "improved_best": exp.improved_best, "best": (new_best or {}).get("score"),
                               "runtime_s": exp.runtime_s, "hypothesis": record["hypothesis"], "reason": reason})
    return update
