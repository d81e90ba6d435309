"""finalize: put the selected solution in best/, check its submission once more, close run.json."""

from __future__ import annotations

import logging
import time

from langgraph.runtime import Runtime

from gome.nodes.runtime import emit, folder_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import GomeState, add_usage
from gome.tools.report.report import write_report
from gome.tools.task.metrics import ScoringError
from gome.tools.task.submission import check_submission

log = logging.getLogger("gome")


def finalize(state: GomeState, runtime: Runtime[GomeContext] | None = None) -> dict:
    run, task, selected = folder_of(state), task_of(state), state.get("selected")
    emit(runtime, {"event": "phase", "phase": "writing the report"}, state["run_dir"])
    usage: dict = dict(state.get("usage") or {})  # prepare's, then each trace's
    for r in state.get("trace_results", []):
        usage = add_usage(usage, r.get("usage"))
    stops = sorted({r.get("stop_reason") or "?" for r in state.get("trace_results", [])})
    if selected is None:
        status, message = "no_valid_submission", "no experiment produced a valid submission with a score"
    else:
        run.promote_best(selected, task.direction, submission_file=task.submission_file, force=True)
        try:
            check_submission(task, run.best / "submission.csv")
            status = "succeeded"
            message = (f"best {task.metric} {selected['score']:.6g} ({selected['score_source']}) from experiment "
                       f"{selected['id']}")
        except ScoringError as e:
            status, message = "no_valid_submission", f"selected submission failed its final check: {e}"
    run.update_run_json(status=status, message=message, stopped_by=stops, usage=usage, finished_at=time.time(),
                        selected=selected)
    try:
        write_report(run.root)
    except Exception as e:  # a report that fails to render must not cost the run its result
        log.warning("gome: the report could not be written: %s: %s", type(e).__name__, e)
    emit(runtime, {"event": "finished", "status": status, "message": message,
                   "best": selected and selected.get("score"), "usage": usage}, state["run_dir"])
    return {"status": status, "message": message}
