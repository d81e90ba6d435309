"""repair: a script that failed (an import that does not resolve, an exception, a time-out, missing or invalid
outputs) is fixed inside its step, from its code, the error and the change it implements, so that an idea is
judged on what it does, not on a bug of its implementation. Up to `repair.rounds` times; each failed attempt is
kept in experiments/<id>/attempts/<k>/.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from gome.nodes.policy import over_budget
from gome.nodes.prompts import CODE_CHARS, LOG_CHARS, REPAIR, clip, implements, time_note
from gome.nodes.runtime import config_of, folder_of, llm, task_of
from gome.nodes.scripts import approach_of, same_program, write_step
from gome.nodes.template import baseline_template, blend_template
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.tools.llm.usage import Ledger

UNCHANGED = "it is the same script that failed: change what the error names"
HOT = 0.8  # sampling temperature of a second or later repair
PHASES = {"static": "the import check, before the script ran", "debug": "the first run, on a sample (GOME_DEBUG=1)",
          "full": "the full run", "candidates": "staging the blend's candidates"}


def repair(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, pending, cfg, task = state["last"], state["pending"], config_of(state), task_of(state)
    folder, attempt = folder_of(state).experiment(pending["id"]), state.get("attempt", 0)
    failed = folder.attempt_code(attempt) or folder.read_code() or ""  # as archived: a re-run after a crash too
    error = "; ".join(str(last.get(k)) for k in ("status", "detail", "val_error", "submission_error") if last.get(k))
    if (template := late_template(state, task, failed)) is not None:
        return _repaired(folder, pending, attempt, error, template, {}, {"asked": "template"})
    if spent := over_budget(state.get("config", {}), Ledger.of(folder_of(state).path("usage.jsonl")).spent(cfg.prices)):
        return {"last": _unrepaired(folder, last, f"the run's {spent} budget is spent")}
    earlier = [f"- attempt {a['attempt'] + 1} ({a.get('phase', 'run')}): {(a.get('detail') or '')[:200]}"
               for a in folder.attempts()[:-1]]
    caller = llm(state, runtime, "repair")
    code, edit = write_step(caller, state, REPAIR.format(
        hypothesis=implements(state), attempt=attempt + 1, rounds=cfg.repair.rounds, code=clip(failed, CODE_CHARS),
        phase=PHASES.get(last.get("phase"), "the run"), error=error[:2000],
        stderr=clip(folder.read_log("stderr") or "", LOG_CHARS) or "(empty)", earlier="\n".join(earlier) or "- none",
        submission_file=task.submission_file, time=time_note(state)), failed, small=True,
        temperature=HOT if attempt else None)  # a fresh sample helps a small model more than the same ask again
    # The same script back is judged as it failed, without asking again: in the eval the 1.5B model answered
    # "that is the same script" with the same script again, every time, at ~130 s a call.
    if code is None or same_program(code, failed):
        why = UNCHANGED if code is not None else caller.errors[-1] if caller.errors else "no script in the reply"
        return {"last": _unrepaired(folder, last, why), "usage": caller.usage}
    return _repaired(folder, pending, attempt, error, code, caller.usage, edit)


def late_template(state: dict, task, failed: str) -> str | None:
    """A late-stage step whose script failed is repaired with its template, which is known to run (the 1.5B model
    typed CANDIDs for CANDIDATES, and repeated it): no model is needed to repair a copy of it."""
    kind = state["pending"].get("kind")
    template = (blend_template(task, state["gradient"]["blend"]) if kind == "blend" else
                baseline_template(task, config_of(state).repair.debug_rows, ensemble=True) if kind == "ensemble"
                else None)
    return None if template is None or same_program(template, failed) else template


def _repaired(folder, pending: dict, attempt: int, error: str, code: str, usage: dict, edit: dict) -> dict:
    folder.write_code(code)
    plan = folder.read("plan", {})
    repairs = [*plan.get("repairs", []), {"attempt": attempt + 1, "after": error[:300], "edit": edit}]
    folder.write("plan", {**plan, "repairs": repairs})
    return {"attempt": attempt + 1, "pending": {**pending, "approach": approach_of(code) or pending.get("approach")},
            "usage": usage}


def _unrepaired(folder, last: dict, why: str) -> dict:
    """The failed attempt, with why no repair followed (in result.json too: the user reads it there)."""
    last = {**last, "repair_error": why}
    folder.write("result", last)
    return last
