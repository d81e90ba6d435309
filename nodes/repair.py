"""repair: a script that failed (an import that does not resolve, an exception, a time-out, missing or invalid
outputs) is fixed inside its step, from its code, the error and the change it implements, so that an idea is
judged on what it does, not on a bug of its implementation. Up to `repair.rounds` times; each failed attempt is
kept in experiments/<id>/attempts/<k>/.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.prompts import CODE_CHARS, LOG_CHARS, REPAIR, clip, script_rules, system, task_brief
from gome.nodes.runtime import config_of, folder_of, llm, task_of
from gome.nodes.scripts import approach_of
from gome.nodes.template import blend_template
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState

UNCHANGED = "it is the same script that failed: change what the error names"
HOT = 0.8  # sampling temperature of a second or later repair
PHASES = {"static": "the import check, before the script ran", "debug": "the first run, on a sample (GOME_DEBUG=1)",
          "full": "the full run"}


def implements(state: dict) -> str:
    """The change the pending script implements, in words."""
    pending, gradient = state.get("pending") or {}, state.get("gradient") or {}
    if pending.get("kind") in ("update", "blend") and gradient.get("hypothesis"):
        return gradient["hypothesis"]["change"]
    return {"draft": "the first solution of this trace: a simple, solid baseline",
            "debug": "a fix of a failing script", "improve": "one atomic improvement of a working solution"
            }.get(pending.get("kind"), pending.get("approach") or "a new solution")


def repair(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    last, pending, cfg, task = state["last"], state["pending"], config_of(state), task_of(state)
    folder, attempt = folder_of(state).experiment(pending["id"]), state.get("attempt", 0)
    failed = folder.read_code() or ""
    error = "; ".join(str(last.get(k)) for k in ("status", "detail", "val_error", "submission_error") if last.get(k))
    if pending.get("kind") == "blend":  # the blend template is known to run: no model needed to repair a copy of it
        return _repaired(folder, pending, attempt, error, blend_template(task, state["gradient"]["blend"]), {})
    earlier = [f"- attempt {a['attempt'] + 1} ({a.get('phase', 'run')}): {(a.get('detail') or '')[:200]}"
               for a in folder.attempts()[:-1]]
    caller = llm(state, runtime, "repair")
    code = caller.write_script([system(state), HumanMessage(REPAIR.format(
        brief=task_brief(state), rules=script_rules(state), hypothesis=implements(state), attempt=attempt + 1,
        rounds=cfg.repair.rounds, code=clip(failed, CODE_CHARS), phase=PHASES.get(last.get("phase"), "the run"),
        error=error[:2000], stderr=clip(folder.read_log("stderr") or "", LOG_CHARS) or "(empty)",
        earlier="\n".join(earlier) or "- none", submission_file=task.submission_file))],
        check=lambda code: UNCHANGED if _same(code, failed) else "",
        temperature=HOT if attempt else None)  # a fresh sample helps a small model more than the same ask again
    if code is None or _same(code, failed):  # nothing new to run: judge the failed attempt as it is
        why = UNCHANGED if code is not None else caller.errors[-1] if caller.errors else "no script in the reply"
        return {"last": {**last, "repair_error": why}, "usage": caller.usage}
    return _repaired(folder, pending, attempt, error, code, caller.usage)


def _repaired(folder, pending: dict, attempt: int, error: str, code: str, usage: dict) -> dict:
    folder.write_code(code)
    plan = folder.read("plan", {})
    repairs = [*plan.get("repairs", []), {"attempt": attempt + 1, "after": error[:300]}]
    folder.write("plan", {**plan, "repairs": repairs})
    return {"attempt": attempt + 1, "pending": {**pending, "approach": approach_of(code) or pending.get("approach")},
            "usage": usage}


def _same(a: str, b: str) -> bool:
    return a.split() == b.split()
