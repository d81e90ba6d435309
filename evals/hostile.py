"""Hostile scripts and the check that a sandbox contained each: right status, no process left, host unchanged.

Used by tests/tools/test_hostile.py (full chain) and by `python -m gome.evals.bench_sandbox` (every level).
Each script prints BREACH when it got somewhere it must not.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gome.tools.executor import Limits
from gome.tools.metrics import ScoringError
from gome.tools.submission import read_artifact_csv


@dataclass(frozen=True)
class Hostile:
    name: str
    code: str  # may use {other}, {private}, {port}
    statuses: tuple[str, ...]  # acceptable RunResult statuses
    harms_host: bool = False  # unsafe to run without cgroup limits (it would exhaust the machine)


SCRIPTS = [
    Hostile("fork bomb", """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """, ("timeout", "error", "killed"), harms_host=True),
    Hostile("memory bomb", """
        hog = []
        while True:
            hog.append(b"x" * 50_000_000)
    """, ("oom",), harms_host=True),
    Hostile("infinite loop", "while True:\n    pass\n", ("timeout",)),
    Hostile("SIGTERM ignored", """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
    """, ("timeout",)),
    Hostile("setsid grandchild left behind", """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """, ("ok",)),
    Hostile("writes to /etc and $HOME", """
        import os
        for path in ("/etc/gome-hostile", os.path.expanduser("~/gome-hostile"), "/root/gome-hostile",
                     "/usr/gome-hostile"):
            try:  # a write into the sandbox's own throwaway root is harmless: the host snapshot judges
                open(path, "w").write("x")
            except OSError:
                pass
    """, ("ok",)),
    Hostile("reads another run's folder", """
        try:
            print("BREACH", open({other!r}).read())
        except OSError:
            pass
    """, ("ok",)),
    Hostile("reads private answers", """
        try:
            print("BREACH", open({private!r}).read()[:40])
        except OSError:
            pass
    """, ("ok",)),
    Hostile("opens an internet socket", """
        import socket
        for host, port in (("1.1.1.1", 80), ("127.0.0.1", {port})):
            try:
                socket.create_connection((host, port), timeout=2).close()
                print("BREACH connected", host, port)
            except OSError:
                pass
        try:
            socket.getaddrinfo("pypi.org", 443)
            print("BREACH resolved pypi.org")
        except OSError:
            pass
    """, ("ok",)),
    Hostile("500 MB of stdout", """
        import sys
        chunk = b"y" * (1 << 20)
        for _ in range(500):
            sys.stdout.buffer.write(chunk)
    """, ("ok",)),
    Hostile("submission.csv as a symlink to a host file", """
        import os
        os.symlink({private!r}, "submission.csv")
        os.symlink("/etc/passwd", "val_predictions.csv")
    """, ("ok",)),
    Hostile("zombie children", """
        import os, time
        for _ in range(20):
            if os.fork() == 0:
                os._exit(0)
        time.sleep(0.5)
    """, ("ok",)),
]


def leftovers(marker: str, settle_s: float = 2.0) -> list[int]:
    """Host pids of live processes that still carry the run's marker in their environment, after giving
    processes already sent SIGKILL up to `settle_s` to finish dying."""
    deadline = time.monotonic() + settle_s
    while (found := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _marked(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] != "Z":
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _snapshot(paths: list[Path]) -> dict[str, tuple]:
    snap = {}
    for p in paths:
        try:
            snap[str(p)] = tuple(sorted((c.name, c.stat().st_size) for c in p.iterdir()))
        except OSError:
            snap[str(p)] = ()
    return snap


def _listener() -> tuple[socket.socket, int]:
    """A host service on loopback that a sandboxed script must not reach."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    threading.Thread(target=lambda: [srv.accept() for _ in range(3)], daemon=True).start()
    return srv, srv.getsockname()[1]


def check(executor, hostile: Hostile, base: Path, timeout_s: float = 5.0) -> dict:
    """Run one hostile script through `executor`; say whether it was contained and why not."""
    run = base / hostile.name.replace(" ", "-").replace("/", "")
    work, data, other, private = run / "work", run / "data", base / "other-run", base / "task" / "private"
    for d in (work, data, other, private):
        d.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_text("id,y\n1,0\n")
    (other / "secret.txt").write_text("another run's secret")
    (private / "answers.csv").write_text("id,y\n1,1\n")
    srv, port = _listener()
    code = textwrap.dedent(hostile.code).format(other=str(other / "secret.txt"),
                                                private=str(private / "answers.csv"), port=port)
    (work / "main.py").write_text(code)
    watched = [Path("/etc"), Path.home(), Path("/usr"), other, private, data]
    before = _snapshot(watched)
    marker = uuid.uuid4().hex
    res = executor.run(work / "main.py", work, data, Limits(timeout_s=timeout_s, max_output_bytes=64_000),
                       env={"GOME_HOSTILE_MARKER": marker})
    srv.close()
    problems = []
    if res.status not in hostile.statuses:
        problems.append(f"status {res.status} ({res.detail}), expected {'/'.join(hostile.statuses)}")
    if "BREACH" in res.stdout:
        problems.append(res.stdout[res.stdout.index("BREACH"):][:200].strip())
    if left := leftovers(marker):
        problems.append(f"{len(left)} process(es) left behind")
    if (after := _snapshot(watched)) != before:
        changed = [k for k in before if before[k] != after[k]]
        problems.append(f"host changed: {changed}")
    for name in ("submission.csv", "val_predictions.csv"):
        if (work / name).is_symlink():
            try:
                read_artifact_csv(work / name)
                problems.append(f"{name} symlink was followed by the collector")
            except ScoringError:
                pass
    if len(res.stdout) > 2 * 64_000:
        problems.append(f"stdout not capped ({len(res.stdout)} chars kept)")
    _clean_up(marker)
    return {"name": hostile.name, "status": res.status, "contained": not problems, "problems": problems,
            "runtime_s": res.runtime_s, "isolation": res.isolation}


def _clean_up(marker: str) -> None:
    """Undo what an uncontained script did (weak levels only), so a benchmark leaves the host as it found it."""
    for pid in _marked(marker):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for folder in ("/etc", "/usr", "/root", str(Path.home())):
        try:
            (Path(folder) / "gome-hostile").unlink()
        except OSError:
            pass
