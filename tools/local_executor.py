"""The first local sandbox: a child process in its own session, killed as a group, output capped in memory.

It contains what a plain process group can contain: a wall-clock timeout that kills the script and the children
it left in its group, bounded output, a scrubbed environment and a thread cap. A script that calls setsid
escapes the group kill, and a root script can write to files marked read-only; the hardened executor
(bubblewrap, cgroups) closes those.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from gome.tools.executor import Limits, RunResult

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE", re.I)
SECRET_PREFIXES = ("OPENAI_", "ANTHROPIC_", "AZURE_", "AWS_", "GOOGLE_", "GCP_", "HF_", "HUGGING", "LANGSMITH_",
                   "LANGCHAIN_", "E2B_", "GITHUB_", "GH_", "MISTRAL_", "GROQ_", "TOGETHER_", "COHERE_", "GOME_")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
OOM_MARKERS = ("MemoryError", "CUDA out of memory", "Cannot allocate memory", "std::bad_alloc")


def scrubbed_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The host environment minus anything that looks like a secret, with thread caps set."""
    env = {k: v for k, v in os.environ.items()
           if not SECRET_NAME.search(k) and not k.upper().startswith(SECRET_PREFIXES)}
    env.update({k: str(threads) for k in THREAD_VARS})
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


class CappedBuffer:
    """Keeps the first and last `cap/2` bytes of a stream and counts the rest: memory stays bounded."""

    def __init__(self, cap: int):
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        mid = f"\n[... {dropped} bytes dropped ...]\n".encode() if dropped > 0 else b""
        return (bytes(self.head) + mid + bytes(self.tail)).decode("utf-8", errors="replace")


def _pump(stream, buf: CappedBuffer) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        buf.feed(chunk)
    stream.close()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalExecutor:
    """Runs `python script` in its own session with `workdir` as the current folder."""

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None
            ) -> RunResult:
        workdir = Path(workdir)
        extra = {"GOME_DATA_DIR": str(data_dir), **(env or {})}
        out, err = CappedBuffer(limits.max_output_bytes), CappedBuffer(limits.max_output_bytes)
        start = time.monotonic()
        proc = subprocess.Popen(
            [self.python, str(script)], cwd=workdir, env=scrubbed_env(limits.threads, extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        pumps = [threading.Thread(target=_pump, args=(s, b), daemon=True)
                 for s, b in ((proc.stdout, out), (proc.stderr, err))]
        for t in pumps:
            t.start()
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # The group dies whatever happened: children left behind must not outlive the run.
            _kill_group(proc.pid)
            proc.wait()
        runtime = time.monotonic() - start
        for t in pumps:
            t.join(timeout=5)
        status, detail = _classify(proc.returncode, timed_out, err.text(), limits)
        return RunResult(
            status=status, returncode=proc.returncode, runtime_s=round(runtime, 3), stdout=out.text(),
            stderr=err.text(), stdout_bytes=out.total, stderr_bytes=err.total, detail=detail,
            artifacts=sorted(p.name for p in workdir.iterdir() if p.is_file() and not p.is_symlink()))


def _classify(rc: int, timed_out: bool, stderr: str, limits: Limits) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"killed after the {limits.timeout_s:g} s wall-clock limit"
    tail = stderr[-4000:]
    if any(m in tail for m in OOM_MARKERS):
        return "oom", "ran out of memory"
    if rc == 0:
        return "ok", "exited 0"
    if rc < 0:
        sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        if -rc == signal.SIGKILL:  # not ours (we only kill on timeout): the kernel's OOM killer, most likely
            return "oom", "killed by SIGKILL (likely the out-of-memory killer)"
        return "killed", f"killed by {sig}"
    return "error", f"exited with code {rc}"
