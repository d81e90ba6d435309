"""What the harness reads back from a run: the submission, the held-out predictions, a self-reported score."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gome.state.records import Task
from gome.tools.files import UnsafeFile, per_version, read_bytes
from gome.tools.task.metrics import (
    IdSet,
    ScoringError,
    Truth,
    check_ids,
    check_probabilities,
    get_metric,
    id_texts,
    numbers,
    score_frame,
)

VAL_PREDICTIONS = "val_predictions.csv"
MAX_CSV_BYTES = 512 * 1024 * 1024
COLUMN_MARGIN = 5  # columns beyond the submission's a predictions file may have (and be told they are extra)
BASE_CAP = 64 << 20  # what any predictions file may take, plus a margin that grows with the task's own files
SELF_REPORTED = re.compile(r"validation[ _]score\s*[:=]\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", re.I)


def read_artifact_csv(path: str | Path, max_bytes: int = MAX_CSV_BYTES, max_columns: int | None = None
                      ) -> pd.DataFrame:
    """Read a CSV a script wrote without following links and only if it is a regular, bounded file with at most
    `max_columns` columns (pandas spends seconds and kilobytes per column: a header of a million commas would
    cost gome, outside any sandbox limit, an hour and gigabytes)."""
    name = Path(path).name
    try:
        data = read_bytes(path, max_bytes)
    except FileNotFoundError:
        raise ScoringError(f"{name} was not written") from None
    except UnsafeFile as e:
        raise ScoringError(f"{e.strerror}") from None
    except OSError as e:
        raise ScoringError(f"{name} cannot be opened safely ({e.strerror})") from None
    if max_columns is not None:
        limit = 1024 + 256 * max_columns
        end = data.find(b"\n", 0, limit + 1)
        header = data[: end if end >= 0 else limit + 1]
        if len(header) > limit:
            raise ScoringError(f"{name}: its header line is over {limit} bytes; expected at most {max_columns} "
                               "columns")
        columns = len(next(csv.reader([header.decode("utf-8", errors="replace")]), []))
        if columns > max_columns:
            raise ScoringError(f"{name} has {columns} columns; expected at most {max_columns}")
    try:
        return pd.read_csv(io.BytesIO(data))
    except Exception as e:
        raise ScoringError(f"{name} is not a readable CSV ({type(e).__name__}: {str(e)[:300]})") from None


def _max_columns(task: Task) -> int:
    return len(task.submission_columns) + 1 + COLUMN_MARGIN


def output_caps(task: Task) -> dict[str, int]:
    """The most bytes gome reads of a script's predictions: generous for honest files (20x the sample
    submission's bytes per row, full precision), far below what a flood costs to parse."""
    sample = Path(task.data_dir) / task.sample_submission_file
    per_row = sample.stat().st_size / max(task.test_rows, 1) if sample.is_file() else 100
    return {VAL_PREDICTIONS: int(BASE_CAP + 20 * per_row * max(task.train_rows, 1)),
            task.submission_file: int(BASE_CAP + 20 * per_row * max(task.test_rows, 1))}


def check_submission(task: Task, path: str | Path) -> None:
    """Validate a submission the way MLE-bench's validator does: same columns and ids as the sample, one row
    each, no missing values, probabilities in range. Raises ScoringError saying what is wrong."""
    sub = read_artifact_csv(path, output_caps(task)[task.submission_file], _max_columns(task))
    columns, ids = _sample(Path(task.data_dir) / task.sample_submission_file, task.id_column)
    if set(sub.columns) != set(columns):
        raise ScoringError(f"columns {list(sub.columns)} differ from the sample submission's {list(columns)}")
    check_ids(sub[task.id_column], ids, exact=True)
    missing = np.zeros(len(sub), dtype=bool)
    for name in task.submission_columns:  # column by column: a sub-frame costs pandas more than the checks
        missing |= sub[name].isna().to_numpy()
    if missing.any():
        raise ScoringError(f"{int(missing.sum())} rows have missing values")
    if get_metric(task.metric).kind == "probability":
        numeric = numbers(sub, task.submission_columns)
        if np.isnan(numeric).any():
            raise ScoringError("probabilities must be numbers")
        check_probabilities(numeric)


@per_version(8)
def _sample(path: str, id_column: str) -> tuple[tuple[str, ...], IdSet]:
    """The sample submission's columns and ids, read once per version of the file (every step checks against it)."""
    sample = pd.read_csv(path)
    return tuple(sample.columns), IdSet(id_texts(sample[id_column]))


def score_validation(task: Task, path: str | Path, train: pd.DataFrame | Truth, min_rows: int | None = None
                     ) -> float:
    """Score val_predictions.csv (held-out rows of train, in the submission's format) with the task's metric:
    at least 5% of train's rows (or min_rows) must be predicted."""
    pred = read_artifact_csv(path, output_caps(task)[VAL_PREDICTIONS], _max_columns(task))
    min_rows = min(len(train), max(10, math.ceil(0.05 * len(train)))) if min_rows is None else min_rows
    return score_frame(
        get_metric(task.metric), train, pred, id_column=task.id_column, target_columns=task.target_columns,
        prediction_columns=task.submission_columns, positive_label=task.positive_label, exact_ids=False,
        min_rows=min_rows)


def grade(task: Task, submission: str | Path, answers: str | Path) -> float:
    """Score a submission against hidden answers (same ids, exactly) with the task's metric."""
    return score_frame(
        get_metric(task.metric), pd.read_csv(answers), read_artifact_csv(submission, max_columns=_max_columns(task)),
        id_column=task.id_column,
        target_columns=task.target_columns, prediction_columns=task.submission_columns,
        positive_label=task.positive_label, exact_ids=True)


def parse_self_reported(stdout: str) -> float | None:
    """The last `validation score: X` the script printed: a fallback, never compared with a harness score."""
    found = SELF_REPORTED.findall(stdout or "")
    try:
        value = float(found[-1]) if found else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
