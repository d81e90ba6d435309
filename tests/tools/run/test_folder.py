"""The run folder: the one module that knows where an experiment's files live, and that never follows a link the
script may have left there."""
import json
import os

from gome.state.records import Experiment
from gome.tools.run.folder import RunFolder, run_json_text


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


def _record(run, exp_id, **fields):
    folder = run.experiment(exp_id)
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_experiment(Experiment(id=exp_id, trace=0, step=int(exp_id) - 1, status="ok", score=0.9,
                                       score_source="harness", submission_valid=True, **fields))


def test_the_journal_shows_a_record_rewritten_after_it_was_read(tmp_path):
    run = RunFolder(tmp_path)
    _record(run, "0001", decision="keep")
    assert [e.decision for e in run.journal()] == ["keep"]
    _record(run, "0001", decision="drop")  # the same size: gome's own rewrite must not be hidden by the cache
    assert [e.decision for e in run.journal()] == ["drop"]
    metrics = run.experiment("0001").path / "metrics.json"
    raw = json.loads(metrics.read_text())
    with open(metrics, "w") as f:  # rewritten in place by someone else
        json.dump({**raw, "decision": "rewritten by hand"}, f)
    assert [e.decision for e in run.journal()] == ["rewritten by hand"]


def test_run_json_reads_back_the_same_with_one_step_per_line():
    steps = [{"id": "0001", "score": 0.5, "hypothesis": "a, b\nand {c}"}, {"id": "0002", "score": None}]
    run = {"status": "running", "config": {"steps": 2, "nested": {"x": [1, 2]}}, "steps": steps,
           "mode_switches": [], "best": None}
    text = run_json_text(run)
    assert json.loads(text) == run
    lines = text.splitlines()
    for step in steps:  # a reader can grep or diff run.json step by step
        assert sum(line.strip().rstrip(",") == json.dumps(step) for line in lines) == 1


def test_run_json_lists_the_experiments_in_id_order(tmp_path):
    run = RunFolder(tmp_path)
    for exp_id in ("0003", "0001", "0002"):
        _record(run, exp_id)
    run.experiment("0004").path.mkdir()  # running: no record yet
    run.update_run_json(status="running")
    written = json.loads(run.run_json.read_text())
    assert [s["id"] for s in written["steps"]] == ["0001", "0002", "0003"] and written["status"] == "running"
    _record(run, "0002", switch="stalled")  # rewritten: the rebuild shows it
    assert run.update_run_json()["mode_switches"] == [{"after": "0002", "trace": 0, "switch": "stalled"}]
    assert json.loads(run.run_json.read_text())["steps"][1]["switch"] == "stalled"


def test_run_json_keeps_what_another_process_wrote_into_it(tmp_path):
    """gome rebuilds run.json from its own last write while the file is that version; a change made since (another
    tool, a person's note) is read back, not overwritten by the remembered copy."""
    run = RunFolder(tmp_path)
    _record(run, "0001")
    run.update_run_json(status="running", started_at=1.0)
    raw = json.loads(run.run_json.read_text())
    with open(run.run_json, "w") as f:  # rewritten in place, the same inode
        json.dump({**raw, "status": "paused", "note": "by hand"}, f)
    _record(run, "0002")
    written = run.update_run_json()
    assert written["status"] == "paused" and written["note"] == "by hand" and written["started_at"] == 1.0
    assert json.loads(run.run_json.read_text())["note"] == "by hand"
    assert [s["id"] for s in written["steps"]] == ["0001", "0002"]
    assert run.update_run_json(status="running")["note"] == "by hand"  # and the next rebuild keeps it too
