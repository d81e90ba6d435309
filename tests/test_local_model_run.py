"""One real `gome run` on the embedded local model (llama.cpp serving Qwen2.5-Coder-1.5B), with no model
configured at all: the default a fresh machine gets. It takes minutes. Without llama-cpp-python or the weights
it skips, except in CI, which installs both and sets GOME_REQUIRE_LOCAL_MODEL=1 so that it fails instead."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from gome.tools.llm.local_model import LocalModelError, find_weights
from gome.tools.task.loading import load_task
from gome.tools.task.submission import grade


def _require_local_model() -> None:
    why = None
    if importlib.util.find_spec("llama_cpp") is None:
        why = "llama-cpp-python is not installed (pip install -e '.[local]')"
    else:
        try:
            find_weights()
        except LocalModelError as e:
            why = str(e)
    if why and os.environ.get("GOME_REQUIRE_LOCAL_MODEL"):
        pytest.fail(f"GOME_REQUIRE_LOCAL_MODEL is set but {why}")
    if why:
        pytest.skip(why)


@pytest.mark.slow
def test_a_real_run_on_the_default_local_model_makes_a_valid_submission(breast_cancer, tmp_path):
    _require_local_model()
    env = {k: v for k, v in os.environ.items() if k not in ("GOME_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY")}
    out = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "gome.cli", "run", str(breast_cancer), "--steps", "3", "--reruns", "0",
         "--time", "25m", "--out", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=40 * 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "starting the local model" in proc.stderr
    done = json.loads(proc.stdout.strip().splitlines()[-1])  # --json: the last line says where the submission is
    assert done["event"] == "done"
    submission = done["submission"]
    task = load_task(breast_cancer)
    score = grade(task, submission, breast_cancer / "private/answers.csv")
    assert score > 0.8  # a valid submission that learned something (the trivial one scores 0.5)
