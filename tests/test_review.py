"""--review: the run pauses before each new script; a person approves, edits or rejects it, and it resumes."""

import json
from pathlib import Path

from gome import RunConfig, run_gome
from gome.cli import EXIT_OK, EXIT_PAUSED, main
from gome.graph.run import resume_gome
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import BUGGY_DRAFT, PLAIN_LOGREG, SCALED_LOGREG, diagnosis, hypotheses, script


def test_review_pauses_before_each_script_and_takes_edits_approvals_and_rejections(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[
        script(BUGGY_DRAFT), diagnosis("ran", True, "works"),  # the reviewer fixes the buggy draft by hand
        hypotheses(("standardize", "features", "moderate", 4)), script(SCALED_LOGREG), diagnosis("ran", True, "b"),
        hypotheses(("something odd", "model", "rewrite", 2)), script(SCALED_LOGREG.replace("C=1.0", "C=9"))])
    # (a rejected script is not run, so it is not diagnosed: no fourth diagnosis reply)
    cfg = RunConfig(steps=3, review=True, select={"reruns": 0})
    paused = run_gome(breast_cancer, cfg, out=tmp_path, chat_model=model)
    run_dir = Path(paused["run_dir"])
    assert paused["status"] == "paused" and paused["interrupts"][0]["id"] == "0001"
    assert 'TARGET = "target"' in paused["interrupts"][0]["code"]
    assert not (run_dir / "experiments/0001/result.json").exists()  # nothing ran before the answer

    for wrong, why in (("approve", "the answer must be an object"), ({"action": "aprove"}, "action must be one of"),
                       ({"action": "edit"}, "an edit needs the new script")):
        paused = resume_gome(run_dir, chat_model=model, resume=wrong)  # asked again, saying why
        assert paused["status"] == "paused" and paused["interrupts"][0]["id"] == "0001"
        assert why in paused["interrupts"][0]["error"]
    assert not (run_dir / "experiments/0001/result.json").exists()
    paused = resume_gome(run_dir, chat_model=model, resume={"action": "edit", "code": PLAIN_LOGREG})
    assert paused["status"] == "paused" and paused["interrupts"][0]["id"] == "0002"
    assert (run_dir / "experiments/0001/main.py").read_text() == PLAIN_LOGREG
    paused = resume_gome(run_dir, chat_model=model, resume={"action": "approve"})
    assert paused["interrupts"][0]["id"] == "0003"
    final = resume_gome(run_dir, chat_model=model, resume={"action": "reject"})

    assert final["status"] == "succeeded" and model.remaining == 0
    steps = json.loads((run_dir / "run.json").read_text())["steps"]
    assert [s["status"] for s in steps] == ["ok", "ok", "no_script"]
    assert steps[0]["accepted"] and steps[1]["improved_best"] and "reviewer" in steps[2]["decision"]
    assert [json.loads((run_dir / f"experiments/{i}/review.json").read_text())["action"]
            for i in ("0001", "0002", "0003")] == ["edit", "approve", "reject"]


def test_review_from_the_command_line(breast_cancer, tmp_path, capsys):
    model = ScriptedChatModel(replies=[script(PLAIN_LOGREG), diagnosis("ran", True, "works")])
    code = main(["run", str(breast_cancer), "--steps", "1", "--review", "--reruns", "0", "--out",
                 str(tmp_path / "runs")], chat_model=model)
    assert code == EXIT_PAUSED
    err = capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    assert "waiting for review of experiment 0001" in err and f"gome resume {run_dir} --approve" in err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "paused"
    assert main(["resume", str(run_dir), "--approve"], chat_model=model) == EXIT_OK
    assert json.loads((run_dir / "run.json").read_text())["status"] == "succeeded"
