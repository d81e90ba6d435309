"""Building the suite: `gome tasks build` writes each task in MLE-bench's prepared layout and checks its files
against the checksums committed in checksums.json, so every machine grades against the same data.

    <out>/<task>/public/      description.md, train.csv, test.csv, sample_submission.csv (+ images/)
    <out>/<task>/private/     answers.csv
    <out>/<task>/task.toml    metric, direction, columns
    <out>/<task>/leaderboard.csv   reference population, best first (scores depend on library versions)
    <out>/<task>/suite.json   source, removed leaks, trivial score, library versions
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from gome.evals.suite import references
from gome.evals.suite.catalog import RESERVED, TASKS, TaskSpec, get_spec
from gome.tools.task.metrics import get_metric

SEED = 0
TEST_FRACTION = 0.2
CHECKSUMS = Path(__file__).with_name("checksums.json")
VERSIONED = ("leaderboard.csv", "suite.json")  # outputs of model fitting: not checksummed

METRIC_TEXT = {
    "roc_auc": "the area under the ROC curve between the predicted probability and the observed label",
    "log_loss": "log loss (cross-entropy) of the predicted probabilities; lower is better",
    "accuracy": "accuracy: the share of test rows whose predicted label is right",
    "f1": "F1 score of the positive class ({positive})",
    "f1_macro": "macro-averaged F1 score: the mean over classes of each class's F1",
    "qwk": "quadratic weighted kappa between predicted and observed ratings",
    "rmse": "root mean squared error; lower is better",
    "mae": "mean absolute error; lower is better",
    "rmsle": "root mean squared logarithmic error, sqrt(mean((log(1+p) - log(1+y))^2)); lower is better",
}


class SuiteError(RuntimeError):
    """A suite build that does not match the committed checksums, or a task that breaks the suite's rules."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_checksums(task_dir: Path) -> dict[str, str]:
    """sha256 of every data file of a built task; an images/ folder counts as one entry (hash of its hashes)."""
    out = {}
    for path in sorted(p for p in task_dir.rglob("*") if p.is_file() and p.name not in VERSIONED):
        rel = path.relative_to(task_dir).as_posix()
        if "/images/" in f"/{rel}":
            continue
        out[rel] = _sha256(path)
    images = task_dir / "public" / "images"
    if images.is_dir():
        digest = hashlib.sha256()
        for path in sorted(images.iterdir()):
            digest.update(f"{path.name}:{_sha256(path)}\n".encode())
        out["public/images/"] = digest.hexdigest()
    return out


def _check_rules(spec: TaskSpec, frame: pd.DataFrame) -> None:
    package, _, item = spec.source.partition(":")
    for reserved in RESERVED:
        r_package, _, r_item = reserved.partition(":")
        if package.lower() == r_package.lower() and r_item in ("*", item):
            raise SuiteError(f"{spec.name}: {spec.source} is reserved for independent evaluation")
    absent = [c for c in [spec.target, *spec.leaks] if c not in frame.columns]
    if absent:
        raise SuiteError(f"{spec.name}: column(s) {absent} not in {spec.source}; columns: {list(frame.columns)}")


def _description(spec: TaskSpec, classes: list[str], submission_columns: list[str]) -> str:
    metric = get_metric(spec.metric)
    files = "train.csv holds the target column; test.csv the same columns without it"
    if spec.modality == "image":
        files = "train.csv holds id and the target; test.csv the ids to predict; images/<id>.png the images"
    if metric.kind == "probability" and spec.kind == "multiclass":
        fmt = f"one probability column per class ({', '.join(classes)}), each row summing to 1"
    elif metric.kind == "probability":
        fmt = f"`{spec.target}`: the probability that {spec.target} is {spec.positive_label}"
    elif metric.kind == "label":
        fmt = f"`{spec.target}`: the predicted label, one of {', '.join(classes)}"
    else:
        fmt = f"`{spec.target}`: the predicted value"
    return textwrap.dedent(f"""\
        # {spec.title}

        {spec.about}

        ## Data
        {files}. Each row has an `id`.

        ## Evaluation
        Submissions are scored by {METRIC_TEXT[spec.metric].format(positive=spec.positive_label)}.

        ## Submission
        A CSV with a header and one row per id of test.csv: `id,{','.join(submission_columns)}`, with {fmt}.
        See sample_submission.csv.
        """)


def _toml(spec: TaskSpec) -> str:
    lines = ["[task]", f'name = "{spec.name}"', f'metric = "{spec.metric}"',
             f'direction = "{get_metric(spec.metric).direction}"', 'id_column = "id"',
             f'target_columns = ["{spec.target}"]', 'submission_file = "submission.csv"']
    if spec.positive_label is not None:
        lines.append(f'positive_label = "{spec.positive_label}"')
    return "\n".join(lines) + "\n"


def build_task(spec: TaskSpec, out: str | Path, *, leaderboard: bool = True) -> Path:
    """Write one task folder (replacing any earlier build of it) and return it."""
    frame = spec.load()
    _check_rules(spec, frame)
    frame = frame.drop(columns=list(spec.leaks)).reset_index(drop=True)
    frame.insert(0, "id", np.random.default_rng(SEED).permutation(len(frame)) + 10_000)  # ids carry no order
    classes = sorted(frame[spec.target].astype(str).unique()) if spec.kind != "regression" else []
    train, test = train_test_split(frame, test_size=TEST_FRACTION, random_state=SEED,
                                   stratify=frame[spec.target] if classes else None)
    task_dir = Path(out) / spec.name
    if task_dir.exists():
        shutil.rmtree(task_dir)
    public, private = task_dir / "public", task_dir / "private"
    public.mkdir(parents=True)
    private.mkdir()

    if spec.modality == "image":
        from PIL import Image

        (public / "images").mkdir()
        for row in frame.itertuples():
            Image.fromarray(row.pixels).save(public / "images" / f"{row.id}.png", compress_level=9)
        train, test = train.drop(columns=["pixels"]), test.drop(columns=["pixels"])
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=[spec.target]).to_csv(public / "test.csv", index=False)
    answers = test[["id", spec.target]]
    answers.to_csv(private / "answers.csv", index=False)

    metric = get_metric(spec.metric)
    if metric.kind == "probability" and spec.kind == "multiclass":
        sample = pd.DataFrame({"id": test["id"], **{c: 1 / len(classes) for c in classes}})
    elif metric.kind == "regression":
        sample = pd.DataFrame({"id": test["id"], spec.target: round(float(train[spec.target].mean()), 3)})
    else:
        sample = pd.DataFrame({"id": test["id"], spec.target: 0.5 if metric.kind == "probability" else classes[0]})
    sample.to_csv(public / "sample_submission.csv", index=False)
    (public / "description.md").write_text(_description(spec, classes, [c for c in sample.columns if c != "id"]))
    (task_dir / "task.toml").write_text(_toml(spec))

    meta = {"name": spec.name, "source": spec.source, "kind": spec.kind, "modality": spec.modality,
            "metric": spec.metric, "rows": {"train": len(train), "test": len(test)},
            "leaks_removed": spec.leaks,
            "trivial_score": references.trivial_score(spec, train, test, answers, classes),
            "built_with": {p: version(p) for p in ("scikit-learn", "numpy", "pandas")}}
    if leaderboard:
        board = references.leaderboard(spec, train, test, answers, public, classes)
        board.to_csv(task_dir / "leaderboard.csv", index=False)
        meta["teams"] = len(board)
    (task_dir / "suite.json").write_text(json.dumps(meta, indent=2) + "\n")
    return task_dir


def verify(task_dir: Path, expected: dict[str, str]) -> list[str]:
    """Differences between a built task's files and the committed checksums (empty when they match)."""
    got = file_checksums(task_dir)
    return [f"{task_dir.name}/{rel}: {'missing' if rel not in got else 'differs'}" for rel, sha in expected.items()
            if got.get(rel) != sha] + [f"{task_dir.name}/{rel}: not in checksums.json" for rel in got
                                       if rel not in expected]


def build_suite(out: str | Path, names: list[str] | None = None, *, leaderboard: bool = True,
                record: bool = False, on_task: Callable[[str, Path], None] | None = None) -> list[Path]:
    """Build the named tasks (default: all) and verify them against checksums.json; `record` rewrites the
    checksums instead (for a deliberate change to the suite). Raises SuiteError listing every mismatch."""
    specs = [get_spec(n) for n in names] if names else list(TASKS)
    committed = json.loads(CHECKSUMS.read_text()) if CHECKSUMS.is_file() else {}
    built, problems = [], []
    for spec in specs:
        task_dir = build_task(spec, out, leaderboard=leaderboard)
        built.append(task_dir)
        if record:
            committed[spec.name] = file_checksums(task_dir)
        elif spec.name not in committed:
            problems.append(f"{spec.name}: no checksums committed (build with --record to add them)")
        else:
            problems += verify(task_dir, committed[spec.name])
        if on_task:
            on_task(spec.name, task_dir)
    if record:
        CHECKSUMS.write_text(json.dumps(dict(sorted(committed.items())), indent=1) + "\n")
    if problems:
        raise SuiteError("the built suite differs from checksums.json (different package versions?):\n  "
                         + "\n  ".join(problems))
    return built


def suite_table(out: str | Path) -> str:
    """A markdown table of the built tasks: kind, metric, rows, and the trivial / reference-median / gold scores."""
    from gome.evals.grader import leaderboard_scores, thresholds

    lines = ["| task | kind | modality | metric | train / test rows | trivial | reference median | gold | teams |",
             "|---|---|---|---|---|---|---|---|---|"]
    for spec in TASKS:
        task_dir = Path(out) / spec.name
        if not (task_dir / "suite.json").is_file():
            continue
        meta = json.loads((task_dir / "suite.json").read_text())
        median = gold = teams = "-"
        if (task_dir / "leaderboard.csv").is_file():
            scores = leaderboard_scores(task_dir / "leaderboard.csv")
            t = thresholds(scores, get_metric(spec.metric).direction == "minimize")
            median, gold, teams = f"{t['median_threshold']:.4g}", f"{t['gold_threshold']:.4g}", len(scores)
        lines.append(f"| {spec.name} | {spec.kind} | {spec.modality} | {spec.metric} | {meta['rows']['train']} / "
                     f"{meta['rows']['test']} | {meta['trivial_score']:.4g} | {median} | {gold} | {teams} |")
    return "\n".join(lines) + "\n"
