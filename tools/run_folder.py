"""The run folder: everything a run produces, readable without the program.

runs/<run-id>/
  run.json                 config, status, per-step scores and decisions (rebuilt from the files below)
  input/                   a read-only copy of the public data: the only data scripts are given
  experiments/<id>/        main.py, stdout.txt, stderr.txt, metrics.json, val_predictions.csv, submission.csv,
                           plan.json (the gradient and momentum that wrote it), diagnosis.json
  best/                    solution.py, submission.csv, best.json: the best so far, then the selected one
  checkpoints.sqlite       LangGraph checkpoints and store (resume, success memory)
  usage.jsonl              one line per LLM call
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any

from gome.tools.metrics import beats

_lock = threading.RLock()  # parallel traces share one process: serialise run-level files


def new_run_dir(out: str | Path, task_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(out).expanduser().resolve() / f"{stamp}-{task_name}-{secrets.token_hex(2)}"
    path.mkdir(parents=True)
    return path


def write_json(path: Path, obj: Any) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def experiment_id(trace: int, step: int, traces: int) -> str:
    """Deterministic, so a node re-run after a crash writes the same folder: n = step * traces + trace + 1."""
    return f"{step * traces + trace + 1:04d}"


def experiment_dir(run_dir: str | Path, exp_id: str) -> Path:
    return Path(run_dir) / "experiments" / exp_id


def copy_input(data_dir: str | Path, run_dir: str | Path) -> Path:
    """Copy the public data into the run, read-only (0444 files, 0555 folders): scripts never touch the task's
    own folder. Root ignores file modes; the hardened executor enforces read-only with a mount."""
    dest = Path(run_dir) / "input"
    if not dest.exists():
        tmp = dest.with_name(".input.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(data_dir, tmp, ignore=shutil.ignore_patterns("task.toml", "private"))
        for root, _dirs, files in os.walk(tmp):
            for f in files:
                os.chmod(Path(root) / f, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        for root, dirs, _ in os.walk(tmp, topdown=False):
            for d in dirs:
                os.chmod(Path(root) / d, 0o555)
        os.replace(tmp, dest)
        os.chmod(dest, 0o555)
    return dest


def promote_best(run_dir: str | Path, summary: dict, direction: str, *, submission_file: str = "submission.csv",
                 force: bool = False) -> bool:
    """Copy an experiment into best/ when it beats what is there (or when forced by final selection)."""
    run_dir = Path(run_dir)
    best = run_dir / "best"
    with _lock:
        current = read_json(best / "best.json")
        if not force and not beats(summary, current, direction):
            return False
        src = experiment_dir(run_dir, summary["id"])
        best.mkdir(exist_ok=True)
        shutil.copyfile(src / "main.py", best / ".solution.py.tmp")
        os.replace(best / ".solution.py.tmp", best / "solution.py")
        if summary.get("submission_valid"):
            shutil.copyfile(src / submission_file, best / ".submission.csv.tmp")
            os.replace(best / ".submission.csv.tmp", best / "submission.csv")
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
            "accepted", "improved_best", "decision", "hypothesis", "mode", "intent", "switch")} for s in steps if s]
        run["mode_switches"] = [{"after": s["id"], "trace": s["trace"], "switch": s["switch"]}
                                for s in run["steps"] if s.get("switch")]
        run["best"] = read_json(run_dir / "best" / "best.json")
        run["updated_at"] = time.time()
        write_json(run_dir / "run.json", run)
        return run
