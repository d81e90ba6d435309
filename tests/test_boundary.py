"""The boundary, attacked through whole runs: what a script leaves in its folder, a damaged or shared run folder,
malformed replies and a full disk each cost a step or get a clear refusal, never the host, the record or the run.

The executor-level attacks (bombs, escapes, floods, secrets, links, FIFOs) are in gome.evals.hostile.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from gome import RunConfig, run_gome
from gome.tools.run.folder import RunFolder
from gome.tools.sandbox.isolation import probe
from gome.tools.sandbox.quota import unmount_stale
from gome.tools.task.loading import load_task
from gome.tools.task.submission import grade
from tests.conftest import EXAMPLES
from tests.fakes.chat import KindChatModel, ScriptedChatModel
from tests.fakes.scripts import PLAIN_LOGREG, SCALED_LOGREG, diagnosis, hypotheses, script

ROOT = Path(__file__).resolve().parents[1]
NO_RERUNS = {"reruns": 0}
FULL = probe().full


def needs_full_chain():
    if not FULL:
        message = f"the full isolation chain is not available here: {'; '.join(probe().missing)}"
        if os.environ.get("GOME_REQUIRE_SANDBOX"):
            pytest.fail(message)
        pytest.skip(message)


def run_json(run_dir) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


@pytest.fixture
def host_secret(tmp_path):
    """A root-only file on the host that no script and no prompt may see or change."""
    path = tmp_path / "host-secret.txt"
    path.write_text("HOST-SECRET-7f3a\n")
    path.chmod(0o600)
    return path


def test_links_a_script_leaves_reach_neither_the_host_nor_the_record(breast_cancer, tmp_path, host_secret):
    needs_full_chain()
    attack = f'''# Approach: leave links for gome to follow
import os
print("x" * 1000)
for name, target in (("stdout.txt", {str(host_secret)!r}), ("stderr.txt", {str(host_secret)!r}),
                     ("submission.csv", "../../0001/submission.csv"), ("val_predictions.csv", {str(host_secret)!r}),
                     ("metrics.json", "../../0001/metrics.json"), ("main.py", {str(host_secret)!r}),
                     ("rerun-seed1", "/etc")):
    if os.path.lexists(name):
        os.remove(name)
    os.symlink(target, name)
'''
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"), hypotheses(("leave links", "data", "minimal", 3)),
        script(attack), diagnosis("ran", True, "it says it is better"),
        hypotheses(("scale", "features", "moderate", 4)), script(SCALED_LOGREG), diagnosis("ran", True, "better")])
    final = run_gome(breast_cancer, RunConfig(steps=3, select={"top_k": 2, "reruns": 1}, repair={"rounds": 0}),
                     out=tmp_path / "runs", chat_model=model)
    run_dir = Path(final["run_dir"])
    assert final["status"] == "succeeded" and model.remaining == 0
    assert host_secret.read_text() == "HOST-SECRET-7f3a\n" and oct(host_secret.stat().st_mode)[-3:] == "600"
    steps = run_json(run_dir)["steps"]
    assert [s["id"] for s in steps] == ["0001", "0002", "0003"]  # no record erased or replaced
    attacked = json.loads((run_dir / "experiments/0002/result.json").read_text())
    assert not attacked["submission_valid"] and "link" in attacked["submission_error"]
    assert "link" in attacked["val_error"] and attacked["score"] is None
    assert (run_dir / "experiments/0002/main.py").read_text() == attack  # gome's copy, not the link
    assert (run_dir / "experiments/0002/stdout.txt").read_text().startswith("x" * 1000)
    assert not (run_dir / "experiments/0002/work").exists()
    assert final["selected"]["id"] in ("0001", "0003")
    task = load_task(breast_cancer)
    assert grade(task, run_dir / "best/submission.csv", breast_cancer / "private/answers.csv") > 0.98
    seen = [c["prompt"] for c in model.calls] + [(run_dir / n).read_text() for n in ("report.html", "report.md")]
    assert not any("HOST-SECRET" in text for text in seen)


def test_a_script_that_deletes_its_own_main_py_costs_nothing(breast_cancer, tmp_path):
    selfish = PLAIN_LOGREG + '\nos.remove("main.py")\nos.symlink("/etc", "rerun-seed1")\n'
    model = ScriptedChatModel(replies=[script(selfish), diagnosis("ran", True, "works"),
                                       hypotheses(("scale", "features", "moderate", 4)),
                                       script(SCALED_LOGREG.replace("\nmodel = make_model()\nmodel.fit",
                                                                    "\nos.remove('main.py')\nmodel = make_model()\n"
                                                                    "model.fit")),
                                       diagnosis("ran", True, "better")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"top_k": 2, "reruns": 1}), out=tmp_path / "runs",
                     chat_model=model)
    assert final["status"] == "succeeded"
    select = json.loads((Path(final["run_dir"]) / "select.json").read_text())
    assert all(c["rerun_scores"][0] is not None for c in select["candidates"])  # re-runs ran from gome's copy


def finished_run(breast_cancer, tmp_path) -> Path:
    model = ScriptedChatModel(replies=[script(PLAIN_LOGREG), diagnosis("ran", True, "works")])
    final = run_gome(breast_cancer, RunConfig(steps=1, select=NO_RERUNS), out=tmp_path / "runs", chat_model=model)
    return Path(final["run_dir"])


def gome_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOME_MODEL": "python:tests.fakes.server_model:build", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gome.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_second_process_on_a_run_folder_is_refused_and_told_who_holds_it(breast_cancer, tmp_path):
    run_dir = finished_run(breast_cancer, tmp_path)
    with RunFolder(run_dir).lock("run"):
        second = gome_cli("resume", str(run_dir))
    assert second.returncode == 2, second.stderr
    assert f"is in use by gome run (pid {os.getpid()}" in second.stderr and "Traceback" not in second.stderr
    assert gome_cli("resume", str(run_dir)).returncode == 0  # the lock went with its holder


def driver(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.drivers.kill_run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run SIGKILLed while its second script trained: one experiment finished."""
    base = tmp_path_factory.mktemp("killed")
    task = base / "task"
    shutil.copytree(EXAMPLES / "breast-cancer", task)
    first = driver("run", str(task), str(base / "runs"), "script:2")
    assert first.returncode == -9, first.stderr[-2000:]
    run_dir = Path(first.stdout.splitlines()[0])
    assert [p.parent.name for p in run_dir.glob("experiments/*/metrics.json")] == ["0001"]
    yield run_dir
    for work in run_dir.glob("experiments/*/work"):  # the image the killed run left mounted
        unmount_stale(work)


@pytest.mark.parametrize("damage, message", [
    ("missing", "is missing"), ("empty", "holds no checkpoint of this run"), ("garbage", "is damaged")])
def test_a_damaged_checkpoint_database_is_refused_and_nothing_is_run_again(killed_run, tmp_path, damage, message):
    run_dir = tmp_path / "run"
    shutil.copytree(killed_run, run_dir, symlinks=True)
    db = run_dir / "checkpoints.sqlite"
    for part in ("", "-wal", "-shm"):  # the database is the file and its write-ahead log: a replaced one has none
        (run_dir / f"checkpoints.sqlite{part}").unlink(missing_ok=True)
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "garbage":
        db.write_bytes(os.urandom(8192))
    before = (run_dir / "experiments/0001/result.json").stat().st_mtime_ns
    out = gome_cli("resume", str(run_dir))
    assert out.returncode == 2, out.stderr[-2000:]
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("gome:") and "resuming" not in ln]
    assert message in line and "will not start the run over" in line and "Traceback" not in out.stderr
    assert (run_dir / "experiments/0001/result.json").stat().st_mtime_ns == before
    assert sorted(p.name for p in (run_dir / "experiments").iterdir()) == ["0001", "0002"]
    assert run_json(run_dir)["status"] == "running"  # as the kill left it: nothing started


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_moved_or_copied_run_folder_resumes_where_it_is(killed_run, tmp_path, how):
    original = tmp_path / "original"
    shutil.copytree(killed_run, original, symlinks=True)
    before = {p: p.stat().st_mtime_ns for p in original.rglob("*") if p.is_file()}
    elsewhere = tmp_path / "elsewhere" / original.name
    elsewhere.parent.mkdir()
    (shutil.move if how == "moved" else shutil.copytree)(original, elsewhere)
    out = driver("resume", str(elsewhere))
    assert out.returncode == 0, out.stderr[-3000:]
    run = run_json(elsewhere)
    assert run["status"] == "succeeded" and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003"]
    assert (elsewhere / "best/submission.csv").is_file() and (elsewhere / "report.html").is_file()
    if how == "copied":  # the original is untouched
        assert {p: p.stat().st_mtime_ns for p in original.rglob("*") if p.is_file()} == before
    else:
        assert not original.exists()


def test_malformed_replies_cost_a_step_never_the_run(breast_cancer, tmp_path):
    nested = '{"a": ' * 3000 + "1" + "}" * 3000  # 2 KB of nesting: json.loads raises RecursionError
    blocks = AIMessage(content=[{"type": "text", "text": "Here it is.\n\n```python\n"},
                                {"type": "text", "text": PLAIN_LOGREG + "```\n"}])
    garbage = "\x00not python " * 90_000  # about 1 MB
    model = ScriptedChatModel(replies=[
        blocks,  # a reply whose content is a list of blocks (Anthropic, the Responses API)
        nested, nested, nested,  # the diagnosis: nested JSON, three ways; the fallback diagnosis steps in
        hypotheses(("scale", "features", "moderate", 4)),
        garbage, garbage,  # no script in either reply: the step is lost, not the run
        ], unsupported={"function_calling"})
    final = run_gome(breast_cancer, RunConfig(steps=2, select=NO_RERUNS, late_stage=1), out=tmp_path / "runs",
                     chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    steps = run_json(final["run_dir"])["steps"]
    assert steps[0]["status"] == "ok" and steps[0]["accepted"]
    assert steps[1]["status"] == "no_script"
    retry = model.calls[-1]["prompt"]
    assert len(retry) < len(model.calls[-2]["prompt"]) + 10_000  # the 1 MB reply is not echoed back whole
    usage = [json.loads(line) for line in (Path(final["run_dir"]) / "usage.jsonl").read_text().splitlines()]
    assert any("nests too deeply" in u["error"] for u in usage)


def test_a_full_disk_ends_the_run_with_a_final_status(breast_cancer, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], check=True)
    try:
        def fill_then_diagnose(prompt):
            with open(small / "filler", "wb") as f:  # something else on the machine takes the disk
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:
                    pass
            return diagnosis("ran", True, "works")

        model = KindChatModel(by_kind={"text": script(PLAIN_LOGREG), "Diagnosis": fill_then_diagnose,
                                       "HypothesisSet": hypotheses(("scale", "features", "moderate", 4))})
        from gome.cli import EXIT_NO_SUBMISSION, main

        code = main(["run", str(breast_cancer), "--steps", "3", "--reruns", "0", "--out", str(small / "runs")],
                    chat_model=model)
        assert code == EXIT_NO_SUBMISSION
        [run_dir] = (small / "runs").iterdir()
        run = run_json(run_dir)
        assert run["status"] == "crashed" and "no space left" in run["message"]
        assert "No space left on device" in (run_dir / "crash.txt").read_text()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_killed_during_a_final_re_run_the_run_resumes(tmp_path):
    """The re-run's quota image stays mounted after the kill; resuming detaches it and runs the re-run again."""
    task = tmp_path / "task"
    shutil.copytree(EXAMPLES / "breast-cancer", task)
    first = driver("run", str(task), str(tmp_path / "runs"), "script:4", env={"GOME_DRIVER_RERUNS": "1"})
    assert first.returncode == -9, first.stderr[-2000:]
    run_dir = Path(first.stdout.splitlines()[0])
    second = driver("resume", str(run_dir))
    assert second.returncode == 0, second.stderr[-3000:]
    select = json.loads((run_dir / "select.json").read_text())
    assert all(c["rerun_scores"] and c["rerun_scores"][0] is not None for c in select["candidates"])
    assert not any(os.path.ismount(p) for p in run_dir.glob("experiments/*/rerun-seed1/work"))
