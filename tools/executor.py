"""The Executor protocol: run one script in its experiment folder under limits, report what happened.

Backends (the local process sandbox here; bubblewrap, cgroups and e2b later) all return a RunResult, so nodes
never care where a script ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from gome.state.records import RunStatus


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 1800.0
    max_output_bytes: int = 64_000  # per stream, head + tail kept
    threads: int = 2  # OMP / MKL / OpenBLAS threads


@dataclass
class RunResult:
    status: RunStatus
    returncode: int | None
    runtime_s: float
    stdout: str  # head + tail when longer than the cap, with a marker where bytes were dropped
    stderr: str
    stdout_bytes: int = 0  # bytes the script wrote in all
    stderr_bytes: int = 0
    artifacts: list[str] = field(default_factory=list)  # regular files the script left in its folder
    detail: str = ""  # why it ended, in words
    isolation: str = ""  # the isolation chain it ran under, e.g. "bwrap+cgroup-v1+uid+rlimits"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@runtime_checkable
class Executor(Protocol):
    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None
            ) -> RunResult:
        """Run `script` with `workdir` as its current folder and `data_dir` (public data) as GOME_DATA_DIR."""
        ...
