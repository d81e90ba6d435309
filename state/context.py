"""Runtime context: what a node works with, given per invocation.

Embedding apps and tests pass objects (chat_model, executor). The LangGraph server passes JSON, so every object
also has a plain setting that builds one: `model` (+ `base_url`) for the chat model, `sandbox` for the executor,
and `config` for RunConfig defaults (mode, budgets...) that an assistant fixes and a run's input may override.
Every field carries a description: Studio shows them as the assistant's form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from gome.state.records import RunConfig


@dataclass
class GomeContext:
    chat_model: Annotated[SkipJsonSchema[Any], Field(
        description="a LangChain chat model object (apps and tests only; the server builds one from `model`)")] = None
    executor: Annotated[SkipJsonSchema[Any], Field(
        description="a gome Executor object (apps and tests only; the server builds one from `sandbox`)")] = None
    model: Annotated[str | None, Field(
        description="the chat model: provider:name (e.g. openai:gpt-4.1-mini), local for the embedded "
                    "Qwen2.5-Coder-1.5B, or python:module:factory for one your code builds; default: $GOME_MODEL, "
                    "else the run config's")] = None
    base_url: Annotated[str | None, Field(description="an OpenAI-compatible server for `model`")] = None
    sandbox: Annotated[Literal["local", "e2b", "ray"], Field(
        description="where scripts run: local (bubblewrap, cgroups, quota where the host allows), e2b, or ray (the "
                    "nodes of the cluster at $RAY_ADDRESS, each in its local sandbox)")] = "local"
    allow_network: Annotated[bool, Field(description="let scripts reach the network")] = False
    config: Annotated[RunConfig | dict[str, Any], Field(
        description="RunConfig defaults for every run of this assistant (a run's input config overrides them)",
    )] = field(default_factory=dict)
    on_event: Annotated[SkipJsonSchema[Any], Field(
        description="a function called with each progress event, in the thread of the node that emitted it (apps "
                    "and tests only; a server's clients stream them)")] = None
    run_dir: Annotated[str | None, Field(
        description="where the run folder is now, when it has moved since its checkpoints were written")] = None

    def config_dict(self) -> dict[str, Any]:
        """The settings given, as a dict (what a RunConfig object was given with, or the dict itself)."""
        c = self.config
        return c.model_dump(exclude_unset=True) if isinstance(c, RunConfig) else dict(c or {})
