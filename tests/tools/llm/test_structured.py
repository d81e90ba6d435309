import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from gome.state.records import Diagnosis
from gome.tools.llm.structured import LLMCaller, _syntax_error, extract_code, extract_json, strip_echo
from gome.tools.llm.usage import Ledger
from tests.fakes.chat import ScriptedChatModel

ASK = [HumanMessage("diagnose this run")]
GOOD = {"outcome": "ran", "summary": "fine", "problems": [], "validation_aligned": True, "leakage": False,
        "accept": True, "reason": "better"}


def test_json_schema_first_and_usage_recorded(tmp_path):
    model = ScriptedChatModel(replies=[GOOD])
    caller = LLMCaller(model, "diagnose", ledger=Ledger.of(tmp_path / "usage.jsonl"))
    d = caller.decide(Diagnosis, ASK)
    assert isinstance(d, Diagnosis) and d.accept
    assert [c["method"] for c in model.calls] == ["json_schema"]
    assert caller.usage["llm_calls"] == 1 and caller.usage["input_tokens"] > 0
    row = json.loads((tmp_path / "usage.jsonl").read_text())
    assert row["node"] == "diagnose" and row["ok"] and row["output_tokens"] > 0 and row["model"] == "scripted"
    assert Ledger.of(tmp_path / "usage.jsonl").tokens() == row["input_tokens"] + row["output_tokens"]


def test_server_without_json_schema_falls_back_to_function_calling_and_remembers():
    model = ScriptedChatModel(replies=[GOOD, GOOD], unsupported={"json_schema"})
    caller = LLMCaller(model, "diagnose")
    assert caller.decide(Diagnosis, ASK).outcome == "ran"
    assert caller.decide(Diagnosis, ASK).outcome == "ran"
    # The 500 cost no reply; the second decision goes straight to the method that worked.
    assert [c["method"] for c in model.calls] == ["function_calling", "function_calling"]
    assert any("500" in e for e in caller.errors)


def test_lenient_json_text_with_fences_after_both_methods_fail():
    fenced = "Sure! Here is my diagnosis:\n```json\n" + json.dumps(GOOD) + "\n```\nHope it helps."
    model = ScriptedChatModel(
        replies=[AIMessage("I think it went fine."), fenced], unsupported={"json_schema"})
    d = LLMCaller(model, "diagnose").decide(Diagnosis, ASK)
    assert d is not None and d.summary == "fine"
    assert [c["method"] for c in model.calls] == ["function_calling", "plain"]


def test_one_repair_retry_then_success():
    model = ScriptedChatModel(replies=["garbage", "more garbage", "{not json", GOOD])
    d = LLMCaller(model, "diagnose").decide(Diagnosis, ASK)
    assert d is not None
    assert [c["method"] for c in model.calls] == ["json_schema", "function_calling", "plain", "plain"]
    assert "could not be used" in model.calls[-1]["prompt"]


def test_garbage_everywhere_returns_none_without_raising():
    model = ScriptedChatModel(replies=["nope"] * 4)
    caller = LLMCaller(model, "diagnose")
    assert caller.decide(Diagnosis, ASK) is None
    assert caller.usage["llm_failures"] == 4 and len(caller.errors) == 4


def test_connection_errors_do_not_walk_the_chain():
    class Down(ScriptedChatModel):
        def with_structured_output(self, schema, **kw):
            from langchain_core.runnables import RunnableLambda

            def fail(_):  # LangChain wraps the SDK's error in a subclass with another name
                api_error = type("APIConnectionError", (Exception,), {})
                raise type("OpenAIConnectionError", (api_error,), {})("connection refused")
            return RunnableLambda(fail)

    model = Down(replies=[])
    caller = LLMCaller(model, "diagnose")
    assert caller.decide(Diagnosis, ASK) is None
    assert caller.usage["llm_calls"] == 1


def test_overlong_strings_are_trimmed_not_rejected():
    model = ScriptedChatModel(replies=[{**GOOD, "summary": "word " * 400}])
    d = LLMCaller(model, "diagnose").decide(Diagnosis, ASK)
    assert d is not None and len(d.summary) == 800


def test_write_script_takes_the_longest_fenced_block_and_retries_once():
    code = "import pandas as pd\nprint('validation score: 0.5')\n"
    model = ScriptedChatModel(replies=["I'll think about it.", f"```bash\nls\n```\n```python\n{code}```"])
    caller = LLMCaller(model, "draft")
    assert caller.write_script(ASK) == code
    assert len(model.calls) == 2 and caller.usage["llm_failures"] == 1


def test_write_script_gives_up_after_the_retry():
    model = ScriptedChatModel(replies=["no code", "still no code"])
    assert LLMCaller(model, "draft").write_script(ASK) is None


def test_extractors():
    assert extract_json('noise {"a": {"b": "}"}} tail') == {"a": {"b": "}"}}
    assert extract_code("import os\nprint(os.getcwd())") is not None
    assert extract_code("just words") is None


PASTED_PLAN = ("import pandas as pd\nprint('validation score: 0.5')\n\n# Update plan\n"
               "Change to make now: Replace the model with a different one.\n")


def test_a_script_that_does_not_compile_is_asked_for_again_with_the_error():
    # What the 1.5B local model did: it pasted the prompt's plan into the code block.
    good = "import pandas as pd\nprint('validation score: 0.6')\n"
    model = ScriptedChatModel(replies=[f"```python\n{PASTED_PLAN}```", f"```python\n{good}```"])
    caller = LLMCaller(model, "update")
    assert caller.write_script(ASK) == good
    assert "SyntaxError at line 5" in caller.errors[0]
    assert "SyntaxError at line 5" in model.calls[1]["prompt"]  # the retry names the line


def test_the_prompt_s_own_words_pasted_into_a_script_are_commented_out_without_asking_again():
    # What the 1.5B model did in the eval, at every repair too: the script, then the plan it was given.
    plan = "UPDATE PLAN\nChange to make now: Replace the model with a different one.\nComponent: model."
    pasted = "import pandas as pd\nprint('validation score: 0.5')\n\n# Update plan\n" + plan.split("\n", 1)[1] + "\n"
    model = ScriptedChatModel(replies=[f"```python\n{pasted}```"])
    code = LLMCaller(model, "update").write_script([HumanMessage(f"{plan}\nWrite the script.")])
    assert len(model.calls) == 1 and not _syntax_error(code)
    assert "# Change to make now: Replace the model" in code and "# Component: model." in code
    assert code.startswith("import pandas as pd\nprint('validation score: 0.5')")
    broken = ("import pandas as pd\nprint('validation score: 0.5'\n"
              "Change to make now: Replace the model with a different one.\n")
    assert strip_echo(broken, plan) == broken  # still no program: left as it is, for the retry to name the error


def test_a_script_that_still_does_not_compile_is_returned_so_its_run_shows_the_error():
    model = ScriptedChatModel(replies=[f"```python\n{PASTED_PLAN}```", f"```python\n{PASTED_PLAN}```"])
    assert LLMCaller(model, "update").write_script(ASK) == PASTED_PLAN
    assert len(model.calls) == 2  # it was asked for again before giving up


def test_replies_that_would_hang_or_crash_the_parser_are_refused_quickly():
    import time

    from gome.tools.llm.structured import _syntax_error, extract_json

    t0 = time.monotonic()
    for text in ("{" * 199_000, '{"a": ' * 5000 + "1" + "}" * 5000, "[" * 50_000):
        with pytest.raises(ValueError):
            extract_json(text)
    assert time.monotonic() - t0 < 2  # each parse is linear, and only a few starts are tried
    assert extract_json('Sure! {"a": {"b": [1, 2]}} done') == {"a": {"b": [1, 2]}}
    assert "nests too deeply" in _syntax_error("import os\nx = 1" + "+1" * 5000)  # compile() recursion


def test_tokens_a_provider_served_from_its_prompt_cache_are_kept_and_charged_at_the_cached_rate(tmp_path):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    class CachingProvider(GenericFakeChatModel):  # usage as langchain-openai reports OpenAI's cached tokens
        def _generate(self, *args, **kwargs):
            result = super()._generate(*args, **kwargs)
            result.generations[0].message.usage_metadata = {
                "input_tokens": 1_000_000, "output_tokens": 100_000, "total_tokens": 1_100_000,
                "input_token_details": {"cache_read": 800_000}}
            return result

    model = CachingProvider(messages=iter([AIMessage(content="```python\nprint(1)\n```")]))
    ledger = Ledger.of(tmp_path / "usage.jsonl")
    caller = LLMCaller(model, "apply-momentum", ledger=ledger)
    assert caller.write_script(ASK) == "print(1)\n"
    row = json.loads((tmp_path / "usage.jsonl").read_text())
    assert row["cached_input_tokens"] == 800_000 and caller.usage["cached_input_tokens"] == 800_000
    model_name = row["model"]
    # 200k fresh input at $2, 800k cached at $0.5, 100k output at $8 (per million): 0.4 + 0.4 + 0.8
    assert ledger.dollars({model_name: (2.0, 8.0, 0.5)})[0] == pytest.approx(1.6)
    assert ledger.dollars({model_name: (2.0, 8.0)})[0] == pytest.approx(2.8)  # no cached rate: the input rate


class LlamaServerLike(ScriptedChatModel):
    """An OpenAI-compatible server that refuses json_schema and takes json_object with a schema, as
    llama-cpp-python's does (it turns the schema into a grammar); it records the response_format it was sent."""

    root_client: object = None
    unsupported: set[str] = {"json_schema"}

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self._calls.append({"method": "response_format", "trace": None, "prompt": kwargs.get("response_format")})
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_a_server_s_json_mode_with_the_schema_keeps_the_prompt_s_prefix_and_is_remembered_for_every_schema():
    from gome.state.records import HypothesisSet

    hyp = {"hypotheses": [{"change": "standardize the features", "component": "features", "step_size": "minimal"}]}
    model = LlamaServerLike(replies=[GOOD, hyp])
    caller = LLMCaller(model, "diagnose")
    ask = [HumanMessage("brief and rules\n\ndiagnose this run")]
    assert caller.decide(Diagnosis, ask).outcome == "ran"
    assert caller.decide(HypothesisSet, ask).hypotheses[0].step_size == "minimal"
    [first_format, first, second_format, second] = model.calls
    assert first_format["prompt"] == {"type": "json_object", "schema": Diagnosis.model_json_schema()}
    assert second_format["prompt"]["schema"] == HypothesisSet.model_json_schema()
    # No tools: the messages go as they are, the fields are told after them (a prefix cache still matches).
    assert first["prompt"].startswith("brief and rules\n\ndiagnose this run\nReply with one JSON object with these")
    assert "- outcome: one of bug, timeout, oom, ran" in first["prompt"]
    assert "impact: a whole number from 1 to 5" in second["prompt"]
    # json_schema was refused once; the second schema went straight to what worked for the first.
    assert sum("json_schema" in e for e in caller.errors) == 1 and caller.usage["llm_failures"] == 1
