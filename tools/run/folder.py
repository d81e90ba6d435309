"""The run folder: everything a run produces, readable without the program.

runs/<run-id>/
  run.json                 config, status, per-step scores and decisions (rebuilt from the files below)
  input/                   a read-only copy of the public data: the only data scripts are given
  experiments/<id>/        main.py, stdout.txt, stderr.txt, metrics.json, val_predictions.csv, submission.csv,
                           plan.json (the gradient and momentum that wrote it), diagnosis.json, result.json
  experiments/<id>/work/   the script's own folder while it runs (its only writable place; emptied after)
  best/                    solution.py, submission.csv, best.json: the best so far, then the selected one
  checkpoints.sqlite       LangGraph checkpoints and store (resume, success memory)
  usage.jsonl              one line per LLM call

Everything outside work/ is written by gome alone. It is still read as if a script had written it (no link
followed, regular files only, size capped): at the weaker sandbox levels a script can reach it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gome.tools.files import MAX_JSON_BYTES, copy_file, copy_tree, read_text, remove_tree, write_text
from gome.tools.task.metrics import beats

_lock = threading.RLock()  # parallel traces share one process: serialise run-level files
MAX_CODE_BYTES = 1 << 20  # a script gome wrote or was given; longer ones are not code
LOCK_NAME, RESERVE_NAME = ".lock", ".reserve"
RESERVE_BYTES = 4 << 20  # freed when the disk is full, so the run can still record how it ended


class RunFolderError(RuntimeError):
    """A run folder gome cannot use (in use, not a folder, no checkpoint...). The message says what to do."""


def slug(text: str) -> str:
    """A name safe as one path component: letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")[:80] or "task"


def new_run_dir(out: str | Path, task_name: str) -> Path:
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"{stamp}-{slug(task_name)}-{secrets.token_hex(2)}"
    try:
        path.mkdir(parents=True)
    except OSError as e:
        raise RunFolderError(f"cannot create a run folder under {out}: {e.strerror}") from None
    return path


def write_json(path: Path, obj: Any) -> None:
    """Write atomically, never through a link: a crash leaves the old file or the new one, never half of one."""
    write_text(path, json.dumps(obj, indent=2, default=str))


def read_json(path: Path, default: Any = None) -> Any:
    """A JSON file gome wrote, or `default` when it is missing, unreadable, a link, or too big to be gome's."""
    try:
        return json.loads(read_text(path, MAX_JSON_BYTES))
    except (OSError, ValueError, RecursionError):
        return default


def read_code(path: Path) -> str | None:
    """A script file (never through a link, at most MAX_CODE_BYTES), or None."""
    try:
        return read_text(path, MAX_CODE_BYTES)
    except OSError:
        return None


def experiment_id(trace: int, step: int, traces: int) -> str:
    """Deterministic, so a node re-run after a crash writes the same folder: n = step * traces + trace + 1."""
    return f"{step * traces + trace + 1:04d}"


def experiment_dir(run_dir: str | Path, exp_id: str) -> Path:
    return Path(run_dir) / "experiments" / exp_id


def work_dir(folder: Path) -> Path:
    """The script's own folder inside an experiment's (or a re-run's) folder."""
    return folder / "work"


def input_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "input"


def fresh_folder(path: Path) -> Path:
    """An empty folder at `path`, whatever was there (a link is removed, never followed)."""
    remove_tree(path)
    path.mkdir(parents=True)
    return path


def copy_input(data_dir: str | Path, run_dir: str | Path) -> Path:
    """Copy the public data into the run, read-only (0444 files, 0555 folders): scripts never touch the task's
    own folder. No link is followed (load_task refuses task folders with links; this is the second line).
    Root ignores file modes; the hardened executor enforces read-only with a mount."""
    dest = input_dir(run_dir)
    if not dest.exists():
        tmp = dest.with_name(".input.tmp")
        remove_tree(tmp)
        try:
            copy_tree(data_dir, tmp, skip=("task.toml", "private"))
            for root, _dirs, files in os.walk(tmp):
                for f in files:
                    os.chmod(Path(root) / f, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            for root, dirs, _ in os.walk(tmp, topdown=False):
                for d in dirs:
                    os.chmod(Path(root) / d, 0o555)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                for root, _dirs, _ in os.walk(tmp):
                    os.chmod(root, 0o755)
                remove_tree(tmp)
            raise
        os.chmod(dest, 0o555)
    return dest


def promote_best(run_dir: str | Path, summary: dict, direction: str, *, submission_file: str = "submission.csv",
                 force: bool = False, max_bytes: int = 1 << 30) -> bool:
    """Copy an experiment into best/ when it beats what is there (or when forced by final selection)."""
    run_dir = Path(run_dir)
    best = run_dir / "best"
    with _lock:
        current = read_json(best / "best.json")
        if not force and not beats(summary, current, direction):
            return False
        src = experiment_dir(run_dir, summary["id"])
        best.mkdir(exist_ok=True)
        copy_file(src / "main.py", best / "solution.py", MAX_CODE_BYTES)
        if summary.get("submission_valid"):
            copy_file(src / submission_file, best / "submission.csv", max_bytes)
        write_json(best / "best.json", summary)
        return True


def update_run_json(run_dir: str | Path, **fields: Any) -> dict:
    """Rebuild run.json from the experiment records on disk (idempotent, so safe after a crash)."""
    run_dir = Path(run_dir)
    with _lock:
        run = read_json(run_dir / "run.json", {})
        run.update(fields)
        steps = [read_json(p) for p in sorted((run_dir / "experiments").glob("*/metrics.json"))]
        run["steps"] = [{k: s.get(k) for k in (
            "id", "trace", "step", "parent", "status", "runtime_s", "score", "score_source", "submission_valid",
            "accepted", "improved_best", "decision", "hypothesis", "mode", "intent", "switch")}
            for s in steps if isinstance(s, dict)]
        run["mode_switches"] = [{"after": s["id"], "trace": s["trace"], "switch": s["switch"]}
                                for s in run["steps"] if s.get("switch")]
        run["best"] = read_json(run_dir / "best" / "best.json")
        run["updated_at"] = time.time()
        write_json(run_dir / "run.json", run)
        return run


@contextlib.contextmanager
def run_lock(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold the run folder for this process: a second `gome run`/`resume` on it is refused (RunFolderError),
    saying who holds it. The kernel drops the lock when the holder dies, however it dies."""
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise RunFolderError(f"{run_dir} is in use by {holder}; wait for it to end, or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"gome {command} (pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
        _reserve(Path(run_dir))
        yield
    finally:
        os.close(fd)


def _reserve(run_dir: Path) -> None:
    """A few MB set aside, so that a full disk still leaves room to record how the run ended."""
    path = run_dir / RESERVE_NAME
    with contextlib.suppress(OSError):
        if not path.is_file() or path.is_symlink() or path.stat().st_size != RESERVE_BYTES:
            write_text(path, "\0" * RESERVE_BYTES)


def free_reserve(run_dir: str | Path) -> None:
    with contextlib.suppress(OSError):
        (Path(run_dir) / RESERVE_NAME).unlink()


def is_disk_full(exc: BaseException | None) -> bool:
    """Was this (or what caused it) a full disk?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False

