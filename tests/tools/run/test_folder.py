"""The run folder: the one module that knows where an experiment's files live, and that never follows a link the
script may have left there."""
import os

from gome.state.records import Experiment
from gome.tools.run.folder import RunFolder


def test_the_journal_is_read_back_typed_and_in_order(tmp_path):
    run = RunFolder(tmp_path)
    for i, score in ((2, 0.91), (1, None)):
        folder = run.experiment(f"000{i}")
        folder.path.mkdir(parents=True)
        folder.write_experiment(Experiment(id=f"000{i}", trace=0, step=i - 1, status="ok" if score else "error",
                                           score=score, score_source="harness" if score else None,
                                           submission_valid=bool(score), buggy=not score))
    run.experiment("0003").path.mkdir()  # running: no record yet
    journal = run.journal()
    assert [e.id for e in journal] == ["0001", "0002"]
    assert [e.id for e in journal.good] == ["0002"] and run.finished() == 2


def test_a_record_or_script_left_as_a_link_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root-only")
    run = RunFolder(tmp_path / "run")
    folder = run.experiment("0001")
    folder.path.mkdir(parents=True)
    folder.main.symlink_to(secret)
    (folder.path / "metrics.json").symlink_to(secret)
    assert folder.read_code() is None and folder.read_experiment() is None
    assert folder.main not in folder.files()


def test_failed_attempts_are_kept_in_order_with_their_code(tmp_path):
    folder = RunFolder(tmp_path).experiment("0001")
    folder.path.mkdir(parents=True)
    for k in range(11):  # attempts/10 comes after attempts/9
        folder.write_code(f"print({k})\n")
        folder.archive_attempt(k, {"status": "error", "detail": f"attempt {k}"})
    folder.write_code("print('repaired')\n")
    assert [a["attempt"] for a in folder.attempts()] == list(range(11))
    assert folder.attempts()[10]["detail"] == "attempt 10"
    assert folder.attempt_code(3) == "print(3)\n" and folder.read_code() == "print('repaired')\n"


def test_starting_afresh_removes_a_link_in_the_way_and_not_its_target(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    run = RunFolder(tmp_path / "run")
    run.experiment("0001").path.mkdir(parents=True)  # the script could write here: rerun-seed1 is its link
    os.symlink(target, run.rerun("0001", 1).path)
    folder = run.rerun("0001", 1).fresh()
    assert folder.path.is_dir() and not folder.path.is_symlink()
    assert (target / "keep.txt").read_text() == "x"
