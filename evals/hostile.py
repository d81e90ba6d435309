"""Hostile scripts and the check that a sandbox contained each: right status, no process left, host unchanged,
no secret seen, nothing but regular files under their caps brought back, the disk and inodes of its own quota.

Used by tests/tools/test_hostile.py (full chain) and by `python -m gome.evals.bench_sandbox` (every level).
Each script prints BREACH when it got somewhere it must not. The attacks on gome itself (links left for it to
follow, floods of output, damaged checkpoints, malformed replies) are run through whole runs in
tests/test_boundary.py.
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

from gome.tools.sandbox.executor import Collect, Limits

COLLECT_CAP = 1 << 20  # bytes the check brings back per file
DISK_QUOTA, INODE_QUOTA = 64 << 20, 4096  # the executor the suite runs with (see executor() below)
SECRETS = {"DATABASE_URL": "postgresql://app:hunter2@db.internal/prod", "MYSQL_PWD": "hunter3",
           "DB_PASS": "hunter4", "SENTRY_DSN": "https://abc123@o1.ingest.sentry.io/1",
           "HTTPS_PROXY": "http://user:hunter5@proxy.internal:3128", "OPENAI_API_KEY": "sk-hunter6",
           "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/hunter7"}


@dataclass(frozen=True)
class Hostile:
    name: str
    code: str  # may use {other}, {private}, {port}
    statuses: tuple[str, ...]  # acceptable RunResult statuses
    needs: str | None = None  # the link without which it would harm the host (cgroup: bombs; quota: floods)
    refused: tuple[str, ...] = ()  # collected files gome must refuse (links, specials, floods)


SCRIPTS = [
    Hostile("fork bomb", """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """, ("timeout", "error", "killed"), needs="cgroup"),
    Hostile("memory bomb", """
        hog = []
        while True:
            hog.append(b"x" * 50_000_000)
    """, ("oom",), needs="cgroup"),
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
    """, ("ok",), refused=("submission.csv", "val_predictions.csv")),
    Hostile("links to gome's own records and a sibling experiment", """
        import os
        for name, target in (("stdout.txt", "../stdout.txt"), ("metrics.json", "../../0001/metrics.json"),
                             ("submission.csv", "../../0001/submission.csv"), ("main.py", "/etc/shadow"),
                             ("val_predictions.csv", "../val_predictions.csv")):
            try:
                os.remove(name)
            except OSError:
                pass
            os.symlink(target, name)
    """, ("ok",), refused=("submission.csv", "val_predictions.csv")),
    Hostile("a FIFO as the submission", """
        import os
        os.mkfifo("submission.csv")
        os.mkfifo("val_predictions.csv")
    """, ("ok",), refused=("submission.csv", "val_predictions.csv")),
    Hostile("500 MB of held-out predictions", """
        line = "".join(f"{{i}},0.5\\n" for i in range(100_000))
        with open("val_predictions.csv", "w") as f:
            for _ in range(500_000_000 // len(line) + 1):
                f.write(line)
        print("wrote it all")
    """, ("ok", "error"), refused=("val_predictions.csv",), needs="quota"),
    Hostile("environment secrets", """
        import os
        values = {secrets!r}
        for name, value in os.environ.items():
            if name in values or value in values.values():
                print("BREACH", name)
    """, ("ok",)),
    Hostile("disk flood", """
        chunk, wrote = b"z" * (1 << 20), 0
        try:
            with open("flood.bin", "wb") as f:
                for _ in range(4096):
                    f.write(chunk)
                    f.flush()
                    wrote += len(chunk)
        except OSError:
            pass
        if wrote > {disk} + (8 << 20):
            print("BREACH wrote", wrote)
    """, ("ok",), needs="quota"),
    Hostile("inode flood", """
        import os
        os.mkdir("many")
        made = 0
        try:
            for i in range(200_000):
                open(f"many/{{i}}", "w").close()
                made += 1
        except OSError:
            pass
        if made > {inodes}:
            print("BREACH made", made)
    """, ("ok",), needs="quota"),
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
                                                private=str(private / "answers.csv"), port=port, secrets=SECRETS,
                                                disk=DISK_QUOTA, inodes=INODE_QUOTA)
    (run / "main.py").write_text(code)
    out = run / "out"
    out.mkdir(exist_ok=True)
    watched = [Path("/etc"), Path.home(), Path("/usr"), other, private, data, out]
    before = _snapshot(watched)
    marker = uuid.uuid4().hex
    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)  # what a host might hold: none of it may reach the script
    try:
        res = executor.run(run / "main.py", work, data, Limits(timeout_s=timeout_s, max_output_bytes=64_000),
                           env={"GOME_HOSTILE_MARKER": marker},
                           collect=Collect(into=out, caps={"submission.csv": COLLECT_CAP,
                                                           "val_predictions.csv": COLLECT_CAP}))
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    srv.close()
    problems = []
    if res.status not in hostile.statuses:
        problems.append(f"status {res.status} ({res.detail}), expected {'/'.join(hostile.statuses)}")
    if "BREACH" in res.stdout:
        problems.append(res.stdout[res.stdout.index("BREACH"):][:200].strip())
    if left := leftovers(marker):
        problems.append(f"{len(left)} process(es) left behind")
    after = _snapshot(watched)
    if changed := [k for k in before if before[k] != after[k] and k != str(out)]:
        problems.append(f"host changed: {changed}")
    for name in hostile.refused:
        if name in res.collected or (out / name).exists():
            problems.append(f"{name} was brought back although the script made it a link, a FIFO or a flood")
        elif name not in res.refused:
            problems.append(f"{name} was not refused with a reason")
    if any(not (out / n).is_file() or (out / n).is_symlink() for n in res.collected):
        problems.append("a collected file is not a regular file")
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
