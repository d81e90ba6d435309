"""A scripted chat model that answers like a real OpenAI-compatible server.

Replies are scripted in order. A reply is one of:
- a dict: the model's decision. Asked with structured output, it comes back in the shape the method produces
  (a tool call for function_calling, JSON text for json_schema / json_mode / plain calls);
- a str: free text (a script in a ```python block, or garbage);
- an AIMessage: sent back as it is;
- a function of the prompt: the reply a model writes having read it.
`unsupported` lists structured-output methods the "server" refuses (HTTP 500 before any reply is used), as
llama.cpp's server refuses json_schema. `standing` answers some decisions by schema name without taking a scripted
reply: by default prepare's TaskChallenges, so that tests script only the steps they are about.

With parallel traces, `replies` is a dict {trace: [replies]}: each call is routed by the "trace k of K" line
gome's system prompt carries, so threads cannot steal each other's script. `latency` sleeps per call (the GIL is
released, as it is while a real client waits on the network).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableLambda
from pydantic import ConfigDict, PrivateAttr, ValidationError

from tests.fakes.scripts import CHALLENGES


class ServerError(Exception):
    """What an HTTP 500 from the server looks like to the caller."""


class RepliesExhausted(AssertionError):
    pass


TRACE_LINE = re.compile(r"trace (\d+) of \d+ parallel")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] | dict[int, list[Any]]
    unsupported: set[str] = set()
    standing: dict[str, Any] = {"TaskChallenges": CHALLENGES}
    model_name: str = "scripted"
    latency: float = 0.0
    _position: dict = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _calls: list = PrivateAttr(default_factory=list)
    _standing_calls: list = PrivateAttr(default_factory=list)  # prompts answered by `standing`

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[dict]:
        """Every call seen: method and the prompt text (to assert what the model was told)."""
        return self._calls

    @property
    def remaining(self) -> int:
        queues = self.replies if isinstance(self.replies, dict) else {None: self.replies}
        return sum(len(q) - self._position.get(k, 0) for k, q in queues.items())

    def _take(self, messages: list[BaseMessage], method: str, kind: str = "text") -> Any:
        prompt = "\n".join(str(m.content) for m in messages)
        key = None
        if isinstance(self.replies, dict):
            found = TRACE_LINE.search(prompt)
            key = int(found.group(1)) if found else 0
        queue = self.replies[key] if key is not None else self.replies
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            pos = self._position.get(key, 0)
            if pos >= len(queue):
                raise RepliesExhausted(f"scripted replies of trace {key} exhausted after {pos} calls ({method})")
            self._position[key] = pos + 1
            self._calls.append({"method": method, "trace": key, "prompt": prompt})
            reply = queue[pos]
        return reply(prompt) if callable(reply) else reply

    @staticmethod
    def _usage(messages: list[BaseMessage], reply: str) -> dict:
        prompt = sum(_tokens(str(m.content)) for m in messages)
        out = _tokens(reply)
        return {"input_tokens": prompt, "output_tokens": out, "total_tokens": prompt + out}

    def _message(self, item: Any, messages: list[BaseMessage], tool: str | None = None) -> AIMessage:
        if isinstance(item, AIMessage):
            return item
        if isinstance(item, dict) and tool:
            call = {"name": tool, "args": item, "id": f"call_{uuid.uuid4().hex[:8]}"}
            return AIMessage(content="", tool_calls=[call], usage_metadata=self._usage(messages, json.dumps(item)))
        text = json.dumps(item) if isinstance(item, dict) else str(item)
        return AIMessage(content=text, usage_metadata=self._usage(messages, text))

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._message(self._take(messages, "plain"), messages))])

    def bind_tools(self, tools, **kwargs):
        return self

    def with_structured_output(self, schema, *, method: str = "json_schema", include_raw: bool = False, **kwargs):
        def call(value):
            if method in self.unsupported:
                raise ServerError(f"Error code: 500 - {{'error': '{method} is not supported by this server'}}")
            messages = value.to_messages() if isinstance(value, PromptValue) else list(value)
            if schema.__name__ in self.standing:
                reply = self.standing[schema.__name__]
                with self._lock:
                    self._standing_calls.append("\n".join(str(m.content) for m in messages))
            else:
                reply = self._take(messages, method, schema.__name__)
            raw = self._message(reply, messages, tool=schema.__name__ if method == "function_calling" else None)
            parsed, error = None, None
            try:
                if method == "function_calling":
                    calls = raw.tool_calls or []
                    parsed = schema.model_validate(calls[0]["args"]) if calls else None
                else:
                    parsed = schema.model_validate_json(raw.content)
            except (ValidationError, ValueError) as e:
                error = e
            if not include_raw:
                if error:
                    raise error
                return parsed
            return {"raw": raw, "parsed": parsed, "parsing_error": error}

        return RunnableLambda(call)


class KindChatModel(ScriptedChatModel):
    """Answers by the kind of request, not by position: the same question always gets the same answer, so a
    process that is killed and resumed (and asks again) stays on script. `by_kind` maps a schema name or "text"
    to a reply, or to a function of the prompt. `kill_at_call`: SIGKILL this process during that call."""

    replies: list[Any] = []
    by_kind: dict[str, Any] = {}
    kill_at_call: int | None = None

    def _take(self, messages: list[BaseMessage], method: str, kind: str = "text") -> Any:
        prompt = "\n".join(str(m.content) for m in messages)
        with self._lock:
            self._calls.append({"method": method, "trace": None, "prompt": prompt})
            if self.kill_at_call is not None and len(self._calls) == self.kill_at_call:
                os.kill(os.getpid(), signal.SIGKILL)
        reply = self.by_kind[kind]
        return reply(prompt) if callable(reply) else reply
