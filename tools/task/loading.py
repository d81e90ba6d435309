"""Loading a task folder (MLE-bench's prepared layout plus task.toml), validating it whole, and describing its
data for prompts.

A task folder is checked before anything is written, and every problem is named at once: settings of the right
type and in range, file names that stay inside the folder, no links anywhere in the public data, every CSV
readable to its last row, unique ids, test ids that match the sample submission's, targets that have values.
"""

from __future__ import annotations

import functools
import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gome.state.records import Task
from gome.tools.files import MAX_JSON_BYTES, UnsafeFile, links_and_specials, read_text
from gome.tools.task.metrics import get_metric

SAMPLE_NAMES = ("sample_submission.csv", "sampleSubmission.csv", "sample_submission.csv.zip")
TEXT_KEYS = {"name", "metric", "direction", "id_column", "submission_file", "train_file", "test_file",
             "sample_submission_file", "positive_label"}
TOML_KEYS = TEXT_KEYS | {"target_columns"}
FILE_KEYS = ("train_file", "test_file", "sample_submission_file", "submission_file")
RESERVED_OUTPUTS = {"val_predictions.csv"}  # the harness's own file: a submission may not take its name
NOT_COPIED = ("task.toml", "private")  # what the run's copy of the public data leaves out
SPARSE_BYTES = 64 << 20  # a file this big that occupies under half its size on disk is refused (sparse)
CHUNK_ROWS = 200_000
MAX_DESCRIPTION_BYTES = 4 << 20


class TaskError(ValueError):
    """A task folder gome cannot use. `problems` lists every one found, not just the first."""

    def __init__(self, task_dir: str | Path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"task folder {task_dir} is not usable:\n{lines}")


def find_data_dir(task_dir: Path) -> Path:
    """MLE-bench's `prepared/` holds public/ (what the agent sees) and private/ (answers); accept either level."""
    return task_dir / "public" if (task_dir / "public").is_dir() else task_dir


def _read_toml(task_dir: Path, data_dir: Path, problems: list[str]) -> dict[str, Any]:
    for folder in (task_dir, data_dir):
        path = folder / "task.toml"
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            raw = tomllib.loads(read_text(path, MAX_JSON_BYTES))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            problems.append(f"{path}: not valid TOML ({e})")
            return {}
        except OSError as e:
            problems.append(f"{path}: cannot be read ({e.strerror})")
            return {}
        table = raw.get("task", raw)
        if isinstance(table, list):
            problems.append(f"{path}: [[task]] makes a list of tables; write one [task] table")
            return {}
        if not isinstance(table, dict):
            problems.append(f"{path}: `task` must be a table ([task]), not a {type(table).__name__}")
            return {}
        unknown = sorted(set(table) - TOML_KEYS)
        if unknown:
            problems.append(f"{path}: unknown key(s) {unknown}; known: {sorted(TOML_KEYS)}")
        return {k: v for k, v in table.items() if k in TOML_KEYS}
    return {}


def _check_types(cfg: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Keep the settings of the right type; name each one that is not."""
    out = {}
    for key, value in cfg.items():
        if key == "target_columns":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                problems.append(f"target_columns must be a column name or a list of names, not {value!r}"[:300])
                continue
            out[key] = names
        elif key == "positive_label" and isinstance(value, (int, float, bool)):
            out[key] = str(value)
        elif not isinstance(value, str):
            problems.append(f"{key} must be a string, not {type(value).__name__} {value!r}"[:300])
        elif any(unicodedata.category(ch) == "Cc" for ch in value):
            problems.append(f"{key} must not contain control characters: {value!r}"[:300])
        else:
            out[key] = value
    for key in FILE_KEYS:  # names of files inside the data folder (or the script's folder): one plain component
        name = out.get(key)
        if name is not None and (name in ("", ".", "..", *NOT_COPIED) or "/" in name or "\\" in name
                                 or name.startswith(".")):
            problems.append(f"{key} must be a plain file name inside the folder (not {', '.join(NOT_COPIED)}), "
                            f"not {name!r}")
            out.pop(key)
    sub = out.get("submission_file")
    if sub is not None and (not sub.endswith(".csv") or sub in RESERVED_OUTPUTS):
        problems.append(f"submission_file must be a .csv file name other than {sorted(RESERVED_OUTPUTS)}, "
                        f"not {sub!r}")
        out.pop("submission_file")
    if len(out.get("name", "")) > 100:
        problems.append("name must be at most 100 characters")
        out.pop("name")
    return out


def _sparse_files(folder: Path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            info = (Path(root) / name).lstat()
            if info.st_size > SPARSE_BYTES and info.st_blocks * 512 < info.st_size // 2:
                found.append(str((Path(root) / name).relative_to(folder)))
    return sorted(found)


def _read_header(path: Path, what: str, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file() or path.is_symlink():
        if not path.is_symlink():
            problems.append(f"missing {what}: {path.name} (looked in {path.parent})")
        return None
    try:
        return pd.read_csv(path, nrows=200)
    except Exception as e:  # pandas raises many types for unreadable files
        problems.append(f"{path.name}: unreadable CSV ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
        return None


def load_task(task_dir: str | Path, overrides: dict[str, Any] | None = None) -> Task:
    """Validate a task folder and return its Task; raise TaskError naming every problem found.

    Settings come from task.toml, then `overrides` (command-line flags) on top. The metric is never guessed:
    without task.toml it must be given as an override. Every CSV is read to its last row (once per process for
    unchanged files).
    """
    task_dir = Path(task_dir).expanduser().resolve()
    if not task_dir.is_dir():
        raise TaskError(task_dir, [f"{task_dir} is not a folder"])
    data_dir = find_data_dir(task_dir)
    problems = _folder_problems(task_dir, data_dir)
    cfg = _read_toml(task_dir, data_dir, problems)
    cfg = _check_types({**cfg, **{k: v for k, v in (overrides or {}).items() if v is not None}}, problems)
    metric, direction = _metric(cfg, problems)
    names = {"train_file": cfg.get("train_file", "train.csv"), "test_file": cfg.get("test_file", "test.csv"),
             "sample_submission_file": cfg.get("sample_submission_file") or next(
                 (n for n in SAMPLE_NAMES if (data_dir / n).is_file()), SAMPLE_NAMES[0])}
    columns = _columns(cfg, data_dir, names, problems)
    rows = (0, 0)
    if not problems:  # the whole files, only once the settings make sense
        rows = _check_contents(*(data_dir / n for n in names.values()), columns["id_column"],
                               tuple(columns["target_columns"]), metric.kind, problems)
    if problems:
        raise TaskError(task_dir, problems)
    return Task(
        name=str(cfg.get("name") or (task_dir.name if task_dir.name not in ("prepared", "public") else
                                     task_dir.parent.name)),
        data_dir=str(data_dir), description=read_text(data_dir / "description.md", MAX_DESCRIPTION_BYTES),
        metric=metric.name, direction=direction, **columns, **names,
        submission_file=cfg.get("submission_file", "submission.csv"), positive_label=cfg.get("positive_label"),
        train_rows=rows[0], test_rows=rows[1])


def _folder_problems(task_dir: Path, data_dir: Path) -> list[str]:
    """What is wrong with the folder itself: links, special or sparse files, the description."""
    problems = []
    if (task_dir / "public").is_symlink():
        problems.append(f"{task_dir / 'public'} is a link; gome copies regular files only: make it a folder")
    links = links_and_specials(data_dir)
    if links:
        shown = ", ".join(links[:5]) + (f" and {len(links) - 5} more" if len(links) > 5 else "")
        problems.append(f"{data_dir} holds links or special files ({shown}); gome copies regular files only: "
                        "replace each link with the file itself (cp -L)")
    elif sparse := _sparse_files(data_dir):
        problems.append(f"{data_dir} holds sparse files ({', '.join(sparse[:5])}): their copy would take far more "
                        "disk than they do; write them out in full, or remove them")
    description = data_dir / "description.md"
    if not description.is_file() or description.is_symlink():
        problems.append(f"missing description.md in {data_dir}")
    elif description.stat().st_size > MAX_DESCRIPTION_BYTES:
        problems.append(f"description.md is over {MAX_DESCRIPTION_BYTES >> 20} MB: keep it to the task's text")
    return problems


def _metric(cfg: dict[str, Any], problems: list[str]):
    """(Metric or None, direction): the task's metric, never guessed, and a direction that agrees with it."""
    metric = None
    if "metric" not in cfg:
        problems.append("no metric: add `metric = \"...\"` to task.toml or pass --metric (gome never guesses it)")
    else:
        try:
            metric = get_metric(str(cfg["metric"]))
        except KeyError as e:
            problems.append(str(e.args[0]))
    direction = cfg.get("direction") or (metric.direction if metric else "maximize")
    if direction not in ("maximize", "minimize"):
        problems.append(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    elif metric and direction != metric.direction:
        problems.append(f"direction {direction!r} contradicts metric {metric.name!r}, which is {metric.direction}d")
    return metric, direction


def _columns(cfg: dict[str, Any], data_dir: Path, names: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """The id, submission and target columns, checked against the headers of the three files."""
    train = _read_header(data_dir / names["train_file"], "training data", problems)
    test = _read_header(data_dir / names["test_file"], "test data", problems)
    sample = _read_header(data_dir / names["sample_submission_file"], "sample submission", problems)
    id_column = cfg.get("id_column") or (sample.columns[0] if sample is not None and len(sample.columns) else None)
    submission_columns: list[str] = []
    if sample is not None and id_column is not None:
        if id_column not in sample.columns:
            problems.append(f"sample submission lacks the id column {id_column!r}; it has {list(sample.columns)}")
        else:
            submission_columns = [c for c in sample.columns if c != id_column]
            if not submission_columns:
                problems.append("sample submission has no column besides the id")
    for frame, what in ((train, "training data"), (test, "test data")):
        if frame is not None and id_column is not None and id_column not in frame.columns:
            problems.append(f"{what} lacks the id column {id_column!r}")
    targets = cfg.get("target_columns")
    if targets is None and train is not None:
        targets = [c for c in submission_columns if c in train.columns] or None
        if targets is None:
            problems.append("no target columns: set `target_columns` in task.toml (the answer columns of train)")
    if targets and train is not None:
        absent = [c for c in targets if c not in train.columns]
        if absent:
            problems.append(f"target column(s) {absent} not in training data; it has {list(train.columns)[:30]}")
    return {"id_column": str(id_column), "submission_columns": submission_columns,
            "target_columns": [str(t) for t in targets or []]}


def _check_contents(train: Path, test: Path, sample: Path, id_column: str, targets: tuple[str, ...], kind: str,
                    problems: list[str]) -> tuple[int, int]:
    found = _scan_files(*(_key(p) for p in (train, test, sample)), id_column, targets, kind)
    problems.extend(found[2])
    return found[0], found[1]


def _key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _scan_files(train: tuple, test: tuple, sample: tuple, id_column: str, targets: tuple[str, ...], kind: str
                ) -> tuple[int, int, tuple[str, ...]]:
    """(train rows, test rows, problems), reading every row of the three files (cached per file version)."""
    problems: list[str] = []
    scans = {}
    for (path, _size, _mtime), cols in ((train, (id_column, *targets)), (test, (id_column,)),
                                        (sample, (id_column,))):
        scans[path] = _scan(Path(path), cols, problems)
    (tr_ids, tr_cols), (te_ids, _), (sa_ids, _) = (scans[train[0]], scans[test[0]], scans[sample[0]])
    for ids, name in ((tr_ids, train[0]), (te_ids, test[0]), (sa_ids, sample[0])):
        if ids is None:
            continue
        label = Path(name).name
        if len(ids) == 0:
            problems.append(f"{label} has no rows")
        elif (dups := len(ids) - len(np.unique(ids))) > 0:
            problems.append(f"{label}: {dups} duplicated id(s) in {id_column!r}; every row needs its own id")
    if te_ids is not None and sa_ids is not None and len(te_ids) and not np.array_equal(np.sort(te_ids),
                                                                                         np.sort(sa_ids)):
        only_test, only_sample = np.setdiff1d(te_ids, sa_ids).size, np.setdiff1d(sa_ids, te_ids).size
        problems.append(f"the sample submission's ids differ from the test ids ({only_test} test id(s) not in the "
                        f"sample, {only_sample} sample id(s) not in test)")
    for target, values in (tr_cols or {}).items():
        if values["count"] == 0:
            problems.append(f"target column {target!r} has no values in {Path(train[0]).name}")
        elif kind in ("label", "probability") and values["distinct"] < 2:
            problems.append(f"target column {target!r} has a single class: there is nothing to learn")
    return (len(tr_ids) if tr_ids is not None else 0, len(te_ids) if te_ids is not None else 0, tuple(problems))


def _scan(path: Path, cols: tuple[str, ...], problems: list[str]) -> tuple[np.ndarray | None, dict | None]:
    """Hashed ids and per-target value counts of a whole CSV, read in chunks (bounded memory)."""
    ids, stats = [], {c: {"count": 0, "values": set()} for c in cols[1:]}
    try:
        for chunk in pd.read_csv(path, chunksize=CHUNK_ROWS, low_memory=False):
            id_values = chunk[cols[0]]
            if id_values.isna().any():
                problems.append(f"{path.name}: {int(id_values.isna().sum())} row(s) have no id")
                return None, None
            ids.append(pd.util.hash_array(id_values.astype(str).str.strip().to_numpy()))
            for c in cols[1:]:
                col = chunk[c].dropna()
                stats[c]["count"] += len(col)
                if len(stats[c]["values"]) < 3:
                    stats[c]["values"].update(col.astype(str).unique()[:3])
    except (UnsafeFile, OSError) as e:
        problems.append(f"{path.name}: cannot be read ({e})")
        return None, None
    except Exception as e:  # a row that does not parse, anywhere in the file
        problems.append(f"{path.name}: unreadable CSV ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
        return None, None
    summary = {c: {"count": s["count"], "distinct": len(s["values"])} for c, s in stats.items()}
    return (np.concatenate(ids) if ids else np.array([], dtype=np.uint64)), summary


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def describe_data(task: Task, data_dir: str | Path | None = None, max_columns: int = 60) -> str:
    """The data schema a model needs to write a working script: files, columns, dtypes, target, format."""
    d = Path(data_dir or task.data_dir)
    train = pd.read_csv(d / task.train_file, nrows=2000)
    lines = [f"Files in DATA_DIR: {', '.join(sorted(p.name for p in d.iterdir() if p.is_file()))}",
             f"- {task.train_file}: {task.train_rows or _count_rows(d / task.train_file)} rows; {task.test_file}: "
             f"{task.test_rows or _count_rows(d / task.test_file)} rows; id column {task.id_column!r}; "
             f"target column(s) {task.target_columns} (in {task.train_file} only)",
             f"- columns of {task.train_file} (name: dtype):"]
    cols = list(train.columns)
    lines += [f"    {c}: {train[c].dtype}" for c in cols[:max_columns]]
    if len(cols) > max_columns:
        lines.append(f"    ... and {len(cols) - max_columns} more columns")
    for t in task.target_columns:
        s = train[t]
        if s.nunique() <= 20:
            counts = ", ".join(f"{k}: {v}" for k, v in s.value_counts().sort_index().items())
            lines.append(f"- target {t!r} values (first 2000 rows): {counts}")
        else:
            lines.append(f"- target {t!r}: mean {s.mean():.4g}, std {s.std():.4g}, "
                         f"min {s.min():.4g}, max {s.max():.4g}")
    sample = pd.read_csv(d / task.sample_submission_file, nrows=3)
    lines += [f"- submission format ({task.sample_submission_file}, write it as {task.submission_file}):",
              "    " + sample.to_csv(index=False).strip().replace("\n", "\n    ")]
    return "\n".join(lines)

