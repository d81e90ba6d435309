"""A disk and inode quota for a script's folder: a fresh ext4 image, loop-mounted over the folder for one run.

The script can fill its own image and nothing else: the host's disk loses at most the image's size (a sparse
file, so only what is written), and its inodes are the image's. After the run gome copies out what it asked
for, unmounts and deletes the image. The inode tables are not zeroed (`noinit_itable`), so a run costs a few
tens of milliseconds and no disk writes beyond what the script writes.

Images live in their own root-only folder (GOME_QUOTA_DIR, default /var/tmp/gome-quota), never in a run folder:
a sparse file of gigabytes is a trap for anything that copies the run. A gome killed mid-run leaves its image
there (and the mount, which the next run of that experiment detaches); images of dead processes that no loop
device holds any more are removed by the next gome that mounts one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

MIN_BYTES = 8 << 20


def image_dir() -> Path:
    path = Path(os.environ.get("GOME_QUOTA_DIR", "/var/tmp/gome-quota"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class QuotaError(RuntimeError):
    """The image could not be made or mounted."""


def tools() -> tuple[str, str, str] | None:
    """(mkfs.ext4, mount, umount) when all three are installed."""
    found = tuple(shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin") for t in ("mkfs.ext4", "mount",
                                                                                      "umount"))
    return found if all(found) else None  # type: ignore[return-value]


def _run(argv: list[str]) -> None:
    out = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    if out.returncode != 0:
        raise QuotaError(f"{Path(argv[0]).name} failed: {(out.stderr or out.stdout).decode(errors='replace')[-300:]}")


def size_for(wanted: int, share: float = 0.5) -> int:
    """The image size: what was asked, but never more than `share` of the free space where images live."""
    st = os.statvfs(image_dir())
    return max(MIN_BYTES, min(wanted, int(st.f_bavail * st.f_frsize * share)))


def _sweep(folder: Path) -> None:
    """Remove images left by gome processes that died, unless a loop device still holds them."""
    losetup = shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")
    for image in folder.glob("*.img") if losetup else ():
        pid = image.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # its process is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        held = subprocess.run([losetup, "-j", str(image)], capture_output=True, text=True, check=False)
        if held.returncode == 0 and not held.stdout.strip():
            with contextlib.suppress(OSError):
                image.unlink()


@contextlib.contextmanager
def quota_mount(folder: Path, *, size: int, inodes: int, uid: int | None = None) -> Iterator[Path]:
    """Mount a fresh ext4 image of `size` bytes and at most `inodes` files over `folder` (owned by `uid`) for
    the duration of the block. The image lives in image_dir(), where the script cannot reach it."""
    mkfs, mount, umount = tools() or (None, None, None)
    if not mkfs:
        raise QuotaError("mkfs.ext4, mount and umount are needed for a disk quota")
    images = image_dir()
    _sweep(images)
    image = images / f"{os.getpid()}-{secrets.token_hex(6)}.img"
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.ftruncate(fd, size)
    os.close(fd)
    mounted = False
    try:
        extended = f"root_owner={uid}:{uid},nodiscard" if uid is not None else "nodiscard"
        n = min(inodes, max(128, size // 8192))  # ext4 refuses more inodes than the size can hold
        _run([mkfs, "-q", "-F", "-N", str(n), "-m", "0", "-O", "^has_journal", "-E", extended, str(image)])
        _run([mount, "-o", "loop,nosuid,nodev,noinit_itable", str(image), str(folder)])
        mounted = True
        lost = folder / "lost+found"
        with contextlib.suppress(OSError):
            lost.rmdir()
        yield folder
    finally:
        if mounted:  # a process still holding a file (none should, after the cgroup kill): detach lazily
            try:
                _run([umount, str(folder)])
            except QuotaError:
                _run([umount, "-l", str(folder)])
        with contextlib.suppress(FileNotFoundError):
            image.unlink()


def unmount_stale(folder: Path) -> None:
    """Detach an image a killed gome left mounted over `folder`."""
    if os.path.ismount(folder) and (found := tools()):
        subprocess.run([found[2], "-l", str(folder)], capture_output=True, check=False)


def works(scratch: Path) -> tuple[bool, str]:
    """Can this machine mount a quota image? (root, loop devices, the tools)"""
    if os.geteuid() != 0:
        return False, "not root"
    if not tools():
        return False, "mkfs.ext4 / mount / umount not found (Debian: e2fsprogs, mount)"
    folder = scratch / "quota-probe"
    folder.mkdir(exist_ok=True)
    try:
        with quota_mount(folder, size=MIN_BYTES, inodes=256):
            (folder / "x").write_text("x")
        return True, ""
    except (QuotaError, OSError, subprocess.TimeoutExpired) as e:
        return False, str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
