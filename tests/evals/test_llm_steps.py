"""The step-cost figures: steps split at each diagnosis, cached prompt tokens from llama.cpp's log, edits applied."""

import json

from gome.evals.llm_steps import run_figures, server_log_cache


def call(node: str, seconds: float, out: int = 10, ok: bool = True) -> str:
    return json.dumps({"node": node, "ok": ok, "seconds": seconds, "input_tokens": 100, "cached_input_tokens": 40,
                       "output_tokens": out})


def test_a_step_runs_from_a_diagnosis_to_the_next_and_counts_its_repairs(tmp_path):
    calls = [call("prepare", 5), call("draft", 60), call("repair", 50),  # before the first diagnosis: not a step
             call("diagnose", 20), call("compute-gradient", 30), call("apply-momentum", 60, out=500),
             call("repair", 40, out=300),
             call("diagnose", 10), call("compute-gradient", 20), call("apply-momentum", 30, out=100),
             call("diagnose", 10)]  # the last diagnosis opens no step
    (tmp_path / "usage.jsonl").write_text("\n".join(calls) + "\n")
    for exp, plan in {"0002": {"edit": {"asked": "edits", "applied": False},
                               "repairs": [{"edit": {"asked": "edits", "applied": True}}]},
                      "0003": {"edit": {"asked": "script", "form": "script"}}}.items():
        (tmp_path / "experiments" / exp).mkdir(parents=True)
        (tmp_path / "experiments" / exp / "plan.json").write_text(json.dumps(plan))
    figures = run_figures(tmp_path)
    assert figures["steps_measured"] == 2
    assert figures["llm_s_per_step_median"] == (150 + 60) / 2 and figures["output_tokens_per_update_median"] == 450
    assert figures["cached_prompt_tokens"] == 40 * 11 and figures["edit_requests"] == 2
    assert figures["edits_applied"] == 1


def test_llama_cpp_s_log_says_how_much_of_each_prompt_it_reused(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("Llama.generate: 48 prefix-match hit, remaining 1952 prompt tokens to eval\nnoise\n"
                   "Llama.generate: 1477 prefix-match hit, remaining 523 prompt tokens to eval\n"
                   "Llama.generate: 9 prefix-match hit, remaining 1 prompt tokens to eval\n")
    assert server_log_cache(log, "0:3") == {"server_calls": 2, "prompt_tokens_reused": 1525,
                                            "prompt_tokens_evaluated": 2475, "reused_share": 0.381}
