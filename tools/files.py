"""File I/O that a hostile script cannot turn against gome.

A script controls everything in its folder, links included, and gome runs as root. Every read here opens
without following a final link (O_NOFOLLOW), refuses anything but a regular file (a FIFO would block, a device
would stream forever) and checks the size before reading. Every write goes to a fresh temporary file created
with O_EXCL | O_NOFOLLOW and is renamed into place: a rename replaces a link, it never writes through one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import secrets
import shutil
import stat
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

MAX_JSON_BYTES = 16 << 20  # gome's own records are small: anything bigger was not written by gome


class UnsafeFile(OSError):
    """A file gome will not read: a link, not a regular file, or over its size cap. The message says which."""


def open_regular(path: str | Path, max_bytes: int | None = None, dir_fd: int | None = None) -> int:
    """A read-only fd on `path` (relative to `dir_fd` if given) if it is a regular file (no link followed) of at
    most max_bytes."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeFile(errno.ELOOP, f"{path.name} is a symbolic link; links are refused") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafeFile(errno.EINVAL, f"{path.name} is not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        os.close(fd)
        raise UnsafeFile(errno.EFBIG, f"{path.name} is {info.st_size} bytes, over the {max_bytes}-byte limit")
    return fd


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    fd = open_regular(path, max_bytes)
    chunks, total = [], 0
    with os.fdopen(fd, "rb") as f:  # in chunks: the file may grow after fstat, and the cap may be huge
        while total <= max_bytes and (chunk := f.read(min(1 << 20, max_bytes + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise UnsafeFile(errno.EFBIG, f"{Path(path).name} grew over the {max_bytes}-byte limit while read")
    return data


def read_text(path: str | Path, max_bytes: int) -> str:
    return read_bytes(path, max_bytes).decode("utf-8", errors="replace")


@contextlib.contextmanager
def _atomic(path: str | Path, mode: int = 0o644):
    """A fresh temporary file beside `path` (O_EXCL | O_NOFOLLOW) to write into, renamed over `path` at the end:
    a rename replaces a link, it never writes through one, and a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
        forget(path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


T = TypeVar("T")
_made: OrderedDict[str, tuple[tuple, dict]] = OrderedDict()  # path -> (the file's version, {make: what it made})
_made_lock = threading.Lock()
MADE_KEPT = 8192  # files remembered: a run's journal reads every experiment's record at every step


def file_version(path: str | Path) -> tuple | None:
    """What changes whenever a regular file does (device, inode, size, mtime, ctime); None for a link, a missing
    file, or anything not a regular file."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) if stat.S_ISREG(st.st_mode) else None


def made_of(path: Path, make: Callable[[Path], T]) -> T:
    """make(path), made again only when the file changed: its inode, size, mtime or ctime moved (and whenever
    gome itself wrote it). What comes back is shared by every caller: read it, never change it. A link or a missing file
    is not remembered: make() decides what it is."""
    version = file_version(path)
    if version is None:
        return make(path)
    key = str(path)
    with _made_lock:
        hit = _made.get(key)
        if hit is not None and hit[0] == version and make in hit[1]:
            _made.move_to_end(key)
            return hit[1][make]
    value = make(path)
    with _made_lock:
        hit = _made.get(key)
        made = hit[1] if hit is not None and hit[0] == version else {}
        made[make] = value
        _made[key] = (version, made)
        _made.move_to_end(key)
        while len(_made) > MADE_KEPT:
            _made.popitem(last=False)
    return value


def per_version(maxsize: int):
    """A cache of fn(path, *args), kept per version of the file at `path` (least recently used first out of
    `maxsize`): made again when the file changes; a file with no version (a link, missing, not regular) is never
    cached. For what is big or keyed by more than the path (made_of keeps every record of a run)."""
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        cached = functools.lru_cache(maxsize)(lambda path, version, *args: fn(path, *args))

        @functools.wraps(fn)
        def call(path: str | Path, *args) -> T:
            version = file_version(path)
            return cached(str(path), version, *args) if version else fn(str(path), *args)
        return call
    return wrap


def forget(path: str | Path) -> None:
    """gome wrote this file: what was made of it is stale even if its version looks the same (a coarse clock, a
    reused inode)."""
    with _made_lock:
        _made.pop(str(path), None)


def write_bytes(path: str | Path, data: bytes, mode: int = 0o644) -> int:
    """Write atomically; returns the inode written, to tell this write from a later one by someone else."""
    with _atomic(path, mode) as f:
        f.write(data)
        return os.fstat(f.fileno()).st_ino


def write_text(path: str | Path, text: str, mode: int = 0o644) -> int:
    return write_bytes(path, text.encode("utf-8", errors="replace"), mode)


def copy_file(src: str | Path, dst: str | Path, max_bytes: int, src_dir_fd: int | None = None) -> None:
    """Copy a regular file (never a link) of at most max_bytes, streaming, to dst (written atomically)."""
    with os.fdopen(open_regular(src, max_bytes, dir_fd=src_dir_fd), "rb") as f, _atomic(dst) as g:
        copied = 0
        while chunk := f.read(1 << 20):
            copied += len(chunk)
            if copied > max_bytes:
                raise UnsafeFile(errno.EFBIG, f"{Path(src).name} grew over the {max_bytes}-byte limit")
            g.write(chunk)


def links_and_specials(folder: str | Path) -> list[str]:
    """Paths (relative) under `folder` that are links or not regular files/folders: what a copy must refuse."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            p = Path(root) / name
            mode = p.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(str(p.relative_to(folder)))
    return sorted(found)


def copy_tree(src: str | Path, dst: str | Path, skip: tuple[str, ...] = ()) -> None:
    """Copy a folder of regular files and folders, following no link; refuse (UnsafeFile) anything else.
    `skip`: top-level names left out. The walk holds a descriptor on each folder and opens every entry relative
    to it without following links, so an entry swapped for a link during the copy is refused, never followed."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise UnsafeFile(e.errno or errno.EINVAL, f"{src} is not a folder (or is a link): {e.strerror}") from None
    try:
        _copy_dir(fd, str(src), Path(dst), skip)
    finally:
        os.close(fd)


def _copy_dir(dir_fd: int, label: str, dst: Path, skip: tuple[str, ...]) -> None:
    dst.mkdir()
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        if name in skip:
            continue
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                raise UnsafeFile(errno.ELOOP, f"{label}/{name} changed into a link during the copy") from None
            try:
                _copy_dir(child, f"{label}/{name}", dst / name, ())
            finally:
                os.close(child)
        elif stat.S_ISREG(mode):
            copy_file(name, dst / name, max_bytes=1 << 62, src_dir_fd=dir_fd)
        elif stat.S_ISLNK(mode):
            raise UnsafeFile(errno.ELOOP, f"{label}/{name} is a symbolic link; links are refused")
        else:
            raise UnsafeFile(errno.EINVAL, f"{label}/{name} is not a regular file")


def mount_point(mountinfo_line: str) -> str:
    """The mount point of a /proc/self/mountinfo line, its escapes (\\040 for a space ...) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mountinfo_line.split()[4])


def mounts_below(path: str | Path) -> list[str]:
    """Mount points at or under `path` (deepest first), from /proc/self/mountinfo."""
    root = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = mount_point(line)
                if point == root or point.startswith(root.rstrip("/") + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


def remove_tree(path: str | Path) -> None:
    """Remove a folder a script may have filled: never through a link (shutil.rmtree works by descriptor here),
    never across a mount (a quota image a killed gome left mounted is detached first), and however deep the
    script nested it (past Python's recursion limit, rm takes over: it walks iteratively)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
        return
    if not path.exists():
        return
    with contextlib.suppress(OSError):  # empty (a script's folder once its image is unmounted): nothing below it
        os.rmdir(path)                  # can be a mount, and reading the mount table costs more than this
        return
    for point in mounts_below(path):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    try:
        shutil.rmtree(path)
    except RecursionError:
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0 and path.exists():
            raise OSError(errno.EBUSY, f"cannot remove {path}: {done.stderr.strip()[-300:]}") from None
