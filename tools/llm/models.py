"""Building the chat model from "provider:model" plus flags, environment or config."""

from __future__ import annotations

import os

from gome.state.records import ModelSpec

ENV_MODEL, ENV_BASE_URL, ENV_KEY = "GOME_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"
LOCAL_MAX_TOKENS = 2048  # the 1.5B model's replies stay short; an unbounded one can ramble until the timeout


class ModelConfigError(RuntimeError):
    """No usable model configuration; the message says how to give one."""


def resolve_spec(spec: ModelSpec | None = None) -> ModelSpec:
    """Fill what the flags left open from the environment (GOME_MODEL, OPENAI_BASE_URL). With no model and no
    server configured at all, the model is `local`: the embedded one, so gome runs with no API key."""
    spec = spec or ModelSpec()
    updates = {}
    if not spec.model and os.environ.get(ENV_MODEL):
        updates["model"] = os.environ[ENV_MODEL]
    if not spec.base_url and os.environ.get(ENV_BASE_URL):
        updates["base_url"] = os.environ[ENV_BASE_URL]
    if not (spec.model or updates.get("model") or spec.base_url or updates.get("base_url")):
        updates["model"] = "local"
    return spec.model_copy(update=updates)


def is_local(model: str | None) -> bool:
    """`local` or `local:/path/to/weights.gguf`: the embedded llama.cpp model."""
    return bool(model) and (model == "local" or model.startswith("local:"))


# The key each provider's LangChain package reads (None: the provider needs none).
API_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google_genai": "GOOGLE_API_KEY",
            "mistralai": "MISTRAL_API_KEY", "groq": "GROQ_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
            "fireworks": "FIREWORKS_API_KEY", "together": "TOGETHER_API_KEY", "xai": "XAI_API_KEY", "ollama": None}


def check_model(spec: ModelSpec | None = None) -> tuple[bool, str]:
    """(usable, one line): whether the model gome would use can be built here, without calling it."""
    import importlib.util

    spec = resolve_spec(spec)
    if is_local(spec.model):
        from gome.tools.llm.local_model import weights_found

        weights = weights_found(spec.model.partition(":")[2] or None)
        server = importlib.util.find_spec("llama_cpp") is not None
        line = (f"model: {spec.model} (embedded, llama.cpp): weights {weights or 'missing (see the README set-up)'}, "
                f"llama-cpp-python {'installed' if server else 'missing (pip install gome[local])'}")
        return bool(weights and server), line
    if not spec.model:
        return False, f"model: none named for the server at {spec.base_url} (pass --model openai:<served name>)"
    provider = spec.model.partition(":")[0] if ":" in spec.model else "openai"
    if spec.model.startswith("python:"):
        module = spec.model.split(":")[1]
        found = importlib.util.find_spec(module.split(".")[0]) is not None
        return found, f"model: {spec.model}: module {module} {'found' if found else 'not found'}"
    key = API_KEYS.get(provider, "")
    package = importlib.util.find_spec(f"langchain_{provider.replace('-', '_')}") is not None
    key_state = ("not needed" if spec.base_url or key is None else "not checked (unknown provider)" if not key
                 else "set" if os.environ.get(key) else "not set")
    where = f" at {spec.base_url}" if spec.base_url else ""
    return package and key_state != "not set", (f"model: {spec.model}{where}: langchain-{provider} "
                                                f"{'installed' if package else 'missing'}, "
                                                f"{key or 'API key'} {key_state}")


def within(model, seconds: float):
    """`model` with its next call bounded to `seconds` in all: one try with that time-out, no retry (an OpenAI-
    compatible model; others are returned as they are). A call that ran past the run's clock cost a 12-minute eval
    cell 15 minutes: the 300 s time-out, retried twice, on a slow local server."""
    root = getattr(model, "root_client", None)
    if root is None or not hasattr(root, "with_options"):
        return model
    own = getattr(model, "request_timeout", None)
    retries = getattr(model, "max_retries", 0) or 0
    if isinstance(own, (int, float)) and own * (retries + 1) <= seconds:
        return model  # its own time-out and retries fit
    bounded = model.model_copy()
    bounded.root_client = root.with_options(timeout=max(1.0, seconds), max_retries=0)
    bounded.client = bounded.root_client.chat.completions
    return bounded


def make_chat_model(spec: ModelSpec | None = None, api_key: str | None = None):
    """Any LangChain chat model from "provider:model" (init_chat_model). A bare name means OpenAI; `local` (or
    `local:PATH.gguf`) is the embedded model.

    An OpenAI-compatible server (vLLM, llama.cpp, Ollama) is `openai:<served name>` with base_url; it gets a
    dummy key when none is set, the Chat Completions API, and streamed usage so tokens are counted.
    """
    from langchain.chat_models import init_chat_model

    spec = resolve_spec(spec)
    if not spec.model:
        raise ModelConfigError(
            "no model configured for the server at the base URL: pass --model openai:<served name>, or another "
            "provider:name (e.g. openai:gpt-4.1-mini), or --model local for the embedded model")
    if is_local(spec.model):  # the embedded model: llama.cpp's OpenAI-compatible server, started on first use
        from gome.tools.llm.local_model import shared_server

        url = shared_server(spec.model.partition(":")[2] or None)
        spec = spec.model_copy(update={"model": "openai:local", "base_url": url,
                                       "max_tokens": LOCAL_MAX_TOKENS})
    if spec.model.startswith("python:"):  # python:package.module:factory -> factory(), your own chat model
        import importlib

        _, module, factory = spec.model.split(":", 2)
        try:
            return getattr(importlib.import_module(module), factory)()
        except (ImportError, AttributeError, ValueError) as e:
            raise ModelConfigError(f"cannot build model {spec.model!r}: {e}") from None
    provider, _, name = spec.model.partition(":")
    if not name:
        provider, name = "openai", provider
    kwargs: dict = {"temperature": spec.temperature, "timeout": spec.timeout_s, "max_retries": spec.max_retries}
    if spec.max_tokens:
        kwargs["max_tokens"] = spec.max_tokens
    if provider == "openai":
        key = api_key or os.environ.get(ENV_KEY)
        if spec.base_url:
            kwargs.update(base_url=spec.base_url, use_responses_api=False, stream_usage=True)
            key = key or "not-needed"
        elif not key:
            raise ModelConfigError(f"model {spec.model!r} needs an API key: set {ENV_KEY} (or --base-url for a "
                                   "local OpenAI-compatible server)")
        kwargs["api_key"] = key
    elif spec.base_url:
        kwargs["base_url"] = spec.base_url
    try:
        return init_chat_model(name, model_provider=provider, **kwargs)
    except ImportError as e:
        raise ModelConfigError(f"provider {provider!r} needs its LangChain package: {e}") from None
    except ValueError as e:
        raise ModelConfigError(f"cannot build model {spec.model!r}: {e}") from None
