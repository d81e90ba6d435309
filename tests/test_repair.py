"""Implement, then judge: failed scripts are repaired inside their step, ideas that failed only in their
implementation stay untested, the proposer steers by memory and refutations, and the late stage blends."""

import json
import os
import re
from pathlib import Path

from gome import RunConfig, run_gome
from gome.nodes.template import baseline_template, blend_template
from gome.tools.task.loading import load_task
from tests.conftest import EXAMPLES
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import BUGGY_DRAFT, PLAIN_LOGREG, SCALED_LOGREG, SHALLOW_TREE, diagnosis, hypotheses, script

ONE_REPAIR = {"rounds": 1, "debug_rows": 0}
# A class no installed package has (a name that lives elsewhere is moved there without a repair: see below).
WRONG_IMPORT = SCALED_LOGREG.replace("from sklearn.linear_model import LogisticRegression",
                                     "from sklearn.ensemble import XGBoostingClassifier\n"
                                     "from sklearn.linear_model import LogisticRegression")


def run_dir_of(final) -> Path:
    return Path(final["run_dir"])


def record(final, exp_id: str) -> dict:
    return json.loads((run_dir_of(final) / "experiments" / exp_id / "metrics.json").read_text())


def prompts_with(model, text: str) -> list[str]:
    return [c["prompt"] for c in model.calls if text in c["prompt"]]


def test_a_wrong_import_is_stopped_before_running_and_repaired_in_the_same_step(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),
        script(WRONG_IMPORT),  # the model reaches for a class sklearn does not have
        script(SCALED_LOGREG),  # the repair, told which import does not resolve
        diagnosis("ran", True, "scaling helped")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    exp = record(final, "0002")
    assert exp["attempts"] == 2 and exp["status"] == "ok" and exp["score_source"] == "harness"
    assert exp["accepted"] and exp["verdict"] == "confirmed"
    assert sorted(p.name for p in (run_dir_of(final) / "experiments").iterdir()) == ["0001", "0002"]  # one step
    first = json.loads((run_dir_of(final) / "experiments/0002/attempts/0/result.json").read_text())
    assert first["phase"] == "static" and first["runtime_s"] == 0.0  # nothing ran
    assert "cannot import name 'XGBoostingClassifier' from 'sklearn.ensemble'" in first["detail"]
    assert "XGBoostingClassifier" in (run_dir_of(final) / "experiments/0002/attempts/0/main.py").read_text()
    [repair_prompt] = prompts_with(model, "this is repair 1 of at most 3")
    assert "cannot import name 'XGBoostingClassifier'" in repair_prompt and "Standardize the features" in repair_prompt
    assert "installed Python packages (import only these): " in repair_prompt and "sklearn " in repair_prompt


def test_a_name_imported_from_the_wrong_module_is_moved_without_a_repair(breast_cancer, tmp_path):
    misplaced = SCALED_LOGREG.replace("from sklearn.linear_model import LogisticRegression",
                                      "from sklearn.ensemble import RandomForestClassifier, XGBClassifier\n"
                                      "from sklearn.linear_model import LogisticRegression")
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "rewrite", 4)), script(misplaced),
        diagnosis("ran", True, "scaling helped")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    assert model.remaining == 0 and record(final, "0002")["attempts"] == 1 and record(final, "0002")["accepted"]
    folder = run_dir_of(final) / "experiments/0002"
    assert json.loads((folder / "plan.json").read_text())["imports_moved"] == ["XGBClassifier: sklearn.ensemble -> "
                                                                              "xgboost"]
    assert "from xgboost import XGBClassifier  # moved by gome" in (folder / "main.py").read_text()


def test_a_repair_answers_with_an_edit_of_the_failed_script(breast_cancer, tmp_path):
    drop_import = ("<<<<<<< SEARCH\nfrom sklearn.ensemble import XGBoostingClassifier\n"
                   "from sklearn.linear_model import LogisticRegression\n=======\n"
                   "from sklearn.linear_model import LogisticRegression\n>>>>>>> REPLACE")
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "rewrite", 4)),  # a rewrite: the whole script
        script(WRONG_IMPORT), drop_import, diagnosis("ran", True, "scaling helped")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    assert model.remaining == 0 and record(final, "0002")["accepted"]
    folder = run_dir_of(final) / "experiments/0002"
    assert (folder / "main.py").read_text() == SCALED_LOGREG
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["edit"] == {"asked": "script", "form": "script"}
    assert plan["repairs"][0]["edit"] == {"asked": "edits", "form": "edits", "applied": True, "blocks": 1,
                                          "error": None}


def test_a_runtime_error_is_repaired_from_its_traceback_and_a_sample_run_comes_first(breast_cancer, tmp_path):
    fails_on_sample = PLAIN_LOGREG.replace(
        "features = [", 'assert os.environ["GOME_DEBUG"] != "1", "no sample run wanted here"\nfeatures = [')
    model = ScriptedChatModel(replies=[
        script(BUGGY_DRAFT),  # KeyError: 'target', on the run on a sample
        script(fails_on_sample),  # the repair fixes the KeyError but fails the sample run another way
        script(PLAIN_LOGREG),  # the second repair works on the sample, then in full
        diagnosis("ran", True, "works")])
    cfg = RunConfig(steps=1, select={"reruns": 0}, repair={"rounds": 3, "debug_rows": 100})  # 455 rows > 2 x 100
    final = run_gome(breast_cancer, cfg, out=tmp_path, chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    exp = record(final, "0001")
    assert exp["attempts"] == 3 and exp["status"] == "ok" and exp["accepted"]
    attempts = run_dir_of(final) / "experiments/0001/attempts"
    results = [json.loads((attempts / k / "result.json").read_text()) for k in ("0", "1")]
    assert [r["phase"] for r in results] == ["debug", "debug"]
    assert "KeyError: 'target'" in (attempts / "0" / "stderr.txt").read_text()
    first_repair, second_repair = prompts_with(model, "this is repair")
    assert "KeyError: 'target'" in first_repair and "the first run, on a sample (GOME_DEBUG=1)" in first_repair
    assert "no sample run wanted here" in second_repair
    assert 'GOME_DEBUG is "1" this is a quick first run: use at most 100' in first_repair


def test_an_idea_that_still_fails_after_its_repairs_is_untested_not_refuted(breast_cancer, tmp_path):
    broken = SCALED_LOGREG.replace("max_iter=1000", "max_iter=1000, penalty='nonsense'")
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),
        script(broken), script(broken.replace("'nonsense'", "'nonsense2'")),  # the step and its repair both fail
        diagnosis("bug", False, "the pipeline has a None step", hypothesis_verdict="refuted"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),  # may be tried again
        script(SCALED_LOGREG), diagnosis("ran", True, "better")])
    cfg = RunConfig(steps=3, select={"reruns": 0}, repair=ONE_REPAIR, late_stage=1)
    final = run_gome(breast_cancer, cfg, out=tmp_path, chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    failed = record(final, "0002")
    assert failed["status"] == "error" and failed["attempts"] == 2 and failed["verdict"] == "untested"
    assert failed["diagnosis"]["hypothesis_verdict"] == "untested"  # whatever the model said
    proposer = prompts_with(model, "Propose 2 to 4 hypotheses")[-1]
    untested = proposer.split("# Untested")[1].split("# Recent steps")[0]
    refuted = proposer.split("# Refuted")[1].split("# Untested")[0]
    assert "Standardize the features" in untested and "Standardize the features" not in refuted
    assert record(final, "0003")["gradient"]["hypothesis"]["change"] == "Standardize the features"  # not dropped


def test_the_proposer_steers_by_memory_and_drops_a_refuted_idea(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features before the model", "features", "moderate", 4)),
        script(SCALED_LOGREG), diagnosis("ran", True, "better"),
        hypotheses(("Replace the model with a shallow decision tree", "model", "rewrite", 3)),
        script(SHALLOW_TREE), diagnosis("ran", False, "far worse", hypothesis_verdict="refuted"),
        hypotheses(("Use a shallow decision tree model instead", "model", "rewrite", 4)),  # the refuted idea again
        hypotheses(("Lower the regularisation of the logistic regression", "model", "minimal", 3)),
        script(SCALED_LOGREG.replace("C=1.0", "C=3.0")), diagnosis("ran", False, "about the same")])
    cfg = RunConfig(steps=4, select={"reruns": 0}, late_stage=1)
    final = run_gome(breast_cancer, cfg, out=tmp_path, chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    first_ask, second_ask = prompts_with(model, "Propose 2 to 4 hypotheses")[-2:]
    memory = first_ask.split("# What worked")[1].split("# Refuted")[0]
    assert "Standardize the features before the model (features; accepted 1x, gain" in memory
    refuted = first_ask.split("# Refuted")[1].split("# Untested")[0]
    assert "Replace the model with a shallow decision tree (model" in refuted
    assert "# Dropped: these proposals repeat refuted changes or change no prediction" in second_ask
    assert "Use a shallow decision tree model instead" in second_ask.split("# Dropped")[1]
    gradient = record(final, "0004")["gradient"]
    assert gradient["hypothesis"]["change"] == "Lower the regularisation of the logistic regression"
    assert gradient["dropped"] == ["Use a shallow decision tree model instead (it repeats a refuted change)"]
    assert record(final, "0003")["verdict"] == "refuted"


def test_the_late_stage_ensembles_then_blends_and_selection_re_runs_the_blend(breast_cancer, tmp_path):
    task = load_task(breast_cancer)

    def blend_what_was_asked(prompt: str) -> str:  # the model copies the blend script the prompt offers
        ids = re.search(r"Candidates \(best first\): (.+)", prompt).group(1).split(", ")
        return script(blend_template(task, ids))

    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),
        script(SCALED_LOGREG), diagnosis("ran", True, "better"),
        script(baseline_template(task, ensemble=True)), diagnosis("ran", True, "the ensemble"),  # step 3 of 4
        blend_what_was_asked, diagnosis("ran", True, "the blend")])  # step 4: no proposal is asked in the late stage
    cfg = RunConfig(steps=4, select={"top_k": 4, "reruns": 1})
    final = run_gome(breast_cancer, cfg, out=tmp_path, chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    assert len(prompts_with(model, "Propose 2 to 4 hypotheses")) == 1
    ensemble = record(final, "0003")
    assert ensemble["intent"] == "ensemble" and ensemble["gradient"]["hypothesis"]["component"] == "ensembling"
    assert ensemble["status"] == "ok" and ensemble["score_source"] == "harness" and ensemble["parent"] == "0002"
    [ensemble_prompt] = prompts_with(model, "# Late stage: average the base script's model")
    assert "VotingClassifier" in ensemble_prompt and "make_pipeline(StandardScaler()" in ensemble_prompt  # the base
    blend = record(final, "0004")
    ids = blend["gradient"]["blend"]
    assert blend["intent"] == "blend" and sorted(ids) == ["0001", "0002", "0003"] and blend["parent"] == ids[0]
    assert blend["status"] == "ok" and blend["score_source"] == "harness" and blend["submission_valid"]
    copies = run_dir_of(final) / "experiments/0004/candidates"
    assert (copies / "0001" / "val_predictions.csv").read_bytes() == (
        run_dir_of(final) / "experiments/0001/val_predictions.csv").read_bytes()
    select = json.loads((run_dir_of(final) / "select.json").read_text())
    assert all(c["rerun_scores"][0] is not None for c in select["candidates"])  # the blend re-ran too
    rerun = run_dir_of(final) / "experiments/0004/rerun-seed1/candidates/0002/val_predictions.csv"
    assert rerun.read_bytes() == (run_dir_of(final) / "experiments/0002/rerun-seed1/val_predictions.csv").read_bytes()


def test_a_blend_writes_the_task_s_own_submission_file(tmp_path, monkeypatch):
    task = load_task(EXAMPLES / "breast-cancer").model_copy(update={"submission_file": "preds.csv"})
    for exp_id, value in (("0001", 0.2), ("0002", 0.6)):
        folder = tmp_path / "candidates" / exp_id
        folder.mkdir(parents=True)
        for name in ("val_predictions.csv", "preds.csv"):
            (folder / name).write_text(f"id,benign\n1,{value}\n2,{value}\n")
    monkeypatch.setenv("GOME_CANDIDATES_DIR", str(tmp_path / "candidates"))
    monkeypatch.chdir(tmp_path)
    exec(blend_template(task, ["0002", "0001"]), {})  # noqa: S102 - gome's own template
    assert (tmp_path / "preds.csv").read_text().splitlines() == ["id,benign", "1,0.4", "2,0.4"]


def test_every_call_of_a_run_starts_with_the_same_block_which_carries_the_task_s_challenges(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),
        script(SCALED_LOGREG), diagnosis("ran", True, "better")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    saved = json.loads((run_dir_of(final) / "challenges.json").read_text())["challenges"]
    assert [c["name"] for c in saved] == ["small data", "correlated features", "mild class imbalance"]
    [challenge_prompt] = model._standing_calls
    assert "List the 3 to 6 main challenges" in challenge_prompt and "mean radius: float64" in challenge_prompt
    # A prompt cache serves what every call shares: the system prompt, the brief, the data, the rules, and (after
    # prepare listed them) the challenges. Nothing that changes during the run sits in it.
    prompts = [c["prompt"] for c in model.calls]
    shared = os.path.commonprefix(prompts)
    assert len(prompts) == 5 and shared.startswith("You are a Kaggle grandmaster")
    for part in ("mean radius: float64", "# Rules for the script", "How the held-out predictions are usually",
                 "# Challenges of this task\n- small data (validation): a few hundred rows"):
        assert part in shared
    assert shared.endswith("\n\n") and "finish well within" not in shared  # the time left changes
    assert challenge_prompt.startswith(shared.split("# Challenges of this task")[0])
    assert all("The script must finish well within" in p for p in (prompts[0], prompts[3]))  # after the block


def test_the_report_shows_each_failed_attempt_and_the_verdict(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[script(BUGGY_DRAFT), script(PLAIN_LOGREG), diagnosis("ran", True, "works")])
    final = run_gome(breast_cancer, RunConfig(steps=1, select={"reruns": 0}, repair=ONE_REPAIR), out=tmp_path,
                     chat_model=model)
    md = (run_dir_of(final) / "report.md").read_text()
    assert "- attempt 1 failed (full): error: exited with code 1; repaired" in md


def test_a_repair_that_returns_the_failed_script_is_not_asked_again_and_the_attempt_is_judged(breast_cancer,
                                                                                              tmp_path):
    model = ScriptedChatModel(replies=[
        script(BUGGY_DRAFT), script(BUGGY_DRAFT),  # the repair changes nothing
        diagnosis("bug", False, "KeyError: 'target'")])
    final = run_gome(breast_cancer, RunConfig(steps=1, select={"reruns": 0}, repair=ONE_REPAIR), out=tmp_path,
                     chat_model=model)
    assert final["status"] == "no_valid_submission" and model.remaining == 0
    assert record(final, "0001")["attempts"] == 1  # the unchanged script was not run again
    assert len(model.calls) == 3  # draft, one repair call, the diagnosis
    assert "it is the same script that failed" in json.loads(
        (run_dir_of(final) / "experiments/0001/result.json").read_text())["repair_error"]


def test_a_proposal_that_changes_no_prediction_is_dropped(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Add a check for missing data before fitting the model", "model", "rewrite", 5),
                    ("Standardize the features", "features", "moderate", 3)),
        script(SCALED_LOGREG), diagnosis("ran", True, "better")])
    final = run_gome(breast_cancer, RunConfig(steps=2, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    gradient = record(final, "0002")["gradient"]
    assert gradient["hypothesis"]["change"] == "Standardize the features"  # the higher-scored check was dropped
    assert gradient["dropped"] == ["Add a check for missing data before fitting the model (it changes no prediction)"]


def test_a_repair_that_breaks_a_script_which_worked_gives_the_step_back_its_working_attempt(breast_cancer, tmp_path):
    self_scored = PLAIN_LOGREG.replace('pd.DataFrame({"id": train["id"], TARGET: oof}).to_csv("val_predictions.csv", '
                                       'index=False)', "pass  # held-out predictions not written")
    assert self_scored != PLAIN_LOGREG
    model = ScriptedChatModel(replies=[
        script(self_scored),  # works, but only the script scores itself: a repair is asked to write them
        script(BUGGY_DRAFT),  # the repair breaks it (KeyError)
        diagnosis("ran", True, "works")])
    final = run_gome(breast_cancer, RunConfig(steps=1, select={"reruns": 0}, repair=ONE_REPAIR), out=tmp_path,
                     chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    exp = record(final, "0001")
    assert exp["status"] == "ok" and exp["score_source"] == "self_reported" and exp["submission_valid"]
    assert exp["attempts"] == 2
    folder = run_dir_of(final) / "experiments/0001"
    assert (folder / "main.py").read_text() == self_scored  # the working script, not the broken repair
    assert (folder / "submission.csv").read_bytes() == (folder / "attempts/0/submission.csv").read_bytes()
    assert "KeyError" in (folder / "attempts/1/stderr.txt").read_text()
    assert (run_dir_of(final) / "best/solution.py").read_text() == self_scored


def test_a_name_used_unimported_gets_its_import_without_a_repair_and_an_undefined_one_is_repaired(
        breast_cancer, tmp_path):
    unimported = SCALED_LOGREG.replace("from sklearn.preprocessing import StandardScaler\n", "")
    undefined = SCALED_LOGREG.replace("C=1.0", "C=strength")
    model = ScriptedChatModel(replies=[
        script(PLAIN_LOGREG), diagnosis("ran", True, "works"),
        hypotheses(("Standardize the features", "features", "moderate", 4)),
        script(unimported),  # StandardScaler used, never imported: gome adds the import, no model call
        diagnosis("ran", True, "scaling helped"),
        hypotheses(("Tune the regularisation strength", "model", "minimal", 3)),
        script(undefined),  # `strength` is defined nowhere: stopped before it runs, repaired
        script(SCALED_LOGREG.replace("C=1.0", "C=2.0")), diagnosis("ran", False, "about the same")])
    final = run_gome(breast_cancer, RunConfig(steps=3, select={"reruns": 0}, late_stage=1), out=tmp_path,
                     chat_model=model)
    assert final["status"] == "succeeded" and model.remaining == 0
    fixed = record(final, "0002")
    assert fixed["attempts"] == 1 and fixed["status"] == "ok" and fixed["score_source"] == "harness"
    plan = json.loads((run_dir_of(final) / "experiments/0002/plan.json").read_text())
    assert plan["imports_added"] == ["from sklearn.preprocessing import StandardScaler"]
    assert "from sklearn.preprocessing import StandardScaler  # added by gome" in (
        run_dir_of(final) / "experiments/0002/main.py").read_text()
    repaired = record(final, "0003")  # a name defined nowhere is left to the run, whose NameError is repaired
    assert repaired["attempts"] == 2 and repaired["status"] == "ok"
    first = json.loads((run_dir_of(final) / "experiments/0003/attempts/0/result.json").read_text())
    assert first["phase"] == "full" and first["status"] == "error"
    [repair_prompt] = prompts_with(model, "this is repair 1 of at most 3")
    assert "NameError: name 'strength' is not defined" in repair_prompt
