"""Staging a blend's candidates: predictions copied (never through a link); for a seed, their re-runs. The
validation answers, indexed once per version of train.csv."""
import os

import pandas as pd

from gome.state.records import Task
from gome.tools.run.experiment import load_truth, stage_candidates
from gome.tools.run.folder import RunFolder
from gome.tools.task.loading import load_task

TASK = Task(name="t", data_dir="/nonexistent", metric="roc_auc", direction="maximize", target_columns=["y"],
            id_column="id", submission_file="submission.csv", submission_columns=["y"])


def _outputs(folder, tag):
    folder.path.mkdir(parents=True, exist_ok=True)
    for name in ("val_predictions.csv", "submission.csv"):
        (folder.path / name).write_text(f"id,y\n1,{tag}\n")


def test_candidates_are_copied_and_a_seed_takes_their_reruns(tmp_path):
    run = RunFolder(tmp_path)
    _outputs(run.experiment("0001"), "0.1")
    _outputs(run.experiment("0002"), "0.2")
    _outputs(run.rerun("0001", 1), "0.15")
    blend = run.rerun("0003", 1)
    blend.path.mkdir(parents=True)
    # a re-run of the blend needs its parts' re-runs with that seed: fixed predictions would look robust
    assert stage_candidates(run, blend, TASK, ["0001", "0002"], seed=1).startswith("candidate 0002 has no usable")
    _outputs(run.rerun("0002", 1), "0.25")
    assert stage_candidates(run, blend, TASK, ["0001", "0002"], seed=1) is None
    assert (blend.candidates / "0001/submission.csv").read_text().endswith("0.15\n")
    assert (blend.candidates / "0002/val_predictions.csv").read_text().endswith("0.25\n")
    assert not (blend.candidates / "0001/submission.csv").is_symlink()
    first = run.experiment("0004")
    first.path.mkdir()
    assert stage_candidates(run, first, TASK, ["0001", "0002"]) is None  # the blend's own run: the originals
    assert (first.candidates / "0002/submission.csv").read_text().endswith("0.2\n")


def test_a_candidate_whose_prediction_is_a_link_is_refused_by_name(tmp_path):
    run = RunFolder(tmp_path / "run")
    _outputs(run.experiment("0001"), "0.1")
    secret = tmp_path / "secret.csv"
    secret.write_text("id,y\n1,0.9\n")
    other = run.experiment("0002")
    other.path.mkdir(parents=True)
    (other.path / "val_predictions.csv").symlink_to(secret)
    blend = run.experiment("0003")
    blend.path.mkdir(parents=True)
    missing = stage_candidates(run, blend, TASK, ["0001", "0002"])
    assert missing is not None and missing.startswith("candidate 0002 has no usable val_predictions.csv")
    assert not (blend.candidates / "0002/val_predictions.csv").exists()


def test_the_validation_answers_are_indexed_once_per_version_of_train(breast_cancer):
    task = load_task(breast_cancer)
    truth = load_truth(task)
    assert load_truth(task) is truth and len(truth) == task.train_rows
    train_csv = breast_cancer / "public" / "train.csv"
    train = pd.read_csv(train_csv)
    train.assign(benign=1 - train.benign).to_csv(train_csv.with_name("new.csv"), index=False)
    old = train_csv.stat()
    os.utime(train_csv.with_name("new.csv"), ns=(old.st_atime_ns, old.st_mtime_ns))  # as `cp -p` or rsync -t would
    os.replace(train_csv.with_name("new.csv"), train_csv)  # replaced whole, keeping its mtime
    flipped = load_truth(task)
    first = str(train.id[0])
    assert flipped is not truth and flipped.targets.loc[first, "benign"] == 1 - truth.targets.loc[first, "benign"]
