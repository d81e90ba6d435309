"""Runtime context: what a node works with, given per invocation.

Embedding apps and tests pass objects (chat_model, executor). The LangGraph server passes JSON, so every object
also has a plain setting that builds one: `model` (+ `base_url`) for the chat model, `sandbox` for the executor,
and `config` for RunConfig defaults (mode, budgets...) that an assistant fixes and a run's input may override.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GomeContext:
    chat_model: Any = None  # a LangChain BaseChatModel; else built from `model`, else from the run config
    executor: Any = None  # a gome.tools.sandbox.executor.Executor; else built from `sandbox`
    model: str | None = None  # "provider:name", or "python:module:factory" for a model built by your code
    base_url: str | None = None
    sandbox: str = "local"  # "local" or "e2b"
    allow_network: bool = False
    config: dict[str, Any] = field(default_factory=dict)  # RunConfig defaults, e.g. {"mode": "tree"}
    run_dir: str | None = None  # where the run folder is now, when it has moved since its checkpoints were written
