"""The run folder: everything a run produces, readable without the program. This module alone knows its layout.

runs/<run-id>/
  run.json                 config, status, per-step scores and decisions (rebuilt from the journal)
  input/                   a read-only copy of the public data: the only data scripts are given
  schema.md                the data description every prompt carries
  experiments/<id>/        main.py, stdout.txt, stderr.txt, metrics.json (the journal's node), result.json,
                           plan.json (the gradient and momentum that wrote it), diagnosis.json, review.json,
                           val_predictions.csv, submission.csv
  experiments/<id>/work/   the script's own folder while it runs (its only writable place; emptied after)
  experiments/<id>/rerun-seed<k>/   final selection's re-runs, laid out like an experiment
  best/                    solution.py, submission.csv, best.json: the best so far, then the selected one
  checkpoints.sqlite       LangGraph checkpoints and store (resume, success memory)
  usage.jsonl, events.jsonl, select.json, crash.txt, report.html, report.md

Everything outside work/ is written by gome alone. It is still read as if a script had written it (no link
followed, regular files only, size capped): at the weaker sandbox levels a script can reach it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import secrets
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from gome.state.journal import Journal, beats
from gome.state.records import Experiment
from gome.tools.files import (
    MAX_JSON_BYTES,
    copy_file,
    copy_tree,
    file_version,
    made_of,
    read_text,
    remove_tree,
    write_text,
)

T = TypeVar("T")
_lock = threading.RLock()  # parallel traces share one process: serialise run-level files
_written: dict[str, tuple[tuple | None, dict]] = {}  # run.json path -> (its version, what) as this process wrote it
MAX_CODE_BYTES = 1 << 20  # a script gome wrote or was given; longer ones are not code
MAX_LOG_BYTES = 1 << 20
RESERVE_BYTES = 4 << 20  # freed when the disk is full, so the run can still record how it ended
RECORD_FILES = ("main.py", "stdout.txt", "stderr.txt", "metrics.json", "plan.json", "diagnosis.json")
STEP_FIELDS = ("id", "trace", "step", "parent", "status", "runtime_s", "score", "score_source", "submission_valid",
               "accepted", "improved_best", "decision", "hypothesis", "mode", "intent", "switch")


class RunFolderError(RuntimeError):
    """A run folder gome cannot use (in use, not a folder, no checkpoint...). The message says what to do."""


def slug(text: str) -> str:
    """A name safe as one path component: letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")[:80] or "task"


def new_run_dir(out: str | Path, task_name: str) -> Path:
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(task_name)}-{secrets.token_hex(2)}"
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


def _read(path: Path, max_bytes: int) -> str | None:
    try:
        return read_text(path, max_bytes)
    except OSError:
        return None


def experiment_id(trace: int, step: int, traces: int) -> str:
    """Deterministic, so a node re-run after a crash writes the same folder: n = step * traces + trace + 1."""
    return f"{step * traces + trace + 1:04d}"


class ExperimentFolder:
    """experiments/<id>/ (or a re-run's folder): the script, its logs, its outputs and gome's records of it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def main(self) -> Path:
        return self.path / "main.py"

    @property
    def work(self) -> Path:
        """The script's own folder: its only writable place while it runs."""
        return self.path / "work"

    def output(self, name: str) -> Path:
        """Where a file the script wrote lands once gome brought it back (val_predictions.csv, the submission)."""
        return self.path / name

    def fresh(self) -> ExperimentFolder:
        """Start the experiment afresh (a node re-run after a crash); a link in the way is removed, not followed."""
        remove_tree(self.path)
        self.path.mkdir(parents=True)
        return self

    @property
    def candidates(self) -> Path:
        """For a blend: copies of the blended experiments' predictions, given to the script read-only."""
        return self.path / "candidates"

    def archive_attempt(self, k: int, summary: dict, outputs: dict[str, int] | None = None) -> None:
        """Keep an attempt before a repair rewrites main.py: attempts/<k>/ main.py, its logs, result.json, and the
        `outputs` named (name: size cap) of one that worked, in case its repair breaks it."""
        folder = self._attempt(k).fresh()
        with contextlib.suppress(OSError):
            folder.copy_code_from(self)
        folder.write_logs(self.read_log("stdout") or "", self.read_log("stderr") or "")
        folder.write("result", summary)
        for name, cap in (outputs or {}).items():
            with contextlib.suppress(OSError):
                copy_file(self.output(name), folder.output(name), cap)

    def restore_attempt(self, k: int, outputs: dict[str, int]) -> dict:
        """Put an archived attempt's script, logs and outputs back (a repair broke a script that worked); its
        result record."""
        src = self._attempt(k)
        self.copy_code_from(src)
        self.write_logs(src.read_log("stdout") or "", src.read_log("stderr") or "")
        for name, cap in outputs.items():
            with contextlib.suppress(FileNotFoundError):
                self.output(name).unlink()
            with contextlib.suppress(OSError):
                copy_file(src.output(name), self.output(name), cap)
        return src.read("result", {})

    def attempt_result(self, k: int) -> dict:
        return self._attempt(k).read("result", {})

    def attempt_code(self, k: int) -> str | None:
        """The script of an attempt, as archive_attempt kept it."""
        return self._attempt(k).read_code()

    def _attempt(self, k: int) -> ExperimentFolder:
        return ExperimentFolder(self.path / "attempts" / str(k))

    def attempts(self) -> list[dict]:
        """The attempts kept by archive_attempt (failed, or scored by the script only), in order: their results."""
        found = []
        root = self.path / "attempts"
        for p in sorted(root.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1) if root.is_dir() \
                else ():
            if p.name.isdigit() and not p.is_symlink():
                found.append({"attempt": int(p.name), **ExperimentFolder(p).read("result", {})})
        return found

    def files(self) -> list[Path]:
        """The experiment's script, logs and gome's records that exist (what a reader would open)."""
        return [p for p in (self.path / name for name in RECORD_FILES) if p.is_file() and not p.is_symlink()]

    # -- the script ---------------------------------------------------------------------------------------------
    def read_code(self) -> str | None:
        return _read(self.main, MAX_CODE_BYTES)

    def write_code(self, code: str) -> None:
        write_text(self.main, code)

    def copy_code_from(self, other: ExperimentFolder) -> None:
        copy_file(other.main, self.main, MAX_CODE_BYTES)

    # -- logs ---------------------------------------------------------------------------------------------------
    def write_logs(self, stdout: str, stderr: str) -> None:
        write_text(self.path / "stdout.txt", stdout)
        write_text(self.path / "stderr.txt", stderr)

    def read_log(self, name: str) -> str | None:
        """stdout or stderr as gome kept it (head and tail of a long one)."""
        return _read(self.path / f"{name}.txt", MAX_LOG_BYTES)

    def clear_outputs(self, names: tuple[str, ...]) -> None:
        """Forget the logs and outputs of an earlier, interrupted run of this experiment."""
        for name in ("stdout.txt", "stderr.txt", *names):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    # -- gome's records -----------------------------------------------------------------------------------------
    def write(self, record: str, obj: Any) -> None:
        """plan, result, diagnosis or review (<record>.json)."""
        write_json(self.path / f"{record}.json", obj)

    def read(self, record: str, default: Any = None) -> Any:
        value = read_json(self.path / f"{record}.json", default)
        return value if isinstance(value, dict) else default

    def write_experiment(self, exp: Experiment) -> None:
        write_json(self.path / "metrics.json", exp.model_dump(mode="json"))

    def read_experiment(self) -> Experiment | None:
        """The journal's record of this experiment (shared: see made_of), or None."""
        return made_of(self.path / "metrics.json", _experiment)


def _experiment(path: str | Path) -> Experiment | None:
    raw = read_json(path)
    try:
        return Experiment.model_validate(raw) if isinstance(raw, dict) else None
    except ValidationError:
        return None


def _step_row(path: str | Path) -> tuple[dict, str] | None:
    """An experiment's line in run.json's steps: (the row, its JSON text), made once per version of its record."""
    exp = made_of(path, _experiment)
    if exp is None:
        return None
    row = exp.model_dump(mode="json", include=set(STEP_FIELDS))
    return row, json.dumps(row, default=str)


@functools.lru_cache(maxsize=64)
def _indented(compact: str) -> str:
    """A value of run.json as people read it; the same config and inputs are rewritten at every step."""
    return json.dumps(json.loads(compact), indent=2).replace("\n", "\n  ")


def run_json_text(run: dict, lines: dict[str, list[str]] | None = None) -> str:
    """run.json as people read it, one step per line. Python's json runs its slow encoder for any indent: a whole
    indented run.json, rewritten at every step, cost O(steps) per step. `lines`: the JSON text of a list's items,
    already made (the steps: each is made once per version of its record)."""
    lines = lines or {}

    def value(k: str, v: Any) -> str:
        if k in lines and v:
            return "[\n" + ",\n".join("    " + line for line in lines[k]) + "\n  ]"
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return "[\n" + ",\n".join("    " + json.dumps(x, default=str) for x in v) + "\n  ]"
        return _indented(json.dumps(v, default=str))
    return "{\n" + ",\n".join(f"  {json.dumps(str(k))}: {value(k, v)}" for k, v in run.items()) + "\n}"


class RunFolder:
    """A run's folder: its experiments, journal, best, input copy and run-level records."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    def path(self, name: str) -> Path:
        """A run-level file: usage.jsonl, events.jsonl, checkpoints.sqlite, crash.txt, report.html ..."""
        return self.root / name

    def experiment(self, exp_id: str) -> ExperimentFolder:
        return ExperimentFolder(self.root / "experiments" / exp_id)

    def rerun(self, exp_id: str, seed: int) -> ExperimentFolder:
        return ExperimentFolder(self.root / "experiments" / exp_id / f"rerun-seed{seed}")

    def check_folder(self, name: str) -> ExperimentFolder:
        """Where gome's own small scripts run in the sandbox (the environment probe, import checks)."""
        return ExperimentFolder(self.root / "checks" / name)

    def _experiment_paths(self) -> list[str]:
        """experiments/<id> folders (no link followed), in id order; strings: at every step this lists them all."""
        try:
            with os.scandir(self.root / "experiments") as found:
                return sorted(e.path for e in found if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def experiment_folders(self) -> list[ExperimentFolder]:
        return [ExperimentFolder(Path(p)) for p in self._experiment_paths()]

    def records(self, name: str, make: Callable[[str], T]) -> list[T]:
        """make(experiments/<id>/<name>) for every experiment, in id order, made once per version of each file
        (made_of: shared, read-only)."""
        return [made_of(os.path.join(folder, name), make) for folder in self._experiment_paths()]

    def journal(self) -> Journal:
        """Every finished experiment (one with its record written), typed; the records are shared (made_of)."""
        return Journal(e for e in self.records("metrics.json", _experiment) if e is not None)

    def finished(self) -> int:
        return len(self.journal())

    def read(self, name: str, default: Any = None) -> Any:
        """A run-level JSON record: run, select, task (<name>.json)."""
        value = read_json(self.root / f"{name}.json", default)
        return value if isinstance(value, dict) else default

    def write(self, name: str, obj: Any) -> None:
        write_json(self.root / f"{name}.json", obj)

    def read_text(self, name: str, max_bytes: int = MAX_LOG_BYTES) -> str:
        return _read(self.root / name, max_bytes) or ""

    def write_text(self, name: str, text: str) -> None:
        write_text(self.root / name, text)

    def append_event(self, line: str) -> None:
        """One line of events.jsonl (appended whole: parallel traces write it too; never through a link)."""
        fd = os.open(self.path("events.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def description(self) -> str:
        """The task's description.md, from the run's own copy of the public data."""
        return _read(self.input / "description.md", 4 << 20) or ""

    def schema(self) -> str:
        """The data description every prompt carries (written at prepare)."""
        return _read(self.root / "schema.md", MAX_LOG_BYTES) or ""

    def write_schema(self, text: str) -> None:
        write_text(self.root / "schema.md", text)

    # -- the input copy -----------------------------------------------------------------------------------------
    def copy_input(self, data_dir: str | Path) -> Path:
        """Copy the public data into the run, read-only (0444 files, 0555 folders): scripts never touch the task's
        own folder. No link is followed (load_task refuses task folders with links; this is the second line).
        Root ignores file modes; the hardened executor enforces read-only with a mount."""
        dest = self.input
        if dest.exists():
            return dest
        need = sum((Path(r) / n).lstat().st_size for r, _dirs, files in os.walk(data_dir) for n in files)
        st = os.statvfs(self.root)
        if need + RESERVE_BYTES > st.f_bavail * st.f_frsize:
            raise RunFolderError(f"the public data takes {need >> 20} MB and {self.root} has "
                                 f"{st.f_bavail * st.f_frsize >> 20} MB free: free some disk, or use --out elsewhere")
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

    # -- best/ and run.json ---------------------------------------------------------------------------------------
    def promote_best(self, summary: dict, direction: str, *, submission_file: str = "submission.csv",
                     force: bool = False, max_bytes: int = 1 << 30) -> bool:
        """Copy an experiment into best/ when it beats what is there (or when forced by final selection)."""
        with _lock:
            current = read_json(self.best / "best.json")
            if not force and not beats(summary, current if isinstance(current, dict) else None, direction):
                return False
            src = self.experiment(summary["id"])
            self.best.mkdir(exist_ok=True)
            copy_file(src.main, self.best / "solution.py", MAX_CODE_BYTES)
            if summary.get("submission_valid"):
                copy_file(src.output(submission_file), self.best / "submission.csv", max_bytes)
            remove_tree(self.best / "candidates")
            if src.candidates.is_dir():  # a blend: what solution.py reads (GOME_CANDIDATES_DIR) comes with it
                try:
                    copy_tree(src.candidates, self.best / "candidates")
                except OSError:  # something not a plain file in it (a link): the submission stands without them
                    remove_tree(self.best / "candidates")
            write_json(self.best / "best.json", summary)
            return True

    def update_run_json(self, **fields: Any) -> dict:
        """Rebuild run.json from the journal (idempotent, so safe after a crash)."""
        with _lock:
            run = {**self._last_run_json(), **fields}
            rows = [r for r in self.records("metrics.json", _step_row) if r is not None]  # id order
            run["steps"] = [dict(row) for row, _ in rows]
            run["mode_switches"] = [{"after": s["id"], "trace": s["trace"], "switch": s["switch"]}
                                    for s in run["steps"] if s.get("switch")]
            run["best"] = read_json(self.best / "best.json")
            run["updated_at"] = time.time()
            inode = write_text(self.run_json, run_json_text(run, {"steps": [line for _, line in rows]}))
            version = file_version(self.run_json)
            _written.pop(str(self.run_json), None)
            if version is not None and version[1] == inode:  # not replaced since by someone else
                _written[str(self.run_json)] = (version, dict(run))
            while len(_written) > 64:  # an eval's process writes many runs: keep the latest
                _written.pop(next(iter(_written)))
            return run

    def _last_run_json(self) -> dict:
        """run.json as this process last wrote it, while the file is that version; else as read (every step
        rewrites it: parsing it again cost O(steps))."""
        version, run = _written.get(str(self.run_json), (None, None))
        if version is not None and version == file_version(self.run_json):
            return dict(run)
        return self.read("run", {})

    # -- one process at a time, and room to record the end ---------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the run folder for this process: a second `gome run`/`resume` on it is refused (RunFolderError),
        saying who holds it. The kernel drops the lock when the holder dies, however it dies."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
                raise RunFolderError(f"{self.root} is in use by {holder}; wait for it to end, or stop it") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"gome {command} (pid {os.getpid()} on {socket.gethostname()}, since "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
            self._reserve()
            yield
        finally:
            os.close(fd)

    def _reserve(self) -> None:
        """A few MB set aside, so that a full disk still leaves room to record how the run ended."""
        path = self.root / ".reserve"
        with contextlib.suppress(OSError):
            if not path.is_file() or path.is_symlink() or path.stat().st_size != RESERVE_BYTES:
                write_text(path, "\0" * RESERVE_BYTES)

    def free_reserve(self) -> None:
        with contextlib.suppress(OSError):
            (self.root / ".reserve").unlink()


def is_disk_full(exc: BaseException | None) -> bool:
    """Was this (or what caused it) a full disk?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
