"""The Executor protocol: run one script in its own folder under limits, bring back the files gome asked for,
report what happened.

Backends (the local sandbox, e2b) all return a RunResult, so nodes never care where a script ran. A script's
folder is its own: gome never reads it in place. It names the files it wants (`Collect`) and the backend copies
them out as regular files under their size caps, into a folder the script cannot reach, before the script's
folder is emptied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from gome.state.records import RunConfig, RunStatus
from gome.tools.files import copy_file

_RUN = RunConfig.model_fields  # one place for the defaults: the run's config


@dataclass(frozen=True)
class Limits:
    timeout_s: float = _RUN["script_timeout_s"].default
    max_output_bytes: int = _RUN["max_output_bytes"].default  # per stream, head + tail kept
    threads: int = _RUN["threads"].default  # OMP / MKL / OpenBLAS threads

    @classmethod
    def of(cls, config: RunConfig, seconds_left: float) -> Limits:
        """A script's limits within a run: its timeout never outlasts the time the run has left."""
        return cls(timeout_s=max(min(config.script_timeout_s, seconds_left), 1.0),
                   max_output_bytes=config.max_output_bytes, threads=config.threads)


@dataclass(frozen=True)
class Collect:
    """Files to bring back after the run: name -> the most bytes accepted, copied into `into`."""

    into: Path
    caps: dict[str, int]


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
    isolation: str = ""  # the isolation chain it ran under, e.g. "bwrap+cgroup-v1+uid+rlimits+quota"
    collected: list[str] = field(default_factory=list)  # files of Collect brought back
    refused: dict[str, str] = field(default_factory=dict)  # files of Collect the script left but gome refused
    node: str = ""  # the cluster node it ran on (Ray's node id); empty when it ran here

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@runtime_checkable
class Executor(Protocol):
    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None,
            collect: Collect | None = None, candidates: Path | None = None) -> RunResult:
        """Run `script` (copied into `workdir` as its own name) with `workdir` as its current folder and
        `data_dir` (public data) as GOME_DATA_DIR; then copy out the files of `collect`. `candidates`: a folder
        of earlier experiments' predictions, read-only at GOME_CANDIDATES_DIR (for a script that blends them)."""
        ...


def collect_files(workdir: Path, collect: Collect | None) -> tuple[list[str], dict[str, str]]:
    """Copy the requested files out of a script's folder: regular files only, never through a link, each under
    its cap. Returns (collected names, {name: why refused})."""
    got, refused = [], {}
    for name, cap in (collect.caps.items() if collect else ()):
        try:
            copy_file(workdir / name, collect.into / name, cap)
            got.append(name)
        except FileNotFoundError:
            continue
        except OSError as e:
            refused[name] = e.strerror or str(e)
    return got, refused
