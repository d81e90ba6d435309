"""The exported graph, as an app invokes it (no runner around it): it records its own crash and needs no
recursion limit from the caller."""

import json

import pytest

from gome.graph.builder import graph
from gome.state.context import GomeContext
from gome.state.records import SettingsError
from gome.tools.run.folder import ExperimentFolder
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import PLAIN_LOGREG, diagnosis, script


def test_a_node_that_crashes_leaves_crash_txt_and_a_final_status(breast_cancer, tmp_path, monkeypatch):
    def broken_disk(self, exp):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ExperimentFolder, "write_experiment", broken_disk)  # checkpoint's record of the step
    model = ScriptedChatModel(replies=[script(PLAIN_LOGREG), diagnosis("ran", True, "works")])
    with pytest.raises(OSError, match="Input/output error"):
        graph.invoke({"task_dir": str(breast_cancer), "run_dir": str(tmp_path / "run"),
                      "config": {"steps": 1, "challenges": False}}, context=GomeContext(chat_model=model))
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["status"] == "crashed" and "OSError: [Errno 5] Input/output error" in run["message"]
    assert "Traceback" in (tmp_path / "run/crash.txt").read_text()


def test_the_exported_graph_needs_no_recursion_limit(breast_cancer, tmp_path):
    model = ScriptedChatModel(replies=[script(PLAIN_LOGREG), diagnosis("ran", True, "works")] * 14)
    cfg = {"steps": 14, "challenges": False, "repair": {"rounds": 0}, "select": {"reruns": 0}, "late_stage": 1}
    final = graph.invoke({"task_dir": str(breast_cancer), "run_dir": str(tmp_path / "run"), "config": cfg},
                         context=GomeContext(chat_model=model))
    assert final["status"] == "succeeded" and len(json.loads((tmp_path / "run/run.json").read_text())["steps"]) == 14


def test_a_typo_in_the_settings_is_refused_before_anything_is_written(breast_cancer, tmp_path):
    with pytest.raises(SettingsError, match=r"invalid config: step: unknown setting \(known: mode, traces, steps"):
        graph.invoke({"task_dir": str(breast_cancer), "run_dir": str(tmp_path / "run"), "config": {"step": 1}},
                     context=GomeContext(chat_model=ScriptedChatModel(replies=[])))
    assert not (tmp_path / "run").exists()
