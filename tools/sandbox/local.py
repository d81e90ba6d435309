"""The local sandbox: the strongest isolation chain the machine allows, a wall-clock limit that kills every
process of the run, output capped in memory, an environment built from an allow-list, and a thread cap.

With bubblewrap, cgroups, a non-root uid and a quota (see gome.tools.sandbox.isolation) a script sees only /usr, the
Python install, the public data (read-only) and its own folder, an image of its own size; it has no network, a
capped /tmp, and its memory, processes, CPU, disk and inodes are limited. Without them it falls back one level at
a time (recorded, warned once); the last level is a process group in its own session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from gome.tools.files import read_bytes, write_bytes
from gome.tools.sandbox import cgroups
from gome.tools.sandbox.cgroups import CgroupLimits, RunCgroup
from gome.tools.sandbox.executor import Collect, Limits, RunResult, collect_files
from gome.tools.sandbox.isolation import (
    SLOT_UID_BASE,
    Isolation,
    bwrap_args,
    join_cgroups_args,
    prlimit_args,
    probe,
    sandbox_candidates,
    sandbox_paths,
    setpriv_args,
)
from gome.tools.sandbox.quota import quota_mount

log = logging.getLogger("gome")

# The only host variables a script sees: nothing here can carry a secret (a deny-list of names misses
# DATABASE_URL with its password, SENTRY_DSN, a proxy URL with credentials...).
HOST_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
MAX_SCRIPT_BYTES = 1 << 20
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
OOM_MARKERS = ("MemoryError", "CUDA out of memory", "Cannot allocate memory", "std::bad_alloc")
READ_BYTES = 65536
DRAIN_S = 5.0  # after the kill, what is left in the pipes is read for at most this long (an escaped writer)


def sandbox_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A script's environment: a few harmless host variables (HOST_ENV), thread caps, and what gome passes."""
    env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env.update({k: str(threads) for k in THREAD_VARS})
    env["LOKY_MAX_CPU_COUNT"] = str(threads)  # joblib's own count fails inside the sandbox (no physical cores seen)
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


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalExecutor:
    """Runs `python script` with the strongest isolation the machine allows (see gome.tools.sandbox.isolation).

    slots: how many runs may go at once; each gets uid SLOT_UID_BASE + slot, 1/slots of the CPUs and of the
    memory budget, and (with `gpus`) its share of them as CUDA_VISIBLE_DEVICES: every slots-th GPU, or one GPU
    shared round-robin when there are fewer GPUs than slots. A run waits for a free slot.
    disk_bytes, inodes: the script folder's quota (never more than half the free disk, shared by the slots).
    isolation: "auto" (strongest available), "none" (a process group only: tests and debugging), or an
    Isolation from gome.tools.sandbox.isolation.probe(allowed=...) to pick links. first_slot: the first slot's
    number, for executors of several processes on one host that must not share a uid (Ray workers).
    """

    def __init__(self, python: str | None = None, *, slots: int = 1, isolation: str | Isolation = "auto",
                 memory_bytes: int | None = None, pids: int = 512, cpus: float | None = None,
                 allow_network: bool = False, tmp_bytes: int = 1 << 30, file_bytes: int = 8 << 30,
                 disk_bytes: int = 16 << 30, inodes: int = 1_000_000, gpus: list[str] | None = None,
                 first_slot: int = 0):
        self.python = python or sys.executable
        self.slots = max(1, slots)
        if isinstance(isolation, Isolation):
            self.iso = isolation
        else:
            self.iso = probe(self.python) if isolation == "auto" else Isolation(missing=("isolation turned off",))
        total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.memory_bytes = memory_bytes or int(total_memory * 0.8 / self.slots)
        self.cpus = cpus or max((os.cpu_count() or 1) / self.slots, 0.5)
        if min(self.memory_bytes, pids, self.cpus, tmp_bytes, file_bytes, disk_bytes, inodes) <= 0:
            raise ValueError("sandbox limits (memory, processes, CPUs, disk, inodes) must be positive")
        self.pids, self.allow_network, self.tmp_bytes, self.file_bytes = pids, allow_network, tmp_bytes, file_bytes
        self.disk_bytes, self.inodes = disk_bytes, inodes
        self.gpus = gpus or []
        self.first_slot = first_slot
        self._free = list(range(first_slot, first_slot + self.slots))
        self._cond = threading.Condition()
        if self.iso.cgroup:
            cgroups.sweep(self.iso.cgroup)  # what gome processes killed mid-run left behind
        if not self.iso.full:
            _warn_once(self.iso)

    @property
    def isolation(self) -> str:
        return self.iso.level

    def _acquire(self) -> int:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop(0)

    def _release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify()

    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None,
            collect: Collect | None = None, candidates: Path | None = None) -> RunResult:
        script, workdir = Path(script), Path(workdir)
        code = read_bytes(script, MAX_SCRIPT_BYTES)  # before anything is mounted over the folder
        slot = self._acquire()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            uid = SLOT_UID_BASE + slot if self.iso.setpriv else None
            with self._space(workdir, uid):
                write_bytes(workdir / script.name, code)
                if uid is not None:
                    os.chown(workdir, uid, uid)
                result = self._run(slot, workdir / script.name, workdir, Path(data_dir), limits, env or {},
                                   candidates)
                result.collected, result.refused = collect_files(workdir, collect)
                result.artifacts = sorted(e.name for e in os.scandir(workdir) if e.is_file(follow_symlinks=False))
            return result
        finally:
            self._release(slot)

    def _gpus_of(self, slot: int) -> list[str]:
        i = slot - self.first_slot
        if len(self.gpus) >= self.slots:
            return self.gpus[i::self.slots]
        return [self.gpus[i % len(self.gpus)]] if self.gpus else []

    def _space(self, workdir: Path, uid: int | None):
        """The script's folder: an image of its own size and inode count (quota), or the folder as it is."""
        if not self.iso.quota:
            return contextlib.nullcontext()
        return quota_mount(workdir, size=self.disk_bytes, share=0.5 / self.slots, inodes=self.inodes, uid=uid)

    def _command(self, slot: int, script: Path, workdir: Path, data_dir: Path, limits: Limits,
                 cgroup: RunCgroup | None, candidates: Path | None = None) -> tuple[list[str], dict[str, str]]:
        iso, uid = self.iso, SLOT_UID_BASE + slot
        inside = {"GOME_DATA_DIR": str(data_dir), "HOME": str(workdir)}
        if candidates is not None:
            inside["GOME_CANDIDATES_DIR"] = str(candidates)
        argv = [self.python, script.name if iso.bwrap else str(script)]
        if iso.setpriv:
            argv = [*setpriv_args(iso.setpriv, uid), *argv]
        if iso.bwrap:
            gpus = self._gpus_of(slot) or None
            argv = [*bwrap_args(iso.bwrap, workdir, data_dir, allow_network=self.allow_network,
                                tmp_bytes=self.tmp_bytes, gpus=gpus, candidates=candidates, python=self.python),
                    *argv]
            inside = {"GOME_DATA_DIR": sandbox_paths(self.python)[1], "HOME": "/tmp", "TMPDIR": "/tmp"}
            if candidates is not None:
                inside["GOME_CANDIDATES_DIR"] = sandbox_candidates(self.python)
        if iso.prlimit:
            cpu_seconds = int(limits.timeout_s * max(self.cpus, 1) + 60)
            argv = [*prlimit_args(iso.prlimit, file_bytes=self.file_bytes, cpu_seconds=cpu_seconds), *argv]
        if cgroup is not None:
            argv = [*join_cgroups_args(cgroup.procs_files()), *argv]
        if self.gpus:
            inside["CUDA_VISIBLE_DEVICES"] = ",".join(self._gpus_of(slot))
        return argv, inside

    def _run(self, slot: int, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str],
             candidates: Path | None = None) -> RunResult:
        cgroup = None
        if self.iso.cgroup:
            cgroup = RunCgroup(f"{os.getpid()}-{slot}-{secrets.token_hex(4)}",
                               CgroupLimits(self.memory_bytes, self.pids, self.cpus), self.iso.cgroup)
        out, err = CappedBuffer(limits.max_output_bytes), CappedBuffer(limits.max_output_bytes)
        proc = None
        try:
            if cgroup is not None:
                cgroup.create()
            argv, inside = self._command(slot, script, workdir, data_dir, limits, cgroup, candidates)
            start = time.monotonic()
            try:
                with _interrupts_held():  # until this try's finally covers the script
                    proc = subprocess.Popen(
                        argv, cwd=workdir, env=sandbox_env(limits.threads, {**env, **inside}), start_new_session=True,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                outputs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
                timed_out = not _watch(proc, outputs, limits.timeout_s)
            finally:
                if proc is not None:
                    # Everything the script started dies with the run: its group, and with a cgroup every process
                    # in it (setsid escapes a group kill, not a cgroup).
                    _kill_group(proc.pid)
                    proc.wait()  # reaped first: a cgroup lists its zombie until then, and the kill would wait on it
                    if cgroup is not None:
                        cgroup.kill()
            runtime = time.monotonic() - start
            _drain(outputs, DRAIN_S)
            oom = cgroup.oom_killed() if cgroup is not None else False
        finally:
            if proc is not None:  # a writer that escaped every kill gets SIGPIPE
                proc.stdout.close()
                proc.stderr.close()
            if cgroup is not None:
                cgroup.kill()
                cgroup.remove()
        status, detail = _classify(proc.returncode, timed_out, err.text(), limits, oom)
        return RunResult(
            status=status, returncode=proc.returncode, runtime_s=round(runtime, 3), stdout=out.text(),
            stderr=err.text(), stdout_bytes=out.total, stderr_bytes=err.total, detail=detail,
            isolation=self.iso.level)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """A Ctrl-C that comes while the script starts is raised when it has started, inside the caller's try that
    kills it: raised in between (a single trace's nodes run in the main thread, where Python raises it), it left
    the script running. Elsewhere (another thread, a handler of the application's) nothing changes."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if held:  # even when the start failed: the user asked to stop
            raise KeyboardInterrupt


def _watch(proc: subprocess.Popen, outputs: dict[int, CappedBuffer], timeout_s: float) -> bool:
    """Read the script's output as it comes and wait for it to end, in this thread (no reader threads to start
    for every run); False on time-out. Linux wakes us the moment it ends (a pidfd: Popen.wait(timeout) polls with
    sleeps of up to 50 ms, which a short run pays in full); without a pidfd, it is looked at every 50 ms."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # an old kernel, not Linux
        pidfd = None
    poller = select.poll()
    for fd in outputs:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    try:
        while pidfd is not None or proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # In slices of a second at most: an interrupt (Ctrl-C, a Ray task cancelled) is seen between them, and
            # the caller's finally kills the script.
            for fd, _ in poller.poll(min(left, 1.0 if pidfd is not None else 0.05) * 1000):
                if fd == pidfd:
                    return True
                if not _read(fd, outputs):
                    poller.unregister(fd)
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _drain(outputs: dict[int, CappedBuffer], within_s: float) -> None:
    """Read what is left in the pipes until both end (every writer is gone after the kill), for at most
    `within_s`: a process that escaped the kill (no cgroup, and it left the script's group) may hold them open."""
    poller = select.poll()
    left_open = set(outputs)
    for fd in left_open:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + within_s
    while left_open and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            if not _read(fd, outputs):
                poller.unregister(fd)
                left_open.discard(fd)


def _read(fd: int, outputs: dict[int, CappedBuffer]) -> bool:
    """Take what is waiting in a pipe; False at its end."""
    try:
        chunk = os.read(fd, READ_BYTES)
    except BlockingIOError:  # woken, then nothing to read after all
        return True
    if chunk:
        outputs[fd].feed(chunk)
    return bool(chunk)


_warned: set[str] = set()


def _warn_once(iso: Isolation) -> None:
    if iso.level not in _warned:
        _warned.add(iso.level)
        log.warning("gome: scripts run with isolation %s, weaker than the full chain: %s", iso.level,
                    "; ".join(iso.missing))


def _classify(rc: int, timed_out: bool, stderr: str, limits: Limits, oom: bool = False) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"killed after the {limits.timeout_s:g} s wall-clock limit"
    tail = stderr[-4000:]
    if oom:
        return "oom", "killed by the memory limit of its cgroup"
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
