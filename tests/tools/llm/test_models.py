import pytest
from langchain_core.messages import HumanMessage

from gome.state.records import ModelSpec
from gome.tools.llm.models import ModelConfigError, make_chat_model, resolve_spec
from tests.fakes.chat import ScriptedChatModel


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("GOME_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def test_no_model_configured_means_the_embedded_local_model():
    assert resolve_spec(ModelSpec()).model == "local"


def test_a_server_without_a_model_name_is_a_clear_error():
    with pytest.raises(ModelConfigError, match="no model configured for the server"):
        make_chat_model(ModelSpec(base_url="http://127.0.0.1:9/v1"))


def test_openai_needs_a_key_unless_a_local_server():
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        make_chat_model(ModelSpec(model="openai:gpt-4.1-mini"))
    model = make_chat_model(ModelSpec(model="openai:qwen", base_url="http://127.0.0.1:8080/v1"))
    assert model.openai_api_base == "http://127.0.0.1:8080/v1"
    assert model.use_responses_api is False and model.stream_usage is True


def test_flags_reach_the_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = make_chat_model(ModelSpec(model="openai:gpt-4.1-mini", temperature=0.7, timeout_s=42, max_retries=5))
    assert (model.model_name, model.temperature, model.request_timeout, model.max_retries) == (
        "gpt-4.1-mini", 0.7, 42, 5)


def test_environment_fills_what_flags_leave_open(monkeypatch):
    monkeypatch.setenv("GOME_MODEL", "openai:served")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    spec = resolve_spec(ModelSpec())
    assert (spec.model, spec.base_url) == ("openai:served", "http://127.0.0.1:9/v1")
    assert resolve_spec(ModelSpec(model="openai:flag")).model == "openai:flag"


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(ModelConfigError):
        make_chat_model(ModelSpec(model="nosuchprovider:x"))


def test_local_model_is_served_by_a_shared_llama_cpp_server(monkeypatch):
    from gome.tools.llm import local_model

    asked = []
    monkeypatch.setattr(local_model, "shared_server", lambda path=None: asked.append(path) or "http://127.0.0.1:1/v1")
    chat = make_chat_model(ModelSpec(model="local:/models/q.gguf"))
    assert asked == ["/models/q.gguf"]
    assert (chat.model_name, chat.openai_api_base, chat.max_tokens) == ("local", "http://127.0.0.1:1/v1", 2048)


def test_a_call_is_bounded_by_the_time_the_run_has_left():
    """An OpenAI-compatible server that accepts and never answers (a local model rambling): the call ends when the
    run's clock does, with no retry, not after the model's own 300 s time-out three times."""
    import socket
    import time

    from langchain_openai import ChatOpenAI

    from gome.tools.llm.models import within
    from gome.tools.llm.structured import LLMCaller

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        model = ChatOpenAI(model="local", api_key="k", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1",
                           timeout=300, max_retries=2)
        assert within(model, 10_000) is model  # its own limits fit
        caller = LLMCaller(model, "apply-momentum", deadline=time.time() + 1.5)
        t0 = time.monotonic()
        assert caller.write_script([HumanMessage("write it")]) is None
        assert time.monotonic() - t0 < 10 and "Timeout" in caller.errors[0]
        assert model.root_client.timeout == 300 and model.max_retries == 2  # the run's model is unchanged
    spent = ScriptedChatModel(replies=[])
    caller = LLMCaller(spent, "diagnose", deadline=time.time() - 1)
    assert caller.write_script([HumanMessage("write it")]) is None and spent.calls == []
    assert "the run's time is spent" in caller.errors[0]
