"""checkpoint: record the experiment, decide accept / reject, update the best and the success memory, then
choose what comes next (stop, or the mode of the next step)."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from gome.graph.routing import choose_mode, stop_reason
from gome.nodes.common import config_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import Experiment, MemoryEntry
from gome.tools.llm.usage import Ledger
from gome.tools.run.folder import experiment_dir, promote_best, update_run_json, write_json
from gome.tools.task.metrics import beats


def memory_namespace(run_id: str) -> tuple[str, ...]:
    return ("gome", run_id, "memory")


def is_buggy(last: dict, diagnosis: dict, mode: str = "gradient") -> bool:
    """Did the run fail to write valid, scored outputs? In tree mode a diagnosis of "bug" that names a problem
    also counts (AIDE's review); a bare "bug" on a run the harness saw succeed does not (a small model copies the
    field's description, "the script crashed", onto working runs). In gradient mode the harness's facts win."""
    failed = last["status"] != "ok" or not last.get("submission_valid") or last.get("score") is None
    return failed or (mode == "tree" and diagnosis.get("outcome") == "bug" and bool(diagnosis.get("problems")))


def decide(last: dict, diagnosis: dict, best: dict | None, direction: str, mode: str = "gradient"
           ) -> tuple[bool, str]:
    """The harness and the diagnosis together: accept only a valid, aligned, leak-free run that beats the best.

    The first working run of a trace is accepted unless the diagnosis finds leakage or misaligned validation:
    there is nothing for it to beat, and a trace needs a base to improve. In tree mode the diagnosis counts only
    as bug status: the scalar score alone ranks nodes, as in AIDE.
    """
    if last["status"] != "ok":
        return False, f"run failed ({last['status']}): {last.get('detail', '')}"
    if not last.get("submission_valid"):
        return False, f"invalid submission: {last.get('submission_error')}"
    if last.get("score") is None:
        return False, f"no validation score: {last.get('val_error')}"
    if mode == "tree":
        if is_buggy(last, diagnosis, mode):
            return False, "diagnosed as buggy: " + diagnosis.get("summary", "")[:200]
    else:
        if diagnosis.get("leakage"):
            return False, "leakage found: " + diagnosis.get("reason", "")
        if not diagnosis.get("validation_aligned", True):
            return False, "validation not aligned with the metric: " + diagnosis.get("reason", "")
    if not beats(last, best, direction):
        return False, f"score {last['score']:.6g} does not beat the best {best['score']:.6g}"
    if mode != "tree" and best and not diagnosis.get("accept"):
        return False, "diagnosis rejects it: " + diagnosis.get("reason", "")
    return True, "new best" if best else "first working solution"


def gain(last: dict, best: dict | None, direction: str) -> float | None:
    if not best or best.get("score") is None or best.get("score_source") != last.get("score_source"):
        return None
    delta = last["score"] - best["score"]
    return delta if direction == "maximize" else -delta


def checkpoint(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, pending, diagnosis, task = state["last"], state["pending"], state.get("diagnosis") or {}, task_of(state)
    cfg = config_of(state)
    best, step, trace = state.get("best"), state.get("step", 0), state["trace"]
    mode = state.get("mode_now") or cfg.start_mode()
    gradient = state.get("gradient") if pending.get("kind") == "update" else None
    accepted, reason = decide(last, diagnosis, best, task.direction, mode)
    exp = Experiment(
        id=last["id"], trace=trace, step=step, parent=pending.get("parent"), status=last["status"],
        runtime_s=last.get("runtime_s", 0.0), score=last.get("score"), score_source=last.get("score_source"),
        val_error=last.get("val_error"), submission_valid=bool(last.get("submission_valid")),
        submission_error=last.get("submission_error"), gradient=gradient,
        diagnosis={k: v for k, v in diagnosis.items() if k != "source"} or None,
        diagnosis_source=diagnosis.get("source"), accepted=accepted, decision=reason, mode=mode,
        intent=pending.get("kind", "draft"), finished_at=time.time())
    summary = {"id": exp.id, "trace": trace, "step": step, "score": exp.score, "score_source": exp.score_source,
               "submission_valid": exp.submission_valid, "status": exp.status}
    update: dict = {"step": step + 1, "gradient": None,
                    "since_improvement": 0 if accepted else state.get("since_improvement", 0) + 1,
                    "mode_steps": state.get("mode_steps", 0) + 1}
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

    hypothesis = gradient["hypothesis"]["change"] if gradient else pending.get("kind")
    update["feedback"] = [{"step": step, "id": exp.id, "hypothesis": hypothesis, "status": exp.status,
                           "score": exp.score, "accepted": accepted, "reason": reason[:300], "mode": mode}]
    ledger = Ledger.of(state["run_dir"])
    update["spent"] = {"tokens": ledger.tokens(), "dollars": round(ledger.dollars(cfg.prices)[0], 6)}
    after = {**state, **update, "feedback": [*state.get("feedback", []), *update["feedback"]], "mode_now": mode}
    update["stop_reason"] = stop_reason(after)
    next_mode, switch = choose_mode(after)
    update["mode_now"] = next_mode
    if switch and not update["stop_reason"]:
        exp.switch = f"{mode} -> {next_mode}: {switch}"
        update["mode_steps"] = 0

    record = {**exp.model_dump(mode="json"), "hypothesis": hypothesis, "buggy": is_buggy(last, diagnosis, mode)}
    write_json(experiment_dir(state["run_dir"], exp.id) / "metrics.json", record)
    update_run_json(state["run_dir"])

    new_best = update.get("best", best)
    update["trace_results"] = [{"trace": trace, "best": new_best, "steps": step + 1,
                                "stop_reason": update["stop_reason"], "usage": state.get("usage", {})}]
    if runtime is not None and runtime.stream_writer is not None:
        runtime.stream_writer({"event": "step", "trace": trace, "step": step + 1, "budget": state.get("budget"),
                               "id": exp.id, "mode": mode, "intent": exp.intent, "status": exp.status,
                               "score": exp.score, "score_source": exp.score_source, "accepted": accepted,
                               "improved_best": exp.improved_best, "best": (new_best or {}).get("score"),
                               "runtime_s": exp.runtime_s, "hypothesis": hypothesis, "reason": reason,
                               "switch": exp.switch, "spent": update["spent"]})
    return update
