import pytest
from langgraph.runtime import Runtime
from langgraph.store.memory import InMemoryStore

from gome.nodes.prepare import prepare
from gome.state.context import GomeContext
from gome.state.records import RunConfig
from tests.fakes.chat import ScriptedChatModel


@pytest.fixture
def trace_state(breast_cancer, tmp_path):
    """A trace's state right after prepare ran for real on the breast-cancer example (the model lists the task's
    challenges; nothing else is asked of it)."""
    runtime = Runtime(context=GomeContext(chat_model=ScriptedChatModel(replies=[])))
    top = prepare({"task_dir": str(breast_cancer), "run_dir": str(tmp_path / "run"),
                   "config": RunConfig(steps=4, time_s=600).model_dump(mode="json")}, runtime)
    return {**top, "trace": 0, "budget": 4, "step": 0, "feedback": [], "usage": {}, "best": None}


@pytest.fixture
def make_runtime():
    """runtime(replies) -> (Runtime with a scripted model and an in-memory store, the model, the events)."""

    def build(replies=(), store=None):
        model = ScriptedChatModel(replies=list(replies))
        events: list[dict] = []
        runtime = Runtime(context=GomeContext(chat_model=model), store=store or InMemoryStore(),
                          stream_writer=events.append)
        return runtime, model, events

    return build
