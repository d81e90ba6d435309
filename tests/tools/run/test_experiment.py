"""Staging a blend's candidates: predictions copied (never through a link); for a seed, their re-runs."""
from gome.state.records import Task
from gome.tools.run.experiment import stage_candidates
from gome.tools.run.folder import RunFolder

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
