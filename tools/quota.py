"""A disk and inode quota for a script's folder: a fresh ext4 image, loop-mounted over the folder for one run.

The script can fill its own image and nothing else: the host's disk loses at most the image's size (a sparse
file, so only what is written), and its inodes are the image's. After the run gome copies out what it asked
for, unmounts and deletes the image. The inode tables are not zeroed (`noinit_itable`), so a run costs a few
tens of milliseconds and no disk writes beyond what the script writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

MIN_BYTES = 8 << 20


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


def size_for(folder: Path, wanted: int, share: float = 0.5) -> int:
    """The image size: what was asked, but never more than `share` of the free space where the image lives."""
    st = os.statvfs(folder)
    return max(MIN_BYTES, min(wanted, int(st.f_bavail * st.f_frsize * share)))


@contextlib.contextmanager
def quota_mount(folder: Path, *, size: int, inodes: int, uid: int | None = None) -> Iterator[Path]:
    """Mount a fresh ext4 image of `size` bytes and at most `inodes` files over `folder` (owned by `uid`) for
    the duration of the block. The image lives beside the folder, where the script cannot reach it."""
    mkfs, mount, umount = tools() or (None, None, None)
    if not mkfs:
        raise QuotaError("mkfs.ext4, mount and umount are needed for a disk quota")
    image = folder.with_name(f".{folder.name}.img")
    with contextlib.suppress(FileNotFoundError):
        image.unlink()
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
