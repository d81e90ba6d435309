"""`gome run` end to end on the breast-cancer example, driven by a scripted model; scripts really train."""

import json
import os
import re

import pytest

from gome.cli import EXIT_NO_SUBMISSION, EXIT_OK, EXIT_USAGE, main, parse_duration
from gome.tools.task.loading import load_task
from gome.tools.task.submission import check_submission, grade
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import BUGGY_DRAFT, PLAIN_LOGREG, breast_cancer_replies, diagnosis, hypotheses, script


def test_full_run_improves_fixes_a_bug_and_submits(breast_cancer, tmp_path, capsys):
    model = ScriptedChatModel(replies=breast_cancer_replies())
    code = main(["run", str(breast_cancer), "--steps", "4", "--time", "10m", "--repair-rounds", "0", "--late-stage",
                 "1", "--out", str(tmp_path / "runs")], chat_model=model)
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert model.remaining == 0

    [run_dir] = (tmp_path / "runs").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    steps = run["steps"]
    assert run["status"] == "succeeded" and len(steps) == 4
    # one progress line per step
    assert sum(line.startswith("[") for line in out.splitlines()) == 4

    # the draft crashed, the diagnosis caught it, the next step fixed it
    assert steps[0]["status"] == "error" and not steps[0]["accepted"]
    assert json.loads((run_dir / "experiments/0001/diagnosis.json").read_text())["outcome"] == "bug"
    assert steps[1]["status"] == "ok" and steps[1]["accepted"] and steps[1]["parent"] == "0001"

    # harness scores from real training; the best improved; the worse idea was rejected
    assert all(s["score_source"] == "harness" for s in steps[1:])
    assert steps[2]["score"] > steps[1]["score"] and steps[2]["improved_best"]
    assert steps[3]["score"] < steps[2]["score"] and not steps[3]["accepted"]
    assert run["best"]["id"] == "0003"

    # the run folder holds what the README promises
    for name in ("main.py", "stdout.txt", "stderr.txt", "metrics.json", "val_predictions.csv", "submission.csv"):
        assert (run_dir / "experiments/0003" / name).is_file(), name
    assert (run_dir / "best/solution.py").read_text() == (run_dir / "experiments/0003/main.py").read_text()

    # the final submission is valid against the sample submission and really good on the hidden answers
    task = load_task(breast_cancer)
    submission = run_dir / "best/submission.csv"
    assert out.strip().splitlines()[-1] == str(submission)
    check_submission(task, submission)
    assert grade(task, submission, breast_cancer / "private/answers.csv") > 0.98
    assert run["usage"]["llm_calls"] == 12 and run["usage"]["input_tokens"] > 0  # 11 scripted + the challenges

    # every progress event is kept in the run folder
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("step_started") == 4 and [e["event"] for e in events].count("step") == 4
    assert all("at" in e for e in events)

    # `gome grade` scores the run's submission against the hidden answers
    capsys.readouterr()
    assert main(["grade", str(breast_cancer), str(run_dir), "--json"]) == EXIT_OK
    graded = json.loads(capsys.readouterr().out)
    assert graded["metric"] == "roc_auc" and graded["score"] > 0.98 and graded["is_lower_better"] is False
    assert main(["grade", str(breast_cancer), str(run_dir)]) == EXIT_OK
    table = capsys.readouterr().out.splitlines()
    assert table[:2] == ["task       breast-cancer", "metric     roc_auc (higher is better)"]
    assert table[2].startswith("score      0.9")


def test_a_crash_mid_run_keeps_the_work_and_says_where(breast_cancer, tmp_path, capsys, monkeypatch):
    from gome.tools.run.folder import RunFolder

    rebuild = RunFolder.update_run_json

    def broken_disk(self, **fields):  # checkpoint's rebuild of run.json fails; recording the crash does not
        if not fields:
            raise OSError("disk full")
        return rebuild(self, **fields)

    monkeypatch.setattr(RunFolder, "update_run_json", broken_disk)
    model = ScriptedChatModel(replies=breast_cancer_replies())
    code = main(["run", str(breast_cancer), "--steps", "4", "--repair-rounds", "0", "--late-stage", "1", "--out",
                 str(tmp_path / "runs")], chat_model=model)
    assert code == EXIT_NO_SUBMISSION
    assert "the run crashed (OSError: disk full)" in capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "crashed" and "disk full" in run["message"]
    assert "OSError: disk full" in (run_dir / "crash.txt").read_text()
    assert (run_dir / "experiments/0001/main.py").is_file() and (run_dir / "experiments/0001/metrics.json").is_file()


def test_grade_without_answers_is_a_usage_error(breast_cancer, capsys):
    (breast_cancer / "private/answers.csv").unlink()
    sample = breast_cancer / "public/sample_submission.csv"
    assert main(["grade", str(breast_cancer), str(sample)]) == EXIT_USAGE
    assert "no answers" in capsys.readouterr().err


def test_no_model_configured_runs_the_local_model(breast_cancer, monkeypatch, capsys):
    from gome.tools.llm import local_model

    for var in ("GOME_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    def not_installed(path=None):
        raise local_model.LocalModelError("the local model's weights are not installed")

    monkeypatch.setattr(local_model, "find_weights", not_installed)
    assert main(["run", str(breast_cancer)]) == EXIT_USAGE
    assert "the local model's weights are not installed" in capsys.readouterr().err


def test_invalid_task_folder_is_a_clear_usage_error(breast_cancer, tmp_path, capsys):
    (breast_cancer / "public/test.csv").unlink()
    model = ScriptedChatModel(replies=[])
    assert main(["run", str(breast_cancer), "--out", str(tmp_path / "runs")], chat_model=model) == EXIT_USAGE
    assert "missing test data: test.csv" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing is written for a task that cannot run


def test_metric_comes_from_the_command_line_without_task_toml(breast_cancer, capsys):
    (breast_cancer / "task.toml").unlink()
    assert main(["run", str(breast_cancer)], chat_model=ScriptedChatModel(replies=[])) == EXIT_USAGE
    assert "no metric" in capsys.readouterr().err


def test_no_valid_submission_exits_non_zero(breast_cancer, tmp_path, capsys):
    crash = [script(BUGGY_DRAFT), diagnosis("bug", False, "crash"),
             hypotheses(("fix the target name", "data", "minimal", 5)), script(BUGGY_DRAFT),
             diagnosis("bug", False, "crash again")]
    model = ScriptedChatModel(replies=crash)
    code = main(["run", str(breast_cancer), "--steps", "2", "--repair-rounds", "0", "--out", str(tmp_path / "runs")],
                chat_model=model)
    assert code == EXIT_NO_SUBMISSION
    assert "no_valid_submission" in capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "no_valid_submission"


def test_wall_clock_budget_stops_the_run(breast_cancer, tmp_path):
    slow = script("import time\ntime.sleep(30)\n")
    model = ScriptedChatModel(replies=[slow, diagnosis("timeout", False, "too slow")])
    code = main(["run", str(breast_cancer), "--steps", "50", "--time", "3s", "--out", str(tmp_path / "runs")],
                chat_model=model)
    assert code == EXIT_NO_SUBMISSION
    [run_dir] = (tmp_path / "runs").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["stopped_by"] == ["time"] and run["steps"][0]["status"] == "timeout"
    assert run["steps"][0]["runtime_s"] < 10


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["run", "x", "--time", "soon"])
    assert "not a duration" in capsys.readouterr().err


def test_search_flags_reach_the_run(breast_cancer, tmp_path, capsys):
    model = ScriptedChatModel(replies=[script(BUGGY_DRAFT), diagnosis("bug", False, "crash")])
    code = main(["run", str(breast_cancer), "--mode", "tree", "--traces", "1", "--tree-policy", "uct", "--steps", "1",
                 "--max-tokens", "100000", "--price", "scripted=1,2", "--reruns", "0", "--repair-rounds", "0", "--out",
                 str(tmp_path / "runs")],
                chat_model=model)
    assert code == EXIT_NO_SUBMISSION
    [run_dir] = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert (config["mode"], config["tree"]["policy"], config["max_tokens"]) == ("tree", "uct", 100000)
    assert config["prices"]["scripted"] == [1.0, 2.0] and config["select"]["reruns"] == 0
    assert " tree " in capsys.readouterr().out


def test_dollar_budget_without_a_price_is_refused(breast_cancer, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["run", str(breast_cancer), "--model", "openai:my-finetune", "--max-dollars", "5"]) == EXIT_USAGE
    assert "needs a price for 'openai:my-finetune'" in capsys.readouterr().err


def test_doctor_reports_each_link_of_the_sandbox_and_the_model(capsys, monkeypatch):
    from gome.tools.sandbox.isolation import probe

    for name in ("GOME_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert out.startswith(f"isolation level: {probe().level}")
    assert "bubblewrap" in out and "cgroup" in out and "non-root uid" in out and "e2b:" in out
    [model_line] = [line for line in out.splitlines() if line.startswith("model: ")]
    assert model_line.startswith("model: local (embedded, llama.cpp): weights ")
    assert code == (EXIT_OK if probe().full and "missing" not in model_line else EXIT_NO_SUBMISSION)

    monkeypatch.setenv("GOME_MODEL", "openai:gpt-4.1-mini")  # a model that needs a key nobody set
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["doctor"]) == EXIT_NO_SUBMISSION
    assert "model: openai:gpt-4.1-mini: langchain-openai installed, OPENAI_API_KEY not set" in capsys.readouterr().out
    monkeypatch.setenv("GOME_MODEL", "ollama:qwen2.5")  # a provider that needs no key, and its package is missing
    main(["doctor"])
    assert "model: ollama:qwen2.5: langchain-ollama missing, API key not needed" in capsys.readouterr().out


def test_e2b_without_a_key_is_a_clear_usage_error(breast_cancer, monkeypatch, capsys):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    code = main(["run", str(breast_cancer), "--executor", "e2b"], chat_model=ScriptedChatModel(replies=[]))
    assert code == EXIT_USAGE and "E2B_API_KEY" in capsys.readouterr().err


def _toml(task, text):
    (task / "task.toml").write_text(text)


def _csv_edit(name, edit):
    def apply(task):
        path = task / "public" / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(edit(lines)))
    return apply


def _link(name, target):
    def apply(task):
        path = task / "public" / name
        if path.exists():
            path.unlink()
        os.symlink(target, path)
    return apply


BASE_TOML = 'metric = "roc_auc"\nid_column = "id"\ntarget_columns = ["benign"]\n'
BAD_TASKS = {
    "target_columns = 5": (lambda t: _toml(t, 'metric = "roc_auc"\ntarget_columns = 5\n'),
                           "target_columns must be a column name or a list of names"),
    "[[task]]": (lambda t: _toml(t, '[[task]]\nmetric = "roc_auc"\n'), "[[task]] makes a list of tables"),
    "task = string": (lambda t: _toml(t, 'task = "x"\n'), "`task` must be a table"),
    "NUL in the name": (lambda t: _toml(t, BASE_TOML + 'name = "bad\\u0000name"\n'),
                        "name must not contain control characters"),
    "absolute submission_file": (lambda t: _toml(t, BASE_TOML + 'submission_file = "/etc/shadow"\n'),
                                 "submission_file must be a plain file name"),
    "submission_file outside": (lambda t: _toml(t, BASE_TOML + 'submission_file = "../../x.csv"\n'),
                                "submission_file must be a plain file name"),
    "submission_file not a csv": (lambda t: _toml(t, BASE_TOML + 'submission_file = "metrics.json"\n'),
                                  "submission_file must be a .csv file name"),
    "description.md is a link": (_link("description.md", "/etc/shadow"), "holds links or special files"),
    "a link to /etc": (_link("extra", "/etc"), "holds links or special files (extra)"),
    "a bad row after row 200": (_csv_edit("train.csv", lambda ls: ls[:300] + ["1," * 60 + "1\n"] + ls[300:]),
                                "train.csv: unreadable CSV"),
    "duplicate train ids": (_csv_edit("train.csv", lambda ls: ls + ls[-1:]), "train.csv: 1 duplicated id(s)"),
    "header-only test.csv": (_csv_edit("test.csv", lambda ls: ls[:1]), "test.csv has no rows"),
    "sample ids differ from test ids": (_csv_edit("sample_submission.csv", lambda ls: ls[:-1] + ["99999,0.5\n"]),
                                        "the sample submission's ids differ from the test ids (1 test id(s) not in"),
    "all-NaN target": (_csv_edit("train.csv", lambda ls: [ls[0]] + [ln.rsplit(",", 1)[0] + ",\n" for ln in ls[1:]]),
                       "target column 'benign' has no values in train.csv"),
    "a single class": (_csv_edit("train.csv", lambda ls: [ls[0]] + [ln.rsplit(",", 1)[0] + ",1\n" for ln in ls[1:]]),
                       "target column 'benign' has a single class"),
    "a file the copy leaves out": (lambda t: _toml(t, BASE_TOML + 'sample_submission_file = "private"\n'),
                                   "sample_submission_file must be a plain file name inside the folder (not"),
    "public is a link": (lambda t: os.symlink((t / "public").rename(t / "elsewhere"), t / "public"),
                         "public is a link"),
    "a sparse file": (lambda t: os.truncate(open(t / "public/blob.bin", "wb").name, 1 << 40),
                      "holds sparse files (blob.bin)"),
    "a huge description": (lambda t: (t / "public/description.md").write_text("x" * (5 << 20)),
                           "description.md is over 4 MB"),
}


@pytest.mark.parametrize("case", BAD_TASKS, ids=list(BAD_TASKS))
def test_a_broken_task_folder_gets_one_clear_message_and_nothing_is_written(breast_cancer, tmp_path, capsys, case):
    """train.csv's target is its last column, so the CSV edits above change only the target."""
    break_it, expected = BAD_TASKS[case]
    assert open(breast_cancer / "public/train.csv").readline().rstrip().endswith(",benign")
    break_it(breast_cancer)
    code = main(["run", str(breast_cancer), "--out", str(tmp_path / "runs")], chat_model=ScriptedChatModel(replies=[]))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert err.startswith("gome: task folder") and expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flag, value, expected", [
    ("--memory", "-1", "must be a positive number"), ("--steps", "0", "must be at least 1"),
    ("--traces", "zero", "not a whole number"), ("--reruns", "-1", "must be at least 0"),
    ("--max-dollars", "nan", "must be a positive number")])
def test_bad_settings_are_refused_before_anything_runs(breast_cancer, tmp_path, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(breast_cancer), flag, value, "--out", str(tmp_path / "runs")])
    assert stop.value.code == EXIT_USAGE and expected in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_out_that_is_a_file_is_a_usage_error(breast_cancer, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(["run", str(breast_cancer), "--out", str(tmp_path / "afile")], chat_model=ScriptedChatModel(replies=[]))
    assert code == EXIT_USAGE and "is a file, not a folder" in capsys.readouterr().err


def test_resume_with_an_edit_file_that_is_missing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"inputs": {"config": {}}}))
    code = main(["resume", str(run_dir), "--edit", str(tmp_path / "missing.py")], chat_model=ScriptedChatModel(
        replies=[]))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "missing.py: cannot read it" in err and "Traceback" not in err


def test_a_task_name_cannot_move_the_run_folder_out_of_out(breast_cancer, tmp_path):
    _toml(breast_cancer, BASE_TOML + 'name = "../../escape"\n')
    model = ScriptedChatModel(replies=[script(BUGGY_DRAFT), diagnosis("bug", False, "crash")])
    main(["run", str(breast_cancer), "--steps", "1", "--reruns", "0", "--repair-rounds", "0", "--out",
          str(tmp_path / "runs")], chat_model=model)
    [run_dir] = (tmp_path / "runs").iterdir()
    assert "escape" in run_dir.name and ".." not in run_dir.name
    assert not (tmp_path.parent / "escape").exists()


def test_json_means_only_json_on_stdout(breast_cancer, tmp_path, capsys):
    model = ScriptedChatModel(replies=[script(PLAIN_LOGREG), diagnosis("ran", True, "works")])
    code = main(["run", str(breast_cancer), "--steps", "1", "--reruns", "0", "--out", str(tmp_path / "runs"),
                 "--json"], chat_model=model)
    out = capsys.readouterr().out
    assert code == EXIT_OK
    events = [json.loads(line) for line in out.splitlines()]  # every line is JSON (`| jq` works)
    assert events[-1]["event"] == "done" and events[-1]["submission"].endswith("best/submission.csv")


def test_version_and_help_name_each_default_once_with_durations_as_durations(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"gome \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "3600.0" not in text and "(default: 1h)" in text
    assert "$GOME_MODEL, else local) (default" not in text  # a text that names its default gets no second one
    for group in ("model:", "search:", "budgets:", "final selection:", "sandbox:", "output:"):
        assert group in text
