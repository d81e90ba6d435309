from gome.nodes.repair import repair
from gome.nodes.scripts import save_script
from gome.state.records import RunConfig
from gome.tools.llm.usage import Ledger
from tests.fakes.scripts import BUGGY_DRAFT

FAILED = {"id": "0001", "status": "error", "score": None, "submission_valid": False, "detail": "KeyError: 'target'"}


def test_no_repair_is_asked_once_the_run_s_token_budget_is_spent(trace_state, make_runtime):
    pending = save_script(trace_state["run_dir"], "0001", BUGGY_DRAFT, parent=None, plan={"kind": "draft"}, errors=[])
    usage = {"node": "draft", "trace": 0, "model": "m", "method": "script", "ok": True, "seconds": 1.0,
             "input_tokens": 900, "output_tokens": 200, "error": "", "at": 0.0}
    Ledger.of(f"{trace_state['run_dir']}/usage.jsonl").add(usage)  # the draft's call
    config = RunConfig.model_validate({**trace_state["config"], "max_tokens": 1000}).model_dump(mode="json")
    runtime, model, _ = make_runtime([])
    out = repair({**trace_state, "config": config, "pending": pending, "last": FAILED, "attempt": 0}, runtime)
    assert out["last"]["repair_error"] == "the run's tokens budget is spent" and not model.calls
