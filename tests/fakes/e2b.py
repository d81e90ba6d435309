"""A fake of the e2b SDK's Sandbox at its boundary: files, background commands, kill. Commands really run, locally,
with /home/user mapped to a temporary folder; like the real SDK, the command timeout does not kill the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path


class FakeCommandExit(Exception):
    def __init__(self, exit_code: int):
        super().__init__(f"command exited with {exit_code}")
        self.exit_code = exit_code


@dataclass
class Entry:
    name: str
    type: str
    size: int
    symlink_target: str | None = None


class FakeHandle:
    def __init__(self, proc: subprocess.Popen, on_stdout, on_stderr):
        self.proc, self.pid = proc, proc.pid
        self._pumps = [threading.Thread(target=self._pump, args=(s, cb), daemon=True)
                       for s, cb in ((proc.stdout, on_stdout), (proc.stderr, on_stderr))]
        for t in self._pumps:
            t.start()

    @staticmethod
    def _pump(stream, callback):
        for line in iter(stream.readline, b""):
            callback(line.decode(errors="replace"))

    def wait(self):
        code = self.proc.wait()
        for t in self._pumps:
            t.join()
        if code != 0:
            raise FakeCommandExit(code)
        return type("CommandResult", (), {"exit_code": 0})()

    def kill(self) -> bool:
        os.killpg(self.proc.pid, signal.SIGKILL)
        return True


class FakeSandbox:
    def __init__(self, root: Path):
        self.root, self.killed, self.handles, self.envs = root, False, [], []
        self.files, self.commands = _Files(self), _Commands(self)

    def local(self, remote: str) -> Path:
        return self.root / remote.removeprefix("/home/user/")

    def kill(self) -> None:
        self.killed = True


class _Files:
    def __init__(self, sbx: FakeSandbox):
        self.sbx = sbx

    def write(self, path: str, data) -> None:
        target = self.sbx.local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data if isinstance(data, bytes) else data.encode())

    def list(self, path: str) -> list[Entry]:
        out = []
        for p in self.sbx.local(path).iterdir():
            link = os.readlink(p) if p.is_symlink() else None
            kind = "dir" if p.is_dir() and not link else "file"
            out.append(Entry(p.name, kind, p.lstat().st_size, link))
        return out

    def read(self, path: str, format: str = "text"):
        data = self.sbx.local(path).read_bytes()
        return data if format == "bytes" else data.decode()


class _Commands:
    def __init__(self, sbx: FakeSandbox):
        self.sbx = sbx

    def run(self, cmd, background=None, envs=None, cwd=None, on_stdout=None, on_stderr=None, timeout=60):
        assert background, "gome must run scripts in the background and time them itself"
        envs = dict(envs or {})
        self.sbx.envs.append(dict(envs))
        envs = {k: str(self.sbx.local(v)) if str(v).startswith("/home/user") else v for k, v in envs.items()}
        argv = [sys.executable if part == "python" else part for part in cmd.split()]
        proc = subprocess.Popen(argv, cwd=self.sbx.local(cwd), env={"PATH": os.environ["PATH"], **envs},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        handle = FakeHandle(proc, on_stdout or (lambda s: None), on_stderr or (lambda s: None))
        self.sbx.handles.append(handle)
        return handle
