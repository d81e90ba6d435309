"""Running scripts in e2b cloud sandboxes (e2b-code-interpreter), behind the same Executor protocol.

Each run gets a fresh sandbox: the public data and the script are uploaded, the script runs in the background
under our own wall-clock timer (the SDK's command timeout does not kill the process), and the files gome asked
for come back as regular files under their size caps. The sandbox is killed whatever happens.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from gome.tools.files import read_bytes, write_bytes
from gome.tools.sandbox.executor import Collect, Limits, RunResult
from gome.tools.sandbox.local import MAX_SCRIPT_BYTES, CappedBuffer, sandbox_env

REMOTE_HOME = "/home/user"
REMOTE_WORK, REMOTE_DATA = f"{REMOTE_HOME}/work", f"{REMOTE_HOME}/data"
REMOTE_CANDIDATES = f"{REMOTE_HOME}/candidates"
PASSED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "OMP_WAIT_POLICY", "PYTHONUNBUFFERED", "GOME_SEED", "GOME_DEBUG", "CUDA_VISIBLE_DEVICES")


class E2BUnavailable(RuntimeError):
    """e2b cannot be used: no key, no SDK installed. The message says what to do."""


class E2BExecutor:
    isolation = "e2b"

    def __init__(self, api_key: str | None = None, *, template: str | None = None, allow_network: bool = False,
                 max_artifact_bytes: int = 512 << 20, sandbox_factory=None):
        """sandbox_factory(timeout_s) -> a sandbox object; tests pass a fake of the SDK's Sandbox."""
        self.allow_network, self.max_artifact_bytes = allow_network, max_artifact_bytes
        if sandbox_factory is None:
            key = api_key or os.environ.get("E2B_API_KEY")
            if not key:
                raise E2BUnavailable("the e2b executor needs an API key: set E2B_API_KEY")
            try:
                from e2b_code_interpreter import Sandbox
            except ImportError:
                raise E2BUnavailable("the e2b executor needs its SDK: pip install 'gome[e2b]'") from None

            def sandbox_factory(timeout_s: float):
                return Sandbox.create(template=template, api_key=key, timeout=int(timeout_s) + 120,
                                      allow_internet_access=allow_network)
        self.factory = sandbox_factory

    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None,
            collect: Collect | None = None, candidates: Path | None = None) -> RunResult:
        start = time.monotonic()
        try:
            sbx = self.factory(limits.timeout_s)
        except Exception as e:  # AuthenticationException, httpx.ConnectError, ...: not all derive from SandboxException
            return RunResult(status="error", returncode=None, runtime_s=round(time.monotonic() - start, 3),
                             stdout="", stderr=f"e2b sandbox failed to start: {type(e).__name__}: {e}",
                             detail="the e2b sandbox failed to start", isolation=self.isolation)
        try:
            return self._run(sbx, Path(script), Path(data_dir), limits, env or {}, start, collect, candidates)
        finally:
            try:
                sbx.kill()
            except Exception:  # already gone: nothing left to clean up
                pass

    def _run(self, sbx, script: Path, data_dir: Path, limits: Limits, env: dict[str, str], start: float,
             collect: Collect | None, candidates: Path | None) -> RunResult:
        for local, remote in ((data_dir, REMOTE_DATA), (candidates, REMOTE_CANDIDATES)):
            for f in sorted(local.rglob("*")) if local is not None else ():
                if f.is_file() and not f.is_symlink():
                    sbx.files.write(f"{remote}/{f.relative_to(local)}", read_bytes(f, 1 << 40))
        sbx.files.write(f"{REMOTE_WORK}/{script.name}", read_bytes(script, MAX_SCRIPT_BYTES))
        local = sandbox_env(limits.threads, env)
        envs = {k: local[k] for k in PASSED_ENV if k in local} | {"GOME_DATA_DIR": REMOTE_DATA}
        if candidates is not None:
            envs["GOME_CANDIDATES_DIR"] = REMOTE_CANDIDATES
        out, err = CappedBuffer(limits.max_output_bytes), CappedBuffer(limits.max_output_bytes)
        handle = sbx.commands.run(f"python {script.name}", background=True, cwd=REMOTE_WORK, envs=envs,
                                  on_stdout=lambda s: out.feed(s.encode()), on_stderr=lambda s: err.feed(s.encode()),
                                  timeout=limits.timeout_s + 60)
        ended: dict = {}

        def wait() -> None:
            try:
                ended["result"] = handle.wait()
                ended["code"] = getattr(ended["result"], "exit_code", 0)
            except Exception as e:  # CommandExitException carries the exit code
                ended["code"] = getattr(e, "exit_code", None)
                ended["error"] = e

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(limits.timeout_s)
        timed_out = waiter.is_alive()
        if timed_out:
            handle.kill()  # our timer, not the SDK's: its timeout leaves the process running
            waiter.join(5)
        runtime = time.monotonic() - start
        code = ended.get("code")
        if timed_out:
            status, detail = "timeout", f"killed after the {limits.timeout_s:g} s wall-clock limit"
        elif code == 0:
            status, detail = "ok", "exited 0"
        elif code in (137, -9) or "MemoryError" in err.text()[-4000:]:
            status, detail = "oom", f"exit {code} (likely out of memory)"
        else:
            status, detail = "error", f"exited with code {code}" if code is not None else str(ended.get("error"))
        result = RunResult(status=status, returncode=code, runtime_s=round(runtime, 3), stdout=out.text(),
                           stderr=err.text(), stdout_bytes=out.total, stderr_bytes=err.total, detail=detail,
                           isolation=self.isolation)
        self._download(sbx, result, collect)
        return result

    def _download(self, sbx, result: RunResult, collect: Collect | None) -> None:
        """List what the script left; bring back the requested files: regular files under their caps, written
        by gome into its own folder."""
        entries = {e.name: e for e in sbx.files.list(REMOTE_WORK)}
        result.artifacts = sorted(n for n, e in entries.items()
                                  if str(getattr(e.type, "value", e.type)) == "file" and "/" not in n)
        for name, cap in (collect.caps.items() if collect else ()):
            entry = entries.get(name)
            if entry is None:
                continue
            if str(getattr(entry.type, "value", entry.type)) != "file" or getattr(entry, "symlink_target", None):
                result.refused[name] = f"{name} is not a regular file"
            elif (entry.size or 0) > min(cap, self.max_artifact_bytes):
                result.refused[name] = f"{name} is {entry.size} bytes, over the {cap}-byte limit"
            else:
                data = bytes(sbx.files.read(f"{REMOTE_WORK}/{name}", format="bytes"))
                if len(data) > cap:
                    result.refused[name] = f"{name} is {len(data)} bytes, over the {cap}-byte limit"
                    continue
                write_bytes(collect.into / name, data)
                result.collected.append(name)
