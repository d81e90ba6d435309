"""Asking the chat model for typed decisions and for scripts, with fallbacks and per-call usage.

Decisions (diagnosis, hypotheses) are pydantic models asked for with structured output. Servers differ in what
they support, so each call walks a chain: json_schema -> json_object with the schema (an OpenAI-compatible
server such as llama.cpp's, which constrains the reply to the schema) -> function_calling -> plain JSON text
parsed leniently, with one repair retry. The first method that works for a model is remembered and tried first
next time. A reply that still fails returns None: it costs the step, never the run. json_object comes before
function calling because tools change the prompt: a chat template writes them into the system message, and then
no call shares its prefix with the one before it (llama.cpp's log: 34 tokens reused of ~2,000).

Scripts are asked for as a fenced ```python block, not inside JSON: escaping a whole program into a JSON string
is where small models break most. A small step is asked for as search/replace edits against its base script
(tools/llm/edits.py), and for the whole script only when the edits do not apply.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from gome.tools.llm.edits import EditError, apply_edits, parse_edits
from gome.tools.llm.models import within
from gome.tools.llm.usage import Ledger

T = TypeVar("T", bound=BaseModel)
SCHEMA_METHODS = ("json_schema", "json_object", "function_calling")
# Failures no other method can fix: give up at once instead of walking the chain.
FATAL_ERRORS = {"APIConnectionError", "APITimeoutError", "AuthenticationError", "PermissionDeniedError",
                "RateLimitError", "ConnectError", "ConnectTimeout", "ReadTimeout"}
_working_method: dict[tuple, str] = {}  # which structured-output method worked, per model identity
MAX_REPLY_CHARS = 200_000  # a longer reply is not a decision or a script: refuse it instead of parsing it
ECHO_CHARS = 4_000  # how much of a failed reply goes back to the model with the request to fix it
PARSE_ERRORS = (ValueError, ValidationError, RecursionError)  # deeply nested JSON raises RecursionError
MAX_JSON_STARTS = 20  # opening braces tried before a reply counts as holding no JSON object
CACHE_PREFIX = "cache_prefix_chars"  # a request's additional_kwargs: how many of its first characters every call shares
REPLY_SHOWN = 600  # of an edit reply that could not be used, kept in plan.json to show why
# A reply to an edit request is a whole script when it compiles and starts with the `# Approach:` line every script
# must start with, or is this long (share of the base's lines); a shorter block is a fragment, not the script.
WHOLE_SHARE = 0.6


def _model_key(model) -> tuple:
    return (type(model).__name__, getattr(model, "model_name", None) or getattr(model, "model", None),
            str(getattr(model, "openai_api_base", None)))


@functools.cache
def json_schema_of(schema: type[BaseModel]) -> dict:
    """The schema's JSON schema, built once per class (pydantic takes milliseconds to build it; a step asks for
    it several times). Read it, never change it: it is shared."""
    return schema.model_json_schema()


@functools.cache
def field_guide(schema: type[BaseModel]) -> str:
    """The fields a JSON reply must have, in a few lines: what a model sees of the schema when the server holds
    the schema itself (json_object constrains the reply but shows the model nothing)."""
    spec = json_schema_of(schema)
    defs = spec.get("$defs", {})

    def kind(prop: dict) -> str:
        if "$ref" in prop:
            inner = defs[prop["$ref"].rsplit("/", 1)[1]]["properties"]
            return "{" + "; ".join(f"{k}: {kind(v)}" for k, v in inner.items()) + "}"
        note = f" ({prop['description']})" if prop.get("description") else ""
        if "enum" in prop:
            return "one of " + ", ".join(map(str, prop["enum"])) + note
        if prop.get("type") == "array":
            return f"a list of {kind(prop.get('items', {}))}"
        if prop.get("type") == "integer" and "minimum" in prop and "maximum" in prop:
            return f"a whole number from {prop['minimum']} to {prop['maximum']}{note}"
        return {"string": "text", "boolean": "true or false", "integer": "a whole number"}.get(
            prop.get("type", ""), prop.get("type", "a value")) + note

    return "Reply with one JSON object with these fields:\n" + "\n".join(
        f"- {name}: {kind(prop)}" for name, prop in spec["properties"].items())


def _supports_method(model) -> bool:
    try:
        return "method" in inspect.signature(model.with_structured_output).parameters
    except (TypeError, ValueError):
        return False


def reply_text(message: BaseMessage | None) -> str:
    """A reply's text, whether its content is a string or a list of blocks (Anthropic, the Responses API)."""
    content = getattr(message, "content", "") if message is not None else ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def message_text(messages: list[BaseMessage]) -> str:
    return "\n".join(reply_text(m) for m in messages)


def mark_cache(model, messages: list[BaseMessage]) -> list[BaseMessage]:
    """For Anthropic's models, a cache breakpoint after the prefix every call of the run shares (Anthropic caches
    only what is marked). Other providers cache a shared prefix by themselves and get the messages unchanged."""
    if "anthropic" not in type(model).__name__.lower():
        return messages
    marked = []
    for m in messages:
        n = m.additional_kwargs.get(CACHE_PREFIX) if isinstance(m.content, str) else None
        if n:
            blocks = [{"type": "text", "text": m.content[:n], "cache_control": {"type": "ephemeral"}}]
            blocks += [{"type": "text", "text": m.content[n:]}] if m.content[n:] else []
            m = HumanMessage(blocks)
        marked.append(m)
    return marked


def _echo(message: BaseMessage) -> AIMessage:
    """A failed reply as it goes back into the conversation: its text, head and tail only."""
    text = reply_text(message)
    if len(text) > ECHO_CHARS:
        text = f"{text[:ECHO_CHARS // 2]}\n[... {len(text) - ECHO_CHARS} characters cut ...]\n{text[-ECHO_CHARS // 2:]}"
    return AIMessage(content=text)


def extract_json(text: str) -> Any:
    """The first JSON object in text, tolerating code fences and prose around it. At most MAX_JSON_STARTS
    opening braces are tried, each parse linear: a reply of braces cannot make this quadratic."""
    if len(text or "") > MAX_REPLY_CHARS:
        raise ValueError(f"the reply is {len(text)} characters long, over the {MAX_REPLY_CHARS} accepted")
    text = re.sub(r"```(?:json)?", "", text or "")
    decoder, deep = json.JSONDecoder(), False
    start = text.find("{")
    for _ in range(MAX_JSON_STARTS):
        if start == -1:
            break
        try:
            value, _end = decoder.raw_decode(text, start)
            if isinstance(value, dict):
                return value
        except json.JSONDecodeError:
            pass
        except RecursionError:
            deep = True
        start = text.find("{", start + 1)
    raise ValueError("the reply's JSON nests too deeply" if deep else "no JSON object found in the reply")


def validate_lenient(schema: type[T], data: Any) -> T:
    """Validate, trimming strings and lists that only overran their length caps (small models ramble)."""
    for _ in range(3):
        try:
            return schema.model_validate(data)
        except ValidationError as e:
            fixable = [err for err in e.errors() if err["type"] in ("string_too_long", "too_long")]
            if not fixable or len(fixable) != len(e.errors()):
                raise
            for err in fixable:
                *path, key = err["loc"]
                holder = data
                for part in path:
                    holder = holder[part]
                limit = err["ctx"].get("max_length")
                holder[key] = holder[key][:limit]
    return schema.model_validate(data)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` block, read line by line so adjacent blocks cannot run together."""
    blocks, lang, body = [], None, []
    for line in (text or "").splitlines():
        if line.strip().startswith("```"):
            if lang is None:
                lang, body = line.strip()[3:].strip().lower(), []
            else:
                blocks.append((lang, "\n".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    if lang is not None and body:  # an unclosed final block (the reply hit its token limit)
        blocks.append((lang, "\n".join(body)))
    return blocks


def extract_code(text: str) -> str | None:
    """The longest ```python block (untagged blocks count); or the whole reply when it is itself a program."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in ("python", "py", "python3", "")]
    if blocks and max(blocks, key=len).strip():
        return max(blocks, key=len).strip() + "\n"
    stripped = (text or "").strip()
    if "import " in stripped and not stripped.startswith("```") and not _syntax_error(stripped):
        return stripped + "\n"
    return None


MIN_CALL_S = 1.0  # a call is not started with less than this left on the run's clock


class LLMCaller:
    """One node's access to the chat model: typed decisions, scripts, and the usage they cost."""

    def __init__(self, model, node: str, ledger: Ledger | None = None, trace: int | None = None,
                 deadline: float | None = None):
        self.model = model
        self.node = node
        self.deadline = deadline  # the run's: no call may run past it (time-outs and retries included)
        self.ledger = ledger
        self.trace = trace
        self.usage: dict[str, float] = {"llm_calls": 0, "input_tokens": 0, "cached_input_tokens": 0,
                                        "output_tokens": 0, "llm_seconds": 0.0,
                                        "llm_failures": 0}
        self.errors: list[str] = []

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def _record(self, method: str, raw: BaseMessage | None, seconds: float, ok: bool, error: str = "") -> None:
        meta = getattr(raw, "usage_metadata", None) or {}
        cached = (meta.get("input_token_details") or {}).get("cache_read") or 0  # the provider's prompt cache
        self.usage["llm_calls"] += 1
        self.usage["input_tokens"] += meta.get("input_tokens", 0)
        self.usage["cached_input_tokens"] += cached
        self.usage["output_tokens"] += meta.get("output_tokens", 0)
        self.usage["llm_seconds"] += seconds
        if not ok:
            self.usage["llm_failures"] += 1
            self.errors.append(f"{method}: {error}"[:500])
        if self.ledger is not None:
            self.ledger.add({
                "node": self.node, "trace": self.trace, "model": str(_model_key(self.model)[1]), "method": method,
                "ok": ok, "seconds": round(seconds, 3), "input_tokens": meta.get("input_tokens", 0),
                "cached_input_tokens": cached, "output_tokens": meta.get("output_tokens", 0), "error": error[:300],
                "at": time.time()})

    def _invoke(self, runnable, messages, method: str):
        if self.deadline is not None and self.deadline - time.time() < MIN_CALL_S:
            self._record(method, None, 0.0, False, "the run's time is spent: no call was made")
            raise _Fatal(TimeoutError("the run's time is spent"))
        t0 = time.monotonic()
        try:
            out = runnable.invoke(mark_cache(self.model, messages))
        except Exception as e:
            self._record(method, None, time.monotonic() - t0, False, f"{type(e).__name__}: {e}")
            if any(cls.__name__ in FATAL_ERRORS for cls in type(e).__mro__):  # wrappers subclass the SDK's
                raise _Fatal(e) from e
            return None, time.monotonic() - t0
        return out, time.monotonic() - t0

    # -- typed decisions ---------------------------------------------------------------------------------------
    def decide(self, schema: type[T], messages: list[BaseMessage]) -> T | None:
        """A `schema` instance from the model, or None when every method failed (see self.errors)."""
        key, model_key = (_model_key(self.model), schema.__name__), (_model_key(self.model), None)
        methods = [m for m in SCHEMA_METHODS if m != "json_object" or hasattr(self.model, "root_client")
                   ] if _supports_method(self.model) else ["default"]
        known = _working_method.get(key) or _working_method.get(model_key)  # what worked for another schema
        if known in methods:
            methods.remove(known)
            methods.insert(0, known)
        try:
            for method in methods:
                value = (self._json_object(schema, messages) if method == "json_object" else
                         self._structured(schema, messages, method))
                if value is not None:
                    _working_method[key] = _working_method[model_key] = method
                    return value
            return self._json_text(schema, messages)
        except _Fatal:
            return None

    def _structured(self, schema: type[T], messages, method: str) -> T | None:
        kwargs = {} if method == "default" else {"method": method}
        try:
            runnable = self._now().with_structured_output(schema, include_raw=True, **kwargs)
        except (NotImplementedError, TypeError, ValueError) as e:
            self.errors.append(f"{method}: not supported ({e})"[:300])
            return None
        out, seconds = self._invoke(runnable, messages, method)
        if out is None:
            return None
        raw, parsed = out.get("raw"), out.get("parsed")
        if isinstance(parsed, schema):
            self._record(method, raw, seconds, True)
            return parsed
        # The model answered but the strict parse failed: try the same reply leniently before moving on.
        try:
            value = self._parse_reply(schema, raw)
            self._record(method, raw, seconds, True)
            return value
        except PARSE_ERRORS as e:
            self._record(method, raw, seconds, False, f"unparseable reply: {out.get('parsing_error') or e}")
            return None

    def _json_object(self, schema: type[T], messages) -> T | None:
        """An OpenAI-compatible server's JSON mode with the schema (llama.cpp turns it into a grammar): the prompt
        stays as it is, the fields are told after it."""
        runnable = self._now().bind(response_format={"type": "json_object", "schema": json_schema_of(schema)})
        out, seconds = self._invoke(runnable, [*messages, HumanMessage(field_guide(schema))], "json_object")
        if out is None:
            return None
        try:
            value = self._parse_reply(schema, out)
        except PARSE_ERRORS as e:
            self._record("json_object", out, seconds, False, f"unparseable reply: {str(e)[:800]}")
            return None
        self._record("json_object", out, seconds, True)
        return value

    def _parse_reply(self, schema: type[T], raw: AIMessage | None) -> T:
        if raw is None:
            raise ValueError("no reply")
        for call in getattr(raw, "tool_calls", None) or []:
            return validate_lenient(schema, call["args"])
        return validate_lenient(schema, extract_json(reply_text(raw)))

    def _json_text(self, schema: type[T], messages) -> T | None:
        ask = HumanMessage(
            "Reply with one JSON object and nothing else. It must validate against this JSON schema:\n"
            + json.dumps(json_schema_of(schema)))
        convo = [*messages, ask]
        for attempt in ("json_text", "json_repair"):
            out, seconds = self._invoke(self._now(), convo, attempt)
            if out is None:
                continue
            try:
                value = self._parse_reply(schema, out)
                self._record(attempt, out, seconds, True)
                return value
            except PARSE_ERRORS as e:
                why = "its JSON nests too deeply" if isinstance(e, RecursionError) else str(e)[:800]
                self._record(attempt, out, seconds, False, f"unparseable reply: {why}")
                convo = [*convo, _echo(out), HumanMessage(
                    f"That reply could not be used: {why}\nReply again with only the corrected JSON object.")]
        return None

    # -- scripts -----------------------------------------------------------------------------------------------
    def write_script(self, messages: list[BaseMessage], *, check: Callable[[str], str] | None = None,
                     temperature: float | None = None) -> str | None:
        """A complete Python script from a fenced block; one retry when the reply holds none, the script does
        not compile (small models paste the prompt's plan into the code) or `check(code)` names a problem. After
        the retry a script that does not compile is still returned: its run shows the SyntaxError to the
        diagnosis. `temperature`: sampled hotter than the run's setting (a repair that came back unchanged)."""
        convo = list(messages)
        prompt = message_text(messages)
        attempts = ("script", "script_repair")
        for attempt in attempts:
            try:
                out, seconds = self._invoke(self._hotter(temperature), convo, attempt)
            except _Fatal:
                return None
            if out is None:
                temperature = None  # a model that refuses the hotter temperature gets its own setting again
                continue
            text = reply_text(out)
            code = script_in(text, prompt)
            problem = ("no ```python block in the reply" if len(text) <= MAX_REPLY_CHARS else
                       f"the reply is {len(text)} characters long") if code is None else _syntax_error(code)
            if code and not problem and check is not None:
                problem = check(code)
            self._record(attempt, out, seconds, not problem, problem)
            if code and (not problem or attempt == attempts[-1]):
                return code
            if code:
                ask = (f"That reply cannot run: {problem}. Reply with the complete corrected script in a single "
                       "```python block, with nothing but Python inside it.")
            else:
                ask = "Reply with the complete script in a single ```python block."
            convo = [*convo, _echo(out), HumanMessage(ask)]
        return None

    def write_edit(self, messages: list[BaseMessage], base: str, *, temperature: float | None = None
                   ) -> tuple[str | None, dict]:
        """A small step's script: the model's search/replace edits applied to `base`, with a record of how it
        came (`form`: edits or script; `applied`; `blocks`; `error`). A reply that is a whole script is taken as
        one. When the edits do not apply or do not compile, the model is told why and asked, in the same
        conversation (a prompt cache holds all of it), for the whole script."""
        try:
            out, seconds = self._invoke(self._hotter(temperature), messages, "edit")
        except _Fatal:
            return None, {"form": "edits", "applied": False, "blocks": 0, "error": self.errors[-1][:300]}
        text = reply_text(out) if out is not None else ""
        edits: list[tuple[str, str]] = []
        code, problem = None, "no reply" if out is None else ""
        try:
            edits = parse_edits(text) if out is not None and len(text) <= MAX_REPLY_CHARS else []
            if edits:
                code = apply_edits(base, edits)
                problem = _syntax_error(code)
        except EditError as e:
            problem = str(e)
        if out is not None and not edits and not problem:
            whole = script_in(text, message_text(messages))
            if whole and not _syntax_error(whole) and (whole.lstrip().lower().startswith("# approach:") or
                                                      len(whole.splitlines()) >= WHOLE_SHARE * len(base.splitlines())):
                self._record("edit", out, seconds, True)
                return whole, {"form": "script", "applied": False, "blocks": 0, "error": "the reply was a whole script"}
            problem = "the reply holds no edit block"
        if out is not None:
            self._record("edit", out, seconds, not problem, problem)
        if not problem:
            return code, {"form": "edits", "applied": True, "blocks": len(edits), "error": None}
        ask = (f"Those edits cannot be used: {problem}. Reply instead with the whole new script (the base script with "
               "the change applied) in one ```python block.")
        convo = [*messages, _echo(out), HumanMessage(ask)] if out is not None else [*messages, HumanMessage(ask)]
        return self.write_script(convo), {"form": "script", "applied": False, "blocks": len(edits),
                                          "error": problem[:300], "reply": text[:REPLY_SHOWN]}

    def _hotter(self, temperature: float | None):
        model = self._now()
        if temperature is None:
            return model
        try:
            return model.bind(temperature=temperature)
        except Exception:  # a model without runtime arguments: its own setting stands
            return model

    def _now(self):
        """The model, its next call bounded by the time the run has left."""
        return self.model if self.deadline is None else within(self.model, self.deadline - time.time())


def script_in(text: str, prompt: str) -> str | None:
    """The script a reply holds (None: none, or the reply is too long to be one), with the prompt's own words that
    a small model pastes into it commented out when they keep it from compiling."""
    code = extract_code(text) if len(text) <= MAX_REPLY_CHARS else None
    return strip_echo(code, prompt) if code and _syntax_error(code) else code


def strip_echo(code: str, prompt: str) -> str:
    """`code` with the lines that keep it from compiling commented out, when they are the prompt's own words (the
    1.5B model pastes the plan it was given after the script); `code` unchanged unless that makes it compile."""
    lines = code.split("\n")
    for _ in range(40):
        try:
            compile("\n".join(lines), "main.py", "exec")
            return "\n".join(lines)
        except SyntaxError as e:
            i = (e.lineno or 0) - 1
            if not 0 <= i < len(lines) or len(lines[i].strip()) < 8 or lines[i].strip() not in prompt:
                return code
            lines[i] = "# " + lines[i]
        except (ValueError, RecursionError, MemoryError):
            return code
    return code


def _syntax_error(code: str) -> str:
    """What stops `code` from compiling ('' when it compiles)."""
    try:
        compile(code, "main.py", "exec")
    except SyntaxError as e:
        line = (e.text or "").strip()[:200]
        return f"SyntaxError at line {e.lineno}: {e.msg}" + (f" ({line!r})" if line else "")
    except ValueError as e:  # null bytes
        return f"it does not compile: {e}"
    except (RecursionError, MemoryError):  # a 10 KB expression like 1+1+1+... overflows the compiler
        return "it does not compile: an expression nests too deeply"
    return ""


class _Fatal(Exception):
    """A failure of the connection or the account, not of the reply format."""
