"""What isolation this machine allows, probed once, and the command line that applies it.

The strongest chain is:  sh (joins the run's cgroups) -> prlimit (file size, core, open files, CPU time) ->
bubblewrap (new pid, net, ipc, uts and mount namespaces: /usr and the Python install read-only, the public data
read-only at <root>/data, the script's folder writable at <root>/work, a size-capped tmpfs /tmp) -> setpriv (a
non-root uid per slot, no new privileges) -> python. The script's folder is an ext4 image of its own (quota: a
disk and inode quota), loop-mounted over the folder for the run. <root> is /gome unless the Python install lives
there: the sandbox's own mount points never hide a host path it needs.

Each link is probed by really running `python -c pass` through it; a missing one is dropped (one level weaker),
named in `Isolation.missing`, recorded in run.json and warned about once.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gome.tools.files import remove_tree
from gome.tools.sandbox import cgroups, quota

SLOT_UID_BASE = 61000  # slot i runs as uid/gid 61000 + i
SANDBOX_ROOTS = ("/gome", "/gome-sandbox", "/var/lib/gome-sandbox")  # the first that hides no needed host path
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
NET_ETC_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates")
GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


@dataclass(frozen=True)
class Isolation:
    bwrap: str | None = None
    cgroup: str | None = None  # "v1" or "v2"
    setpriv: str | None = None  # uid drop (root only)
    prlimit: str | None = None
    quota: bool = False  # a loop-mounted ext4 image per run: the script's disk and inode quota
    missing: tuple[str, ...] = field(default_factory=tuple)  # why each absent link is absent

    @property
    def level(self) -> str:
        parts = [p for p, on in (("bwrap", self.bwrap), (f"cgroup-{self.cgroup}", self.cgroup),
                                 ("uid", self.setpriv), ("rlimits", self.prlimit), ("quota", self.quota)) if on]
        return "+".join(parts) or "process-group"

    @property
    def full(self) -> bool:
        return not self.missing


def python_roots(python: str = sys.executable) -> list[str]:
    """Folders the interpreter and its packages live in (a venv and the Python it points at)."""
    return list(_python_roots(python))


@functools.lru_cache(maxsize=8)  # asked several times per launch; resolving walks the path a syscall per part
def _python_roots(python: str) -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, str(Path(python).resolve().parent.parent)}
    return tuple(sorted(r for r in roots if r and r != "/" and not r.startswith("/usr")))


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def sandbox_root(python: str = sys.executable) -> str:
    """Where the script's folder and the data appear inside the sandbox: a path that hides none of the host
    paths bound into it (a venv under /work, say, must not vanish behind the script's folder)."""
    needed = [*python_roots(python), "/usr", "/bin", "/lib", "/lib64", "/etc", "/tmp", "/proc", "/dev"]
    return next(r for r in SANDBOX_ROOTS if not any(_overlaps(r, n) for n in needed))


def sandbox_paths(python: str = sys.executable) -> tuple[str, str]:
    """(script folder, data folder) inside the sandbox."""
    root = sandbox_root(python)
    return f"{root}/work", f"{root}/data"


def sandbox_candidates(python: str = sys.executable) -> str:
    """Where earlier experiments' predictions appear (read-only) for a script that blends them."""
    return f"{sandbox_root(python)}/candidates"


def bwrap_args(bwrap: str, workdir: Path, data_dir: Path, *, allow_network: bool, tmp_bytes: int,
               gpus: list[str] | None = None, candidates: Path | None = None, python: str = sys.executable
               ) -> list[str]:
    system, tmp_and_python = _host_args(bwrap, tmp_bytes, python)
    etc = [a for f in ETC_FILES + (NET_ETC_FILES if allow_network else ()) if os.path.exists(f)
           for a in ("--ro-bind", f, f)]  # looked up at every launch: /etc/resolv.conf comes and goes
    args = [*system, *etc, *tmp_and_python]
    work, data = sandbox_paths(python)
    args += ["--perms", "0755", "--dir", str(Path(work).parent),  # traversable by the slot's uid
             "--ro-bind", str(data_dir), data, "--bind", str(workdir), work, "--chdir", work]
    if candidates is not None:
        args += ["--ro-bind", str(candidates), sandbox_candidates(python)]
    if not allow_network:
        args.append("--unshare-net")
    for gpu in gpus or []:
        for dev in (f"/dev/nvidia{gpu}", *GPU_DEVICES):
            if os.path.exists(dev):
                args += ["--dev-bind", dev, dev]
    return [*args, "--"]


@functools.lru_cache(maxsize=8)
def _host_args(bwrap: str, tmp_bytes: int, python: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What every sandbox of this process binds from the host, looked up once (a few dozen stats a launch
    otherwise): (the system folders, then a fresh /tmp and the Python)."""
    system = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
              "--new-session", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / name
        if p.is_symlink():
            system += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            system += ["--ro-bind", str(p), str(p)]
    # /tmp before the Python binds: a venv under /tmp must be mounted on top of the tmpfs, not hidden by it.
    args = ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
            "--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/tmp"}
    for root in python_roots(python):
        for parent in reversed(Path(root).parents[:-1]):  # traversable parents even where the host's are 0700
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", root, root]
    return tuple(system), tuple(args)


def setpriv_args(setpriv: str, uid: int) -> list[str]:
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]


def prlimit_args(prlimit: str, *, file_bytes: int, cpu_seconds: int, nofile: int = 4096) -> list[str]:
    return [prlimit, f"--fsize={file_bytes}", "--core=0", f"--nofile={nofile}", f"--cpu={cpu_seconds}", "--"]


def join_cgroups_args(procs_files: list[str]) -> list[str]:
    """`sh -c` that moves itself into the run's cgroups, then execs the rest of the chain: only if it joined every
    one of them (a script must not run without one of its limits)."""
    writes = " && ".join(f"echo $$ > {shlex.quote(f)}" for f in procs_files)
    return ["/bin/sh", "-c", f'{writes} && exec "$@"', "gome-sandbox"]


def _works(argv: list[str], timeout: float = 20) -> tuple[bool, str]:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{type(e).__name__}: {e}"
    detail = (out.stderr or out.stdout).decode(errors="replace").strip().splitlines()
    return out.returncode == 0, (detail[-1] if detail else f"exit {out.returncode}")


@functools.lru_cache(maxsize=4)
def probe(python: str = sys.executable,
          allowed: tuple[str, ...] = ("bwrap", "cgroup", "uid", "rlimits", "quota")) -> Isolation:
    """Find, by running `python -c pass` through each link, the strongest chain this machine allows."""
    missing: list[str] = []
    found: dict = {"bwrap": None, "cgroup": None, "setpriv": None, "prlimit": None, "quota": False}
    scratch = Path(tempfile.mkdtemp(prefix="gome-probe-"))  # fresh and ours: never a folder someone made first
    try:
        if "bwrap" in allowed:
            bwrap = shutil.which("bwrap")
            if not bwrap:
                missing.append("bwrap: not installed (Debian package `bubblewrap`)")
            else:
                ok, why = _works([*bwrap_args(bwrap, scratch, scratch, allow_network=False, tmp_bytes=1 << 20),
                                  python, "-c", "pass"])
                found["bwrap"] = bwrap if ok else None
                if not ok:
                    missing.append(f"bwrap: installed but cannot create namespaces here ({why})")
        if "cgroup" in allowed:
            found["cgroup"] = cgroups.detect()
            if not found["cgroup"]:
                missing.append("cgroup: no writable memory+pids+cpu controllers (v2 or v1); run as root?")
        if "uid" in allowed:
            setpriv = shutil.which("setpriv")
            if os.geteuid() != 0:
                missing.append("uid: not root, so scripts run as the current user")
            elif not found["bwrap"]:  # without our own mount tree, 0700 parents (/root, mkdtemp) lock the uid out
                missing.append("uid: needs bubblewrap, to give the script a tree its uid can read")
            elif not setpriv:
                missing.append("uid: setpriv (util-linux) not found")
            else:
                os.chmod(scratch, 0o777)
                prefix = bwrap_args(found["bwrap"], scratch, scratch, allow_network=False, tmp_bytes=1 << 20)
                (scratch / "probe.py").write_text("open('probe.py').read()\n")  # reads its own folder
                ok, why = _works([*prefix, *setpriv_args(setpriv, SLOT_UID_BASE), python, "probe.py"])
                found["setpriv"] = setpriv if ok else None
                if not ok:
                    missing.append(f"uid: Python is not usable by uid {SLOT_UID_BASE} inside the sandbox ({why})")
        if "rlimits" in allowed:
            found["prlimit"] = shutil.which("prlimit")
            if not found["prlimit"]:
                missing.append("rlimits: prlimit (util-linux) not found")
        if "quota" in allowed:
            found["quota"], why = quota.works(scratch)
            if not found["quota"]:
                missing.append(f"quota: cannot loop-mount a disk image for the script's folder ({why})")
    finally:
        remove_tree(scratch)
    return Isolation(bwrap=found["bwrap"], cgroup=found["cgroup"], setpriv=found["setpriv"],
                     prlimit=found["prlimit"], quota=found["quota"], missing=tuple(missing))
