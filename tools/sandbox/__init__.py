"""Where scripts run: the Executor protocol, the local sandbox chain, e2b; `make_executor` builds one from
settings (the CLI, the runner, the eval and the LangGraph server all use it)."""

from __future__ import annotations

from typing import Literal

from gome.tools.sandbox.executor import Collect, Executor, Limits, RunResult

Sandbox = Literal["local", "e2b"]


def make_executor(sandbox: str = "local", *, slots: int = 1, allow_network: bool = False,
                  memory_gib: float | None = None) -> Executor:
    """The local sandbox (one slot per parallel trace) or e2b. Raises E2BUnavailable (a clear message) when e2b
    has no key or SDK, ValueError for an unknown sandbox or a bad limit."""
    if sandbox == "e2b":
        from gome.tools.sandbox.e2b import E2BExecutor

        return E2BExecutor(allow_network=allow_network)
    if sandbox != "local":
        raise ValueError(f"unknown sandbox {sandbox!r}: use 'local' or 'e2b'")
    from gome.tools.sandbox.local import LocalExecutor

    memory = int(memory_gib * (1 << 30)) if memory_gib else None
    return LocalExecutor(slots=slots, allow_network=allow_network, memory_bytes=memory)


__all__ = ["Collect", "Executor", "Limits", "RunResult", "Sandbox", "make_executor"]
