"""Loading a task folder (MLE-bench's prepared layout plus task.toml) and describing its data for prompts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from gome.state.records import Task
from gome.tools.metrics import get_metric

SAMPLE_NAMES = ("sample_submission.csv", "sampleSubmission.csv", "sample_submission.csv.zip")
TOML_KEYS = {
    "name", "metric", "direction", "id_column", "target_columns", "submission_file", "train_file", "test_file",
    "sample_submission_file", "positive_label",
}


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
        if path.is_file():
            try:
                raw = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                problems.append(f"{path}: not valid TOML ({e})")
                return {}
            table = raw.get("task", raw)  # a [task] table or top-level keys
            unknown = sorted(set(table) - TOML_KEYS)
            if unknown:
                problems.append(f"{path}: unknown key(s) {unknown}; known: {sorted(TOML_KEYS)}")
            return {k: v for k, v in table.items() if k in TOML_KEYS}
    return {}


def _read_header(path: Path, what: str, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
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
    without task.toml it must be given as an override.
    """
    task_dir = Path(task_dir).expanduser().resolve()
    if not task_dir.is_dir():
        raise TaskError(task_dir, [f"{task_dir} is not a folder"])
    data_dir = find_data_dir(task_dir)
    problems: list[str] = []
    cfg = _read_toml(task_dir, data_dir, problems)
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})

    if not (data_dir / "description.md").is_file():
        problems.append(f"missing description.md in {data_dir}")
    sample_name = cfg.get("sample_submission_file") or next(
        (n for n in SAMPLE_NAMES if (data_dir / n).is_file()), SAMPLE_NAMES[0])
    train_name, test_name = cfg.get("train_file", "train.csv"), cfg.get("test_file", "test.csv")
    train = _read_header(data_dir / train_name, "training data", problems)
    test = _read_header(data_dir / test_name, "test data", problems)
    sample = _read_header(data_dir / sample_name, "sample submission", problems)

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
    if isinstance(targets, str):
        targets = [targets]
    if targets is None and train is not None:
        targets = [c for c in submission_columns if c in train.columns] or None
        if targets is None:
            problems.append("no target columns: set `target_columns` in task.toml (the answer columns of train)")
    if targets and train is not None:
        absent = [c for c in targets if c not in train.columns]
        if absent:
            problems.append(f"target column(s) {absent} not in training data; it has {list(train.columns)[:30]}")

    if problems:
        raise TaskError(task_dir, problems)
    return Task(
        name=str(cfg.get("name") or (task_dir.name if task_dir.name not in ("prepared", "public") else
                                     task_dir.parent.name)),
        data_dir=str(data_dir),
        description=(data_dir / "description.md").read_text(errors="replace"),
        metric=metric.name,
        direction=direction,
        id_column=str(id_column),
        target_columns=[str(t) for t in targets],
        submission_columns=submission_columns,
        train_file=train_name,
        test_file=test_name,
        sample_submission_file=sample_name,
        submission_file=cfg.get("submission_file", "submission.csv"),
        positive_label=None if cfg.get("positive_label") is None else str(cfg["positive_label"]),
    )


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def describe_data(task: Task, data_dir: str | Path | None = None, max_columns: int = 60) -> str:
    """The data schema a model needs to write a working script: files, columns, dtypes, target, format."""
    d = Path(data_dir or task.data_dir)
    train = pd.read_csv(d / task.train_file, nrows=2000)
    lines = [f"Files in DATA_DIR: {', '.join(sorted(p.name for p in d.iterdir() if p.is_file()))}",
             f"- {task.train_file}: {_count_rows(d / task.train_file)} rows; {task.test_file}: "
             f"{_count_rows(d / task.test_file)} rows; id column {task.id_column!r}; "
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
