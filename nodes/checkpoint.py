"""checkpoint: the end of a step. Judge it, record it in the journal, promote a new best, remember an accepted
hypothesis, and apply the search policy (stop, or the mode of the next step)."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from gome.nodes import memory
from gome.nodes.judge import decide, gain, is_buggy, verdict
from gome.nodes.policy import choose_mode, stop_reason
from gome.nodes.runtime import config_of, emit, folder_of, store_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import BestRef, Feedback, TraceResult, TraceState
from gome.state.records import GRADIENT_KINDS, Experiment, MemoryEntry
from gome.tools.llm.usage import Ledger


def checkpoint(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, pending, diagnosis, task = state["last"], state["pending"], state.get("diagnosis") or {}, task_of(state)
    cfg, run = config_of(state), folder_of(state)
    best, step, trace = state.get("best"), state.get("step", 0), state["trace"]
    mode = state.get("mode_now") or cfg.start_mode()
    gradient = state.get("gradient") if pending.get("kind") in GRADIENT_KINDS else None
    accepted, reason = decide(last, diagnosis, best, task.direction, mode)
    buggy = is_buggy(last, diagnosis, mode)
    exp = Experiment(
        id=last["id"], trace=trace, step=step, parent=pending.get("parent"), status=last["status"],
        runtime_s=last.get("runtime_s", 0.0), score=last.get("score"), score_source=last.get("score_source"),
        val_error=last.get("val_error"), submission_valid=bool(last.get("submission_valid")),
        submission_error=last.get("submission_error"), gradient=gradient,
        diagnosis={k: v for k, v in diagnosis.items() if k != "source"} or None,
        diagnosis_source=diagnosis.get("source"), accepted=accepted, decision=reason, mode=mode,
        intent=pending.get("kind", "draft"), finished_at=time.time(),
        hypothesis=gradient["hypothesis"]["change"] if gradient else pending.get("kind"),
        verdict=verdict(pending.get("kind", "draft"), accepted, buggy), attempts=state.get("attempt", 0) + 1,
        buggy=buggy)
    ref = BestRef(id=exp.id, trace=trace, step=step, score=exp.score, score_source=exp.score_source,
                  submission_valid=exp.submission_valid, status=exp.status)
    update: dict = {"step": step + 1, "gradient": None,
                    "since_improvement": 0 if accepted else state.get("since_improvement", 0) + 1,
                    "mode_steps": state.get("mode_steps", 0) + 1}
    if accepted:
        exp.improved_best = run.promote_best(ref, task.direction, submission_file=task.submission_file)
        update["best"] = ref
        if gradient:
            h = gradient["hypothesis"]
            memory.remember(store_of(runtime), state["run_id"], MemoryEntry(
                change=h["change"], component=h["component"], step_size=h["step_size"],
                gain=gain(last, best, task.direction), trace=trace, step=step, experiment=exp.id,
                created_at=exp.finished_at))

    update["feedback"] = [Feedback(step=step, id=exp.id, hypothesis=exp.hypothesis, status=exp.status,
                                   score=exp.score, accepted=accepted, reason=reason[:300], mode=mode,
                                   verdict=exp.verdict)]
    update["spent"] = Ledger.of(run.path("usage.jsonl")).spent(cfg.prices)
    after = {**state, **update, "feedback": [*state.get("feedback", []), *update["feedback"]], "mode_now": mode}
    update["stop_reason"] = stop_reason(after)
    next_mode, switch = choose_mode(after)
    update["mode_now"] = next_mode
    if switch and not update["stop_reason"]:
        exp.switch = f"{mode} -> {next_mode}: {switch}"
        update["mode_steps"] = 0

    run.experiment(exp.id).write_experiment(exp)
    run.update_run_json()

    new_best = update.get("best", best)
    update["trace_results"] = [TraceResult(trace=trace, best=new_best, steps=step + 1,
                                           stop_reason=update["stop_reason"], usage=state.get("usage", {}))]
    emit(runtime, {"event": "step", "trace": trace, "step": step + 1, "budget": state.get("budget"), "id": exp.id,
                   "mode": mode, "intent": exp.intent, "status": exp.status, "score": exp.score,
                   "score_source": exp.score_source, "accepted": accepted, "improved_best": exp.improved_best,
                   "best": (new_best or {}).get("score"), "runtime_s": exp.runtime_s, "hypothesis": exp.hypothesis,
                   "reason": reason, "switch": exp.switch, "spent": update["spent"], "attempts": exp.attempts,
                   "verdict": exp.verdict}, state["run_dir"])
    return update
