"""Per-run cgroups: memory, pids and CPU limits, an out-of-memory signal, and a kill that reaches every process.

cgroup v2 is used where its controllers are enabled and writable; otherwise cgroup v1's memory, pids and cpu
hierarchies (what this project's machines have: v2 there holds only hugetlb). A run joins its cgroups before it
execs the sandbox, so every descendant, `setsid` or not, is inside.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from gome.tools.files import read_text

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
MAX_READ_BYTES = 1 << 20  # a group's process list: its pids limit caps it far below this


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    pids: int
    cpus: float  # CPU quota in cores


def detect(root: Path = ROOT) -> str | None:
    """'v2', 'v1' or None: the first layout whose memory, pids and cpu controllers this process can write."""
    controllers = root / "cgroup.controllers"
    if controllers.is_file() and {"memory", "pids", "cpu"} <= set(controllers.read_text().split()):
        if _can_create(root):
            return "v2"
    if all((root / c).is_dir() for c in V1_CONTROLLERS) and all(_can_create(root / c) for c in V1_CONTROLLERS):
        return "v1"
    return None


def _can_create(parent: Path) -> bool:
    probe = parent / f"gome-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


class RunCgroup:
    """The cgroup(s) of one script run. Use: create(), then run `join_command()` first in the child's shell."""

    emptied = False  # a kill found it empty (a class default: sweep() makes groups without __init__)

    def __init__(self, name: str, limits: CgroupLimits, version: str, root: Path = ROOT):
        self.version, self.limits = version, limits
        parents = [root] if version == "v2" else [root / c for c in V1_CONTROLLERS]
        self.dirs = [p / "gome" / name for p in parents]

    def create(self) -> None:
        for d in self.dirs:
            if self.version == "v2":
                _write(d.parent / "cgroup.subtree_control", "+memory +pids +cpu", missing_ok=True)
            d.mkdir(parents=True, exist_ok=True)
        lim = self.limits
        quota = int(lim.cpus * CPU_PERIOD_US)
        if self.version == "v2":
            d = self.dirs[0]
            _write(d / "memory.max", str(lim.memory_bytes))
            _write(d / "memory.swap.max", "0", missing_ok=True)
            _write(d / "pids.max", str(lim.pids))
            _write(d / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        else:
            mem, pids, cpu = self.dirs
            _write(mem / "memory.limit_in_bytes", str(lim.memory_bytes))
            _write(mem / "memory.memsw.limit_in_bytes", str(lim.memory_bytes), missing_ok=True)  # no swap escape
            _write(pids / "pids.max", str(lim.pids))
            _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(quota))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found |= {int(p) for p in read_text(d / "cgroup.procs", MAX_READ_BYTES).split()}
            except OSError:
                pass
        return found

    def kill(self, rounds: int = 50) -> bool:
        """SIGKILL everything inside until it is empty (v2: cgroup.kill). True when nothing is left. Once empty it
        stays empty (nothing is left inside to join it): a second kill reads nothing."""
        if self.emptied:
            return True
        if self.version == "v2":
            _write(self.dirs[0] / "cgroup.kill", "1", missing_ok=True)
        for i in range(rounds):
            left = self.pids()
            if not left:
                self.emptied = True
                return True
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(min(0.02, 0.001 * 2 ** i))  # most are gone within a millisecond or two
        return not self.pids()

    def oom_killed(self) -> bool:
        """Did the kernel kill something here for lack of memory?"""
        try:
            if self.version == "v2":
                text = read_text(self.dirs[0] / "memory.events", MAX_READ_BYTES)
                events = dict(line.split() for line in text.splitlines())
                return int(events.get("oom_kill", 0)) > 0
            text = read_text(self.dirs[0] / "memory.oom_control", MAX_READ_BYTES)
            fields = dict(line.split() for line in text.splitlines())
            if "oom_kill" in fields:
                return int(fields["oom_kill"]) > 0
            return int(read_text(self.dirs[0] / "memory.failcnt", MAX_READ_BYTES)) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still emptying
                    time.sleep(0.02)


def sweep(version: str, root: Path = ROOT) -> None:
    """Remove the cgroups that gome processes which died (SIGKILL) left behind, killing anything still in them."""
    parents = [root] if version == "v2" else [root / c for c in V1_CONTROLLERS]
    for parent in parents:
        for d in (parent / "gome").glob("*-*-*") if (parent / "gome").is_dir() else ():
            pid = d.name.split("-", 1)[0]
            if not pid.isdigit() or alive(int(pid)):
                continue
            group = RunCgroup.__new__(RunCgroup)
            group.version, group.dirs = version, [d]
            group.kill()
            group.remove()


def alive(pid: int) -> bool:
    """Is the process that made a leftover (a cgroup, a quota image, a Ray run folder; named by its pid) still
    running? A zombie is not: its parent may be gone too (a killed Ray worker), and nobody may reap it soon."""
    if pid == os.getpid():  # this process's own leftovers, looked at by every run's sweep: no /proc read
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _write(path: Path, value: str, missing_ok: bool = False) -> None:
    try:  # as Path.write_text opens it, without a text file object (three times the write itself; a run makes ten)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError:
        if not missing_ok:
            raise

