"""A disk and inode quota for a script's folder: a fresh ext4 image, loop-mounted over the folder for one run.

The script can fill its own image and nothing else: the host's disk loses at most the image's size (a sparse
file, so only what is written), and its inodes are the image's. After the run gome copies out what it asked
for, unmounts and deletes the image. The inode tables are not zeroed (`noinit_itable`), and the next run's image
is formatted, attached to a loop device and mounted at a stage beside it (and the last one unmounted, detached
and deleted) in the background while a script runs, so a launch pays only a bind mount of the staged image over
the folder and its unmount: no program, no file system to mount or flush, no disk writes beyond the script's.

Images live in their own root-only folder (GOME_QUOTA_DIR, default /var/lib/gome/quota), never in a run folder
(a sparse file of gigabytes is a trap for anything that copies the run) and never in a folder another user could
have made first (mkfs and mount take a path: a link planted there would aim them at any file or device). The
images of all gome processes share that folder, so each new image is sized against what the live ones may still
grow to. A gome killed mid-run leaves its image mounted; the next gome that mounts one detaches and deletes the
images of dead processes.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import fcntl
import functools
import os
import secrets
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from gome.tools.files import mount_point, mounts_below
from gome.tools.sandbox.cgroups import alive

MIN_BYTES = 8 << 20
TIMEOUT_S = 120
RELEASE_AFTER_S = 2.0  # a used image waits at most this long for the next run's start to release it
MS_NOSUID, MS_NODEV, MS_BIND, MNT_DETACH = 2, 4, 4096, 2
_libc = ctypes.CDLL(None, use_errno=True)


class QuotaError(RuntimeError):
    """The image could not be made or mounted."""


@functools.lru_cache(maxsize=64)
def _which(tool: str, path: str | None) -> str | None:
    return shutil.which(tool, path=path) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")


def tools() -> tuple[str, str, str, str] | None:
    """(mkfs.ext4, mount, umount, losetup) when all are installed."""
    path = os.environ.get("PATH")  # looked up once per PATH: a run asks several times per script
    found = tuple(_which(t, path) for t in ("mkfs.ext4", "mount", "umount", "losetup"))
    return found if all(found) else None  # type: ignore[return-value]


def image_dir() -> Path:
    """The images' folder: made by this uid, mode 0700, not a link; anything else is refused."""
    path = Path(os.environ.get("GOME_QUOTA_DIR", "/var/lib/gome/quota"))
    try:
        info = path.lstat()  # checked at every run: made once, so look before making
    except FileNotFoundError:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise QuotaError(f"{path} must be a folder of uid {os.geteuid()} with mode 0700 (it is not): refusing to "
                         "make disk images there")
    return path


def _run(argv: list[str]) -> str:
    """Run a tool; its stdout, or QuotaError with its complaint."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                             timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise QuotaError(f"{Path(argv[0]).name} did not finish in {TIMEOUT_S} s") from None
    if out.returncode != 0:
        raise QuotaError(f"{Path(argv[0]).name} failed: {(out.stderr or out.stdout)[-300:]}")
    return out.stdout.strip()


def size_for(wanted: int, share: float = 0.5) -> int:
    """The image size: what was asked, but never more than `share` of the free space where images live, less
    what the live images (this process's and others') may still grow to."""
    folder = image_dir()
    st = os.statvfs(folder)
    promised = 0
    for image in folder.glob("*.img"):
        with contextlib.suppress(OSError):
            info = image.stat()
            promised += max(info.st_size - info.st_blocks * 512, 0)
    free = st.f_bavail * st.f_frsize - promised
    return max(MIN_BYTES, min(wanted, int(free * share)))


def _dead(image: Path) -> bool:
    pid = image.name.split("-", 1)[0]
    return pid.isdigit() and not alive(int(pid))


@contextlib.contextmanager
def _devices_lock(folder: Path) -> Iterator[None]:
    """Held, by every gome using `folder`, while loop devices are looked up and attached or detached. Loop device
    names are reused: without it, two gomes sweeping one dead image could each detach "/dev/loopN", the second
    after a third gome had attached its own new image there."""
    fd = os.open(folder / ".devices.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def sweep(folder: Path) -> None:
    """Detach and delete the images of gome processes that died (killed mid-run: their image stays mounted over
    a script folder until someone detaches it)."""
    found = tools()
    if not found:
        return
    with os.scandir(folder) as entries:  # at every run: scandir, not a glob (a glob cost 0.2 ms a run)
        dead = [image for e in entries if e.name.endswith(".img") and _dead(image := Path(e.path))]
    if not dead:
        return
    with _devices_lock(folder):
        for image in dead:
            _sweep_one(image, *found[2:])


def _sweep_one(image: Path, umount: str, losetup: str) -> None:
    if not image.exists():  # another gome swept it first
        return
    held = subprocess.run([losetup, "-j", str(image)], capture_output=True, text=True, check=False)
    for line in held.stdout.splitlines():  # "/dev/loop3: []: (/var/lib/gome/quota/123-ab.img)"
        device = line.split(":", 1)[0]
        for point in _mount_points_of(device):
            subprocess.run([umount, "-l", point], capture_output=True, check=False)
        subprocess.run([losetup, "-d", device], capture_output=True, check=False)
    again = subprocess.run([losetup, "-j", str(image)], capture_output=True, text=True, check=False)
    if again.returncode == 0 and not again.stdout.strip():
        with contextlib.suppress(OSError):
            _stage(image).rmdir()
        with contextlib.suppress(OSError):
            image.unlink()


def _mount_points_of(device: str) -> list[str]:
    points = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            source = fields[fields.index("-") + 2] if "-" in fields else ""
            if source == device:
                points.append(mount_point(line))
    return points


def _stage(image: Path) -> Path:
    """Where an image is mounted ahead of its run: beside it, in the root-only folder no script can reach."""
    return image.with_suffix(".mnt")


def _make_image(images: Path, size: int, inodes: int, uid: int | None, share: float | None = None
                ) -> tuple[Path, str]:
    """A formatted ext4 image of `size` bytes (with `share`: size_for(size, share)) and at most `inodes` files,
    root owned by `uid`, attached to a free loop device and mounted at its stage (mounting ext4 takes
    milliseconds; a bind of the mounted image, one cheap system call, is what the run's launch pays):
    (image, device)."""
    mkfs, _, _, losetup = tools()  # type: ignore[misc]
    if share is not None:
        size = size_for(size, share)
    image = images / f"{os.getpid()}-{secrets.token_hex(6)}.img"
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    device = None
    try:
        extended = f"root_owner={uid}:{uid},nodiscard" if uid is not None else "nodiscard"
        n = min(inodes, max(128, size // 8192))  # ext4 refuses more inodes than the size can hold
        _run([mkfs, "-q", "-F", "-N", str(n), "-m", "0", "-O", "^has_journal", "-E", extended, str(image)])
        with _devices_lock(images):  # attached and mounted before a sweep can look a device name up
            device = _run([losetup, "--find", "--show", "--nooverlap", str(image)])
            if not device.startswith("/dev/loop"):
                raise QuotaError(f"losetup named no loop device: {device[-300:]!r}")
            _stage(image).mkdir(mode=0o700)
            _mount(device, _stage(image))
        with contextlib.suppress(OSError):
            (_stage(image) / "lost+found").rmdir()
        return image, device
    except BaseException:
        _release(image, device if device and device.startswith("/dev/loop") else None)
        raise


def _release(image: Path, device: str | None) -> None:
    """Unmount the image's stage, detach `device` (if it still holds `image`) and delete the image."""
    stage = _stage(image)
    if os.path.ismount(stage):
        with contextlib.suppress(QuotaError):
            _umount(stage)
    with contextlib.suppress(OSError):
        stage.rmdir()
    if device:
        losetup = tools()[3]  # type: ignore[index]
        with _devices_lock(image.parent):
            held = subprocess.run([losetup, "-j", str(image)], capture_output=True, text=True, check=False).stdout
            if held.startswith(f"{device}:"):
                subprocess.run([losetup, "-d", device], capture_output=True, check=False)
    with contextlib.suppress(FileNotFoundError):
        image.unlink()


def _mount(device: str, folder: Path) -> None:
    if _libc.mount(device.encode(), os.fsencode(folder), b"ext4", MS_NOSUID | MS_NODEV, b"noinit_itable") != 0:
        raise QuotaError(f"mounting {device} on {folder} failed: {os.strerror(ctypes.get_errno())}")


def _bind(stage: Path, folder: Path) -> None:
    """The staged image over `folder`: a bind keeps the stage's nosuid and nodev."""
    if _libc.mount(os.fsencode(stage), os.fsencode(folder), None, MS_BIND, None) != 0:
        raise QuotaError(f"binding {stage} on {folder} failed: {os.strerror(ctypes.get_errno())}")


def _umount(folder: Path) -> None:
    """Unmount; a process still holding a file (none should, after the cgroup kill) gets a lazy detach."""
    if _libc.umount2(os.fsencode(folder), 0) != 0 and _libc.umount2(os.fsencode(folder), MNT_DETACH) != 0:
        raise QuotaError(f"unmounting {folder} failed: {os.strerror(ctypes.get_errno())}")


class _Spares:
    """One image made ahead (formatted and attached), per shape, in the background while a script runs: that is
    then off the path of the next run's launch, and so is releasing a used image. A used image is released when
    the next run starts, not when its own ends: between two runs gome scores, judges and checkpoints, and the
    release's umount, two losetup processes and the unlink took the cores from it. It waits at most
    RELEASE_AFTER_S: an image holds what its script wrote, disk that the next spare's size reckons with."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ready: dict[tuple, concurrent.futures.Future] = {}
        self.used: list[tuple[Path, str | None]] = []  # released at the next take (or settle, or exit)
        self.timer: threading.Timer | None = None
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gome-quota")

    def take(self, images: Path, size: int, inodes: int, uid: int | None, share: float | None = None
             ) -> tuple[Path, str]:
        """The spare of this shape (made ahead), else one made now; and the next run's spare is started. The shape
        is what was asked (a wanted size and its share), not the size it came to: free space and the images it
        reckons with change from run to run, and a key on the exact size would never find its spare."""
        key = (str(images), size, inodes, uid, share)
        with self.lock:
            spare = self.ready.pop(key, None)
            for other in [k for k in self.ready if k[0] == key[0] and k[3] == uid]:  # a shape no longer asked for
                self.ready.pop(other).add_done_callback(lambda f: f.exception() or self.release(*f.result()))
        self.flush()  # before the next spare is made: its size reckons with the free space
        with self.lock:
            self.ready[key] = self.pool.submit(_make_image, images, size, inodes, uid, share)  # the next run's
        if spare is not None:
            with contextlib.suppress(Exception):  # a spare that failed or was swept: make one now
                image, device = spare.result(timeout=TIMEOUT_S)
                if image.is_file() and _attached(device, image) and os.path.ismount(_stage(image)):
                    return image, device
                self.release(image, device)
        return _make_image(images, size, inodes, uid, share)

    def discard(self, image: Path, device: str | None) -> None:
        """A used image: released in the background when the next run starts, or RELEASE_AFTER_S from now at the
        latest."""
        with self.lock:
            self.used.append((image, device))
            # A timer already set fires sooner: runs that follow each other quickly start a thread every
            # RELEASE_AFTER_S, not one each.
            if self.timer is None:
                timer = threading.Timer(RELEASE_AFTER_S, self._when_due)
                timer.daemon = True
                timer.start()
                self.timer = timer  # once started: one that failed to start must not stand in for a working one

    def _when_due(self) -> None:
        with self.lock:
            if self.timer is threading.current_thread():  # not a newer one (close may have dropped this one)
                self.timer = None  # before the flush: an image discarded from here on sets a timer of its own
        self.flush()

    def flush(self) -> None:
        """Release the used images now (in the background)."""
        with self.lock:
            used, self.used = self.used, []
        for image, device in used:
            self.release(image, device)

    def release(self, image: Path, device: str | None) -> None:
        try:
            self.pool.submit(_release, image, device)
        except RuntimeError:  # the interpreter is exiting and the pool takes no more work: release it here
            _release(image, device)

    def settle(self) -> None:
        """Release the used images and wait until the background work queued so far is done (tests, and a clean
        exit)."""
        self.flush()
        self.pool.submit(lambda: None).result()

    def close(self) -> None:
        """Release the spares made ahead and the used images (at exit: a loop device is not left attached to an
        unused image)."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()  # released here, not by a daemon thread the interpreter may stop mid-way
                self.timer = None
            ready, self.ready = list(self.ready.values()), {}
        for future in ready:
            with contextlib.suppress(Exception):
                _release(*future.result(timeout=TIMEOUT_S))
        with contextlib.suppress(RuntimeError):  # at exit the pool has already finished its queue and shut down
            self.settle()


def _attached(device: str, image: Path) -> bool:
    """Is `device` still the loop device of `image` (a sweep by another gome may have detached it)?"""
    try:
        backing = Path(f"/sys/block/{Path(device).name}/loop/backing_file").read_text().strip()
    except OSError:
        return False
    return backing == os.path.realpath(image)


_spares = _Spares()
atexit.register(_spares.close)


@contextlib.contextmanager
def quota_mount(folder: Path, *, size: int, inodes: int, uid: int | None = None,
                share: float | None = None) -> Iterator[Path]:
    """Mount a fresh ext4 image of `size` bytes and at most `inodes` files over `folder` (owned by `uid`) for
    the duration of the block. The image lives in image_dir(), where the script cannot reach it; it was never
    mounted before (a script's files never reach another run). share: `size` is what is wanted, and the image
    gets size_for(size, share), reckoned when it is made (ahead, in the background, for the next run)."""
    found = tools()
    if not found:
        raise QuotaError("mkfs.ext4, mount, umount and losetup are needed for a disk quota")
    images = image_dir()
    sweep(images)
    image, device = _spares.take(images, size, inodes, uid, share)
    bound = False
    try:
        _bind(_stage(image), folder)
        bound = True
        yield folder
    finally:
        try:
            if bound:  # the bind only: the image stays mounted at its stage, unmounted in the background
                _umount(folder)
        finally:
            _spares.discard(image, device)


def unmount_stale(folder: Path) -> None:
    """Detach an image a killed gome left mounted over `folder` (or anything below it)."""
    found = tools()
    if not os.path.lexists(folder):  # nothing is mounted where nothing is (the usual case: read no mount table)
        return
    for point in mounts_below(folder) if found else ():
        subprocess.run([found[2], "-l", point], capture_output=True, check=False)


def works(scratch: Path) -> tuple[bool, str]:
    """Can this machine mount a quota image? (root, loop devices, the tools)"""
    if os.geteuid() != 0:
        return False, "not root"
    if not tools():
        return False, "mkfs.ext4 / mount / umount / losetup not found (Debian: e2fsprogs, mount)"
    folder = scratch / "quota-probe"
    folder.mkdir(exist_ok=True)
    try:
        with quota_mount(folder, size=MIN_BYTES, inodes=256):
            (folder / "x").write_text("x")
        return True, ""
    except (QuotaError, OSError, subprocess.TimeoutExpired) as e:
        return False, str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
