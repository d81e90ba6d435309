"""Where scripts run: the Executor protocol, the local sandbox chain, e2b, a Ray cluster; `make_executor` builds
one from settings (the CLI, the runner, the eval and the LangGraph server all use it)."""

from __future__ import annotations

from typing import Literal

from gome.tools.sandbox.executor import Collect, Executor, Limits, RunResult

Sandbox = Literal["local", "e2b", "ray"]


def make_executor(sandbox: str = "local", *, slots: int = 1, allow_network: bool = False,
                  memory_gib: float | None = None, ray_address: str | None = None, gpus: float = 0,
                  cpus: float | None = None) -> Executor:
    """The local sandbox (one slot per parallel trace), e2b, or a Ray cluster (`ray_address`, default
    $RAY_ADDRESS or a local one; `cpus` and `gpus` per script, default: the run's threads and none). Raises
    E2BUnavailable / RayUnavailable (a clear message) when the backend cannot be used, ValueError for an unknown
    sandbox or a bad limit."""
    memory = int(memory_gib * (1 << 30)) if memory_gib else None
    if sandbox == "ray":
        from gome.tools.sandbox.ray_executor import RayExecutor, weak_ok

        return RayExecutor(ray_address, cpus=cpus, memory_bytes=memory, gpus=gpus, allow_network=allow_network,
                           weak_sandbox=weak_ok())
    if gpus:
        raise ValueError("GPUs per script are requested from a Ray cluster: use --executor ray")
    if sandbox == "e2b":
        from gome.tools.sandbox.e2b import E2BExecutor

        return E2BExecutor(allow_network=allow_network)
    if sandbox != "local":
        raise ValueError(f"unknown sandbox {sandbox!r}: use 'local', 'e2b' or 'ray'")
    from gome.tools.sandbox.local import LocalExecutor

    return LocalExecutor(slots=slots, allow_network=allow_network, memory_bytes=memory)


__all__ = ["Collect", "Executor", "Limits", "RunResult", "Sandbox", "make_executor"]
