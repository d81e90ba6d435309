"""Runtime context: the collaborators a node uses, injected per invocation (tests pass fakes, servers real ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GomeContext:
    chat_model: Any = None  # a LangChain BaseChatModel; built from config["model"] when None
    executor: Any = None  # a gome.tools.executor.Executor; LocalExecutor when None
