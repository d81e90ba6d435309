"""execute: run the pending script in the sandbox, then let the harness (not the script) score it.

Implement, then judge: before anything runs, a name the script uses unimported gets its import, and every
import is resolved in the sandbox (a wrong one is a failed attempt in seconds); on a big train set the script
first runs on a sample (GOME_DEBUG=1), then in full. A failed attempt is kept (attempts/<k>/) and, while repairs
remain, routed to repair instead of being judged.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from gome.nodes.judge import harness_scored, working
from gome.nodes.runtime import config_of, emit, executor, folder_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import PendingScript, RunSummary, TraceState
from gome.state.records import RunConfig, Task
from gome.tools.run.experiment import clear_run, run_and_score, run_probe, stage_candidates
from gome.tools.run.folder import MAX_CODE_BYTES, ExperimentFolder, RunFolder
from gome.tools.sandbox.environment import check_imports
from gome.tools.sandbox.executor import Limits
from gome.tools.sandbox.names import add_imports, move_imports
from gome.tools.task.submission import output_caps

ACTIONS = ("approve", "edit", "reject")


def review_problem(answer) -> str | None:
    """Why an answer to the review cannot be taken, or None."""
    if not isinstance(answer, dict):
        return (f"the answer must be an object such as {{\"action\": \"approve\"}}, not {type(answer).__name__} "
                f"{str(answer)[:80]!r}")
    if answer.get("action") not in ACTIONS:
        return f"action must be one of {', '.join(ACTIONS)}, not {str(answer.get('action'))[:80]!r}"
    if answer["action"] == "edit" and not (isinstance(answer.get("code"), str) and answer["code"].strip()):
        return "an edit needs the new script as a string in `code`"
    if answer["action"] == "edit" and len(answer["code"].encode(errors="surrogatepass")) > MAX_CODE_BYTES:
        return f"the edited script is over {MAX_CODE_BYTES} bytes"
    return None


def review(pending: PendingScript, folder: ExperimentFolder, state: dict) -> PendingScript:
    """Pause for a person before the script runs: approve it, edit it, or reject it (which costs the step).

    interrupt() re-runs this node from the top on resume, so everything it changes happens after the answer. An
    answer that cannot be taken asks again, saying why: the thread stays waiting for a correct one.
    """
    ask = {"id": pending["id"], "trace": state["trace"], "kind": pending.get("kind"),
           "approach": pending.get("approach"), "code": folder.read_code(),
           "ask": 'approve, edit or reject this script: {"action": "approve"}, {"action": "edit", "code": "..."} '
                  'or {"action": "reject"}'}
    answer = interrupt(ask)
    while problem := review_problem(answer):
        answer = interrupt({**ask, "error": f"that answer cannot be taken: {problem}"})
    if answer["action"] == "edit":
        folder.write_code(answer["code"])
    elif answer["action"] == "reject":
        folder.write("review", {"action": "reject"})
        return {**pending, "has_script": False, "llm_error": "rejected by the reviewer"}
    folder.write("review", {"action": answer["action"]})
    return pending


def probe_runner(runtime, run: RunFolder, folder: ExperimentFolder, deadline: float):
    """(run gome's check script in the sandbox -> stdout, the sandbox's name for caches): asked of the sandbox's
    own Python, in a check folder of this experiment's own (parallel traces never share one), within the step's
    deadline."""
    sandbox, timeout_s = executor(runtime), max(5.0, min(120.0, deadline - time.time()))
    return (lambda code: run_probe(sandbox, run.check_folder(f"imports-{folder.id}"), code, timeout_s=timeout_s),
            getattr(sandbox, "python", type(sandbox).__name__))


def add_missing_imports(runtime, run: RunFolder, folder: ExperimentFolder, deadline: float) -> None:
    """Names imported from a module that lacks them are imported from where they live, and names the script uses
    unimported get the import that defines them (no model needed), before a reviewer sees the script and before
    it runs; plan.json lists what was moved and added."""
    runner = probe_runner(runtime, run, folder, deadline)
    code, moved = move_imports(folder.read_code() or "", *runner)
    code, added = add_imports(code, *runner)
    if moved or added:
        folder.write_code(code)
        plan = folder.read("plan", {})
        folder.write("plan", {**plan, "imports_added": [*plan.get("imports_added", []), *added],
                              **({"imports_moved": [*plan.get("imports_moved", []), *moved]} if moved else {})})


def static_problems(runtime, run: RunFolder, folder: ExperimentFolder, deadline: float) -> list[str]:
    """The script's imports that do not resolve in the sandbox, found without running it."""
    return check_imports(folder.read_code() or "", *probe_runner(runtime, run, folder, deadline))


def execute(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    pending, task, cfg, run = state["pending"], task_of(state), config_of(state), folder_of(state)
    folder, attempt = run.experiment(pending["id"]), state.get("attempt", 0)
    if cfg.repair.static_check and pending.get("has_script"):
        add_missing_imports(runtime, run, folder, state.get("deadline", time.time() + cfg.script_timeout_s))
    if cfg.review and pending.get("has_script"):  # every attempt: a repair is new code too
        pending = review(pending, folder, state)
    if not pending.get("has_script"):
        last = RunSummary(id=pending["id"], status="no_script", runtime_s=0.0, score=None, score_source=None,
                          val_error=None, submission_valid=False, detail=pending.get("llm_error") or "no script")
        folder.write("result", last)
        return {"last": last}

    emit(runtime, {"event": "step_started", "trace": state["trace"], "step": state.get("step", 0) + 1,
                   "budget": state.get("budget"), "id": pending["id"], "intent": pending.get("kind"),
                   "mode": state.get("mode_now"), "attempt": attempt}, state["run_dir"])
    last = attempt_run(state, runtime, run, folder, task, cfg, pending)
    if not harness_scored(last):  # it goes to repair: keep this attempt (its outputs too, if it worked)
        caps = output_caps(task)
        folder.archive_attempt(attempt, last, caps if working(last) else None)
        if not working(last) and attempt and (earlier := folder.attempt_result(attempt - 1)) and working(earlier):
            folder.restore_attempt(attempt - 1, caps)  # the repair broke a script that worked: judge that one
            last = RunSummary(**{**earlier, "repair_error": "the repair broke a script that worked (its score was "
                                 "its own): that attempt is judged"})
    folder.write("result", last)
    return {"last": last}


def attempt_run(state: dict, runtime, run: RunFolder, folder: ExperimentFolder, task: Task, cfg: RunConfig,
                pending: PendingScript) -> RunSummary:
    """One attempt: the import check, a run on a sample when train is big, then the full run. An attempt that
    stops before it runs clears the last one's logs, which must not pass for its own (a run clears them itself)."""
    deadline = state.get("deadline", time.time() + cfg.script_timeout_s)
    if cfg.repair.static_check and (problems := static_problems(runtime, run, folder, deadline)):
        clear_run(folder, task)
        return RunSummary(id=pending["id"], status="error", runtime_s=0.0, score=None, score_source=None,
                          val_error=None, submission_valid=False, phase="static",
                          detail="imports that do not resolve in the sandbox: " + "; ".join(problems)[:1500])
    candidates = None
    if pending.get("kind") == "blend":
        if missing := stage_candidates(run, folder, task, (state.get("gradient") or {}).get("blend") or []):
            clear_run(folder, task)
            return RunSummary(id=pending["id"], status="error", runtime_s=0.0, score=None, score_source=None,
                              val_error=None, submission_valid=False, phase="candidates", detail=missing)
        candidates = folder.candidates
    env = {"GOME_SEED": str(cfg.seed)}
    if cfg.repair.debug_rows and task.train_rows > 2 * cfg.repair.debug_rows:
        limits = Limits.of(cfg, min(deadline - time.time(), max(60.0, cfg.script_timeout_s / 10)))
        last, _ = run_and_score(executor(runtime), folder, task, limits, env, debug=True, candidates=candidates)
        if not working(last, debug=True) and last["status"] != "timeout":  # slow on a sample: try it in full
            return RunSummary(**{**last, "phase": "debug", "detail": f"on a sample (GOME_DEBUG=1): {last['detail']}"})
    last, _ = run_and_score(executor(runtime), folder, task, Limits.of(cfg, deadline - time.time()), env,
                            candidates=candidates)
    return RunSummary(**last, phase="full")

