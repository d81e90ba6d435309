"""Building the chat model from "provider:model" plus flags, environment or config."""

from __future__ import annotations

import os

from gome.state.records import ModelSpec

ENV_MODEL, ENV_BASE_URL, ENV_KEY = "GOME_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"


class ModelConfigError(RuntimeError):
    """No usable model configuration; the message says how to give one."""


def resolve_spec(spec: ModelSpec | None = None) -> ModelSpec:
    """Fill what the flags left open from the environment (GOME_MODEL, OPENAI_BASE_URL)."""
    spec = spec or ModelSpec()
    updates = {}
    if not spec.model and os.environ.get(ENV_MODEL):
        updates["model"] = os.environ[ENV_MODEL]
    if not spec.base_url and os.environ.get(ENV_BASE_URL):
        updates["base_url"] = os.environ[ENV_BASE_URL]
    return spec.model_copy(update=updates)


def make_chat_model(spec: ModelSpec | None = None, api_key: str | None = None):
    """Any LangChain chat model from "provider:model" (init_chat_model). A bare name means OpenAI.

    An OpenAI-compatible server (vLLM, llama.cpp, Ollama) is `openai:<served name>` with base_url; it gets a
    dummy key when none is set, the Chat Completions API, and streamed usage so tokens are counted.
    """
    from langchain.chat_models import init_chat_model

    spec = resolve_spec(spec)
    if not spec.model:
        raise ModelConfigError(
            "no model configured: pass --model provider:name (e.g. openai:gpt-4.1-mini), set GOME_MODEL, "
            "or point OPENAI_BASE_URL at an OpenAI-compatible server and pass --model openai:<served name>")
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
