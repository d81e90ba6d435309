"""Running scripts on a Ray cluster, behind the same Executor protocol.

Each script is a Ray task that asks for the run's CPUs, memory and GPUs. On the node that takes it, it runs in
the local sandbox chain (LocalExecutor: bubblewrap, cgroups, its own uid, rlimits, quota, as far as that node
allows), in a folder of its own that is removed afterwards. The public data travels once: the driver puts it in
Ray's object store, and each node unpacks it once into a read-only cache keyed by its content. The files gome
asked for come back as bytes under their caps and are written by the driver into its own folder. A node that
dies mid-script is that step's recorded error, not the run's end: a script is never re-run behind gome's back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import os
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

from gome.tools.files import read_bytes, remove_tree, write_bytes
from gome.tools.sandbox.cgroups import alive
from gome.tools.sandbox.executor import Collect, Limits, RunResult
from gome.tools.sandbox.local import MAX_SCRIPT_BYTES

NODE_SLOTS = 256  # concurrent scripts per node, each its own uid (isolation.SLOT_UID_BASE + NODE_UID_OFFSET + slot)
NODE_UID_OFFSET = 1000  # apart from the uids of a local gome on the same host
CELL_UID_OFFSET = 2000  # eval cells on a node: cell slot k's traces get uids from CELL_UID_OFFSET + 64 * k
GRACE_S = 300.0  # beyond the script's own limit: scheduling, data transfer, the sandbox's start and clean-up
POLL_S = 5.0  # how often a waiting driver checks that some live node can still run the script
CANCEL_GRACE_S = 10.0  # for a cancelled task to stop by itself before its worker is killed
NODE_WAIT_S = 60.0  # how long no live node may fit before the script is given up (a node may be restarting)
MAX_DATA_BYTES = 64 << 30
DATA_KEYS_KEPT = 4  # data folders a node keeps beyond those in use (most recently used first)


class RayUnavailable(RuntimeError):
    """Ray cannot be used: not installed, or the cluster cannot be reached. The message says what to do."""


def connect(address: str | None = None):
    """The `ray` module, connected to `address` (default: $RAY_ADDRESS, else a local cluster Ray starts)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the ray executor needs Ray: pip install 'gome[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        here = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", "local", here) and not address.startswith("ray://"):
            raise RayUnavailable(f"this process is already connected to the Ray cluster at {here}, not {address}")
        return ray
    _reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {e}") from None
    return ray


def _reachable(address: str | None, timeout_s: float = 10.0) -> None:
    """A host:port that does not answer fails in seconds here; Ray itself retries for minutes."""
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()  # [::1]:6379 too
    except OSError as e:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def pack(folder: Path | None) -> list[tuple[str, bytes]]:
    """A folder's regular files as (relative path, bytes): links and special files are left out (as e2b does)."""
    if folder is None:
        return []
    files, total = [], 0
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file() and not f.is_symlink():
            data = read_bytes(f, MAX_DATA_BYTES - total)
            total += len(data)
            files.append((f.relative_to(folder).as_posix(), data))
    return files


def unpack(files: list[tuple[str, bytes]], into: Path, mode: int = 0o444) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for rel, data in files:
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"refusing to unpack {rel!r} outside its folder")
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(into / rel, data, mode=mode)


class RayExecutor:
    """Scripts as Ray tasks. cpus: CPUs per script (default: the run's threads); memory_bytes: memory per script
    (Ray's memory resource, and the script's cgroup limit on its node); gpus: GPUs per script (Ray assigns them
    and the sandbox sees only those); resources: custom Ray resources per script (e.g. {"accelerator_type:A100":
    0.001}). sandbox: LocalExecutor settings on the nodes (pids, disk_bytes, ...).

    A script on a node must not reach the cluster: Ray's control plane has no authentication by default, and a
    script that reached it could run code as root on every node. So a node runs a script only in a chain that
    cuts it off the network (bubblewrap, no --allow-network), unless `weak_sandbox` accepts less (a cluster
    with Ray's token authentication on, a trusted network; GOME_RAY_WEAK_SANDBOX=1 from the CLI)."""

    isolation = "ray"

    def __init__(self, address: str | None = None, *, cpus: float | None = None, memory_bytes: int | None = None,
                 gpus: float = 0, resources: dict[str, float] | None = None, allow_network: bool = False,
                 sandbox: dict | None = None, weak_sandbox: bool = False):
        if (cpus is not None and cpus <= 0) or (memory_bytes is not None and memory_bytes <= 0) or gpus < 0:
            raise ValueError("Ray resources per script (CPUs, memory, GPUs) must be positive")
        if allow_network and not weak_sandbox:
            raise ValueError("--allow-network with --executor ray would let scripts reach the cluster's "
                             "control plane; set GOME_RAY_WEAK_SANDBOX=1 if the cluster authenticates (Ray's "
                             "token auth) or its network is trusted")
        self.ray = connect(address)
        self.cpus, self.memory_bytes, self.gpus, self.resources = cpus, memory_bytes, gpus, dict(resources or {})
        self.sandbox = {"allow_network": allow_network, "memory_bytes": memory_bytes, **(sandbox or {})}
        self.weak_sandbox = weak_sandbox
        self._data: dict[str, tuple[tuple, str, object]] = {}  # folder -> (its listing, content key, ObjectRef)
        self._data_lock = threading.Lock()  # traces start together: the data is packed and put once
        self._task = self.ray.remote(run_on_node)
        self._checked: set[str] = set()
        self.check(self.options(Limits(threads=1)))

    def check(self, opts: dict) -> None:
        """ValueError unless some live node has what one script asks for (Ray would wait for it forever)."""
        need = _need(opts)
        key = repr(sorted(need.items()))
        if key not in self._checked and not fits(self.ray, need):
            raise ValueError(f"no live node of the Ray cluster has what one script asks for: {need}")
        self._checked.add(key)

    def _data_ref(self, folder: Path) -> tuple[str, object]:
        """The public data's content key and object: put once per driver, while the folder is unchanged."""
        listing = tuple((str(f), s.st_size, s.st_mtime_ns) for f in sorted(folder.rglob("*"))
                        if (s := f.lstat()) and stat.S_ISREG(s.st_mode))
        with self._data_lock:
            return self._put(folder, listing)

    def _put(self, folder: Path, listing: tuple) -> tuple[str, object]:
        cached = self._data.get(str(folder))
        if cached and cached[0] == listing:
            return cached[1], cached[2]
        files = pack(folder)
        digest = hashlib.sha256()
        for rel, data in files:
            digest.update(f"{rel}\0{len(data)}\0".encode())
            digest.update(data)
        key, ref = digest.hexdigest()[:32], self.ray.put(files)
        self._data[str(folder)] = (listing, key, ref)
        return key, ref

    def options(self, limits: Limits) -> dict:
        """The Ray resources one script asks for."""
        opts = {"num_cpus": self.cpus or limits.threads, "num_gpus": self.gpus, "max_retries": 0,
                "scheduling_strategy": "SPREAD"}
        if self.memory_bytes:
            opts["memory"] = self.memory_bytes
        if self.resources:
            opts["resources"] = self.resources
        return opts

    def run(self, script: Path, workdir: Path, data_dir: Path, limits: Limits, env: dict[str, str] | None = None,
            collect: Collect | None = None, candidates: Path | None = None) -> RunResult:
        ray, start = self.ray, time.monotonic()
        opts = self.options(limits)
        try:
            self.check(opts)
        except ValueError as e:
            return _lost(start, "error", str(e))
        key, data = self._data_ref(Path(data_dir))
        job = {"name": Path(script).name, "code": read_bytes(script, MAX_SCRIPT_BYTES), "data_key": key,
               "candidates": pack(candidates) if candidates is not None else None,
               "limits": dataclasses.asdict(limits), "env": dict(env or {}),
               "caps": dict(collect.caps) if collect else {}, "sandbox": self.sandbox,
               "weak_sandbox": self.weak_sandbox}
        ref = self._task.options(**opts).remote(job, [data])  # nested: fetched only if not cached
        try:
            try:
                lost = self._wait(ref, limits, _need(opts))
            except BaseException:  # the driver is interrupted: its script must not run on unattended
                self._cancel(ref)
                raise
            if lost:
                self._cancel(ref)
                return _lost(start, *lost)
            reply = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # gome's own code failed on the node: say where and why
            return _lost(start, "error", f"the script's Ray task failed on its node: {e.cause!r}"[:2000])
        except ray.exceptions.RayError as e:  # the node or its worker died, the object was lost, ...
            return _lost(start, "error", f"the script's Ray node or worker was lost ({type(e).__name__}); the "
                                         f"script itself may be fine: {str(e)[:1500]}")
        result = RunResult(**reply["result"])
        for name, blob in reply["files"].items():
            if collect is not None and name in collect.caps and len(blob) <= collect.caps[name]:
                write_bytes(collect.into / name, blob)
            else:
                result.collected.remove(name)
                result.refused[name] = f"{name} came back over its cap or unasked"
        return result

    def _cancel(self, ref) -> None:
        """Stop the task: first as an interrupt, so that the node's sandbox kills the script and cleans its
        folder; then its worker process, if it has not ended within CANCEL_GRACE_S."""
        with contextlib.suppress(Exception):
            self.ray.cancel(ref)
            if not self.ray.wait([ref], timeout=CANCEL_GRACE_S)[0]:
                self.ray.cancel(ref, force=True)

    def _wait(self, ref, limits: Limits, need: dict) -> tuple[str, str] | None:
        """Wait for the task; (status, why) when it must be given up: past its time, or no live node left that
        could run it for NODE_WAIT_S (its node died before it started, and no other fits)."""
        deadline, unfit_since = time.monotonic() + limits.timeout_s + GRACE_S, None
        while not self.ray.wait([ref], timeout=min(POLL_S, max(deadline - time.monotonic(), 0)))[0]:
            now = time.monotonic()
            if now >= deadline:
                return "timeout", (f"the Ray task did not end within {limits.timeout_s + GRACE_S:g} s (queued for a "
                                   f"node, or running)")
            if fits(self.ray, need):
                unfit_since = None
            elif unfit_since is None:
                unfit_since = now
            elif now - unfit_since >= NODE_WAIT_S:
                return "error", f"no live node of the Ray cluster has what the script asks for ({need}) any more"
        return None


def _need(opts: dict) -> dict[str, float]:
    need = {"CPU": opts["num_cpus"], "GPU": opts["num_gpus"], "memory": opts.get("memory", 0),
            **opts.get("resources", {})}
    return {k: v for k, v in need.items() if v}


def _lost(start: float, status: str, detail: str) -> RunResult:
    return RunResult(status=status, returncode=None, runtime_s=round(time.monotonic() - start, 3), stdout="",
                     stderr=f"gome: {detail}", detail=detail, isolation="ray")


# --- on the node -----------------------------------------------------------------------------------------------

_executors: dict[tuple, object] = {}  # per worker process: one LocalExecutor per (slot, settings)


def node_root() -> Path:
    """gome's folder on a node: root-owned, not a link, traversable but not listable by the scripts' uids."""
    root = Path(tempfile.gettempdir()) / f"gome-ray-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{root} is not a folder of gome's own (a link, another owner, or writable by others)")
    return root


@contextlib.contextmanager
def node_data(key: str, ref_box: list, root: Path, keep: int | None = None):
    """The public data on this node, unpacked once per content key (read-only), held (a shared flock) while the
    block runs: a folder in use is never evicted. It is unpacked beside its place, under the key's exclusive
    lock, and renamed into it: a folder in its place is complete. Beyond the `keep` most recently used keys,
    folders no script holds are removed (data of old tasks would fill the node's /tmp, often RAM)."""
    data = root / "data"
    data.mkdir(mode=0o755, exist_ok=True)
    folder = data / key
    with open(data / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        if not folder.is_dir():
            fcntl.flock(lock, fcntl.LOCK_EX)  # no script holds a key whose folder is missing: this waits little
            if not folder.is_dir():
                import ray

                staging = data / f"{key}.part"
                remove_tree(staging)
                unpack(ray.get(ref_box[0]), staging)
                for d in (*(p for p in staging.rglob("*") if p.is_dir()), staging):
                    d.chmod(0o555)  # the scripts of this node read it; none may change it for the next
                staging.rename(folder)
            fcntl.flock(lock, fcntl.LOCK_SH)
        os.utime(lock.fileno())  # most recently used
        evict(data, keep or DATA_KEYS_KEPT)
        yield folder


def evict(data: Path, keep: int) -> None:
    """Remove the data folders beyond the `keep` most recently used that no script holds (never waits)."""
    locks = sorted(data.glob("*.lock"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in locks[keep:]:
        with open(path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # in use
                continue
            with contextlib.suppress(OSError):
                remove_tree(data / path.stem)


@contextlib.contextmanager
def node_slot(root: Path, kind: str = "slots"):
    """A slot of this node no other worker holds (flock): its number gives the script (or the cell) uids of its
    own. The lock goes with the process, however it ends."""
    (root / kind).mkdir(mode=0o700, exist_ok=True)
    for slot in range(NODE_SLOTS):
        f = open(root / kind / str(slot), "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        try:
            yield slot
        finally:
            f.close()
        return
    raise RuntimeError(f"more than {NODE_SLOTS} gome {kind} at once on this node")


def sweep_runs(root: Path) -> None:
    """Remove the run folders of workers that died (a node's worker killed mid-script leaves its folder)."""
    for d in root.glob("run-*-*"):
        pid = d.name.split("-")[1]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(OSError):
                remove_tree(d)


def too_weak(executor, weak_ok: bool) -> str | None:
    """Why this node's sandbox may not run scripts of a Ray cluster (None: it may): it must cut them off the
    network, or the cluster's unauthenticated control plane is theirs."""
    if weak_ok or (executor.iso.bwrap and not executor.allow_network):
        return None
    return (f"this node's sandbox ({executor.isolation}) does not cut scripts off the network, so a script could "
            f"reach the Ray cluster's control plane: install bubblewrap on the node (gome doctor says what is "
            f"missing), or set GOME_RAY_WEAK_SANDBOX=1 if the cluster authenticates")


def weak_ok() -> bool:
    return os.environ.get("GOME_RAY_WEAK_SANDBOX") == "1"


@functools.cache  # per worker process, per CPU count: a node's size does not change under it
def node_share(ray, cpus: float) -> int:
    """A script's memory when none was asked for: the node's memory for tasks (Ray's own reckoning, which
    respects a container's limit) in proportion to the CPUs it was given (Ray places as many scripts on a node
    as its CPUs allow; each must not be allowed all of its memory)."""
    node = ray.get_runtime_context().get_node_id()
    have = next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node), {})
    memory = have.get("memory") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.7
    return int(memory * min(1.0, cpus / max(have.get("CPU") or os.cpu_count() or 1, 1)))


def fits(ray, need: dict[str, float]) -> bool:
    """Has some live node of the cluster what `need` asks for?"""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    return any(all(have.get(k, 0) >= v for k, v in need.items()) for have in nodes)


def run_on_node(job: dict, data: list) -> dict:
    """A Ray task: run one script in the local sandbox chain of this node and return its result and files."""
    root = node_root()
    sweep_runs(root)
    with node_data(job["data_key"], data, root) as data_dir:
        return _run_here(job, data_dir, root)


def _run_here(job: dict, data_dir: Path, root: Path) -> dict:
    import ray

    from gome.tools.sandbox.local import LocalExecutor

    context = ray.get_runtime_context()
    gpus = [str(g) for g in ray.get_gpu_ids()]
    cpus = context.get_assigned_resources().get("CPU") or 1.0
    settings = {**job["sandbox"], "cpus": cpus}
    settings["memory_bytes"] = settings.get("memory_bytes") or node_share(ray, cpus)
    with tempfile.TemporaryDirectory(prefix=f"run-{os.getpid()}-", dir=root, ignore_cleanup_errors=True) as tmp, \
            node_slot(root) as slot:
        key = (slot, tuple(gpus), repr(sorted(settings.items())))
        if key not in _executors:
            _executors[key] = LocalExecutor(slots=1, first_slot=NODE_UID_OFFSET + slot, gpus=gpus or None,
                                            **settings)
        executor = _executors[key]
        if (why := too_weak(executor, job["weak_sandbox"])) is not None:
            return {"result": dataclasses.asdict(RunResult(
                status="error", returncode=None, runtime_s=0.0, stdout="", stderr=f"gome: {why}", detail=why,
                isolation=executor.isolation, node=context.get_node_id())), "files": {}}
        tmp = Path(tmp)
        os.chmod(tmp, 0o711)
        candidates = None
        if job["candidates"] is not None:
            candidates = tmp / "candidates"
            unpack(job["candidates"], candidates)
        write_bytes(tmp / job["name"], job["code"])
        out = tmp / "out"
        out.mkdir(mode=0o700)
        result = executor.run(tmp / job["name"], tmp / "work", data_dir, Limits(**job["limits"]), env=job["env"],
                              collect=Collect(out, job["caps"]), candidates=candidates)
        files = {name: read_bytes(out / name, job["caps"][name]) for name in result.collected}
        with contextlib.suppress(OSError):  # a folder that will not go is swept later: the result stands
            remove_tree(tmp / "work")
    result.node = context.get_node_id()
    return {"result": dataclasses.asdict(result), "files": files}
