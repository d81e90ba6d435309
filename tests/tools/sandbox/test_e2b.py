import os
import textwrap

import pytest

from gome.tools.sandbox.e2b import E2BExecutor, E2BUnavailable
from gome.tools.sandbox.executor import Collect, Executor, Limits
from tests.fakes.e2b import FakeSandbox


@pytest.fixture
def sandbox(tmp_path):
    return FakeSandbox(tmp_path / "remote")


def run(tmp_path, sandbox, code, **limits):
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    data.mkdir()
    (data / "train.csv").write_text("id,y\n1,0\n2,1\n")
    (work / "main.py").write_text(textwrap.dedent(code))
    ex = E2BExecutor(sandbox_factory=lambda timeout: sandbox)
    out = tmp_path / "out"
    out.mkdir()
    collect = Collect(into=out, caps={"submission.csv": 1000, "val_predictions.csv": 1000, "big.csv": 10})
    return ex.run(work / "main.py", work, data, Limits(**limits), env={"GOME_SEED": "3"}, collect=collect), out


def test_without_a_key_it_fails_at_once_with_a_clear_message(monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(E2BUnavailable, match="E2B_API_KEY"):
        E2BExecutor()


def test_is_an_executor(sandbox):
    assert isinstance(E2BExecutor(sandbox_factory=lambda t: sandbox), Executor)


def test_a_sandbox_that_cannot_start_is_a_recorded_error(tmp_path):
    def refuse(timeout):
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")

    (tmp_path / "main.py").write_text("print(1)\n")
    res = E2BExecutor(sandbox_factory=refuse).run(tmp_path / "main.py", tmp_path, tmp_path, Limits())
    assert res.status == "error" and "failed to start" in res.stderr and "name resolution" in res.stderr


def test_uploads_runs_and_brings_back_only_the_requested_regular_files(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    res, out = run(tmp_path, sandbox, """
        import os
        rows = open(os.path.join(os.environ["GOME_DATA_DIR"], "train.csv")).read().splitlines()
        print("rows", len(rows), "seed", os.environ["GOME_SEED"], "key" in str(os.environ).lower())
        open("submission.csv", "w").write("id,y\\n1,0.5\\n")
        open("big.csv", "w").write("x" * 100)
        open("other.txt", "w").write("not asked for")
        os.symlink("/etc/passwd", "val_predictions.csv")
    """)
    assert res.status == "ok" and res.isolation == "e2b", res.stderr
    assert "rows 3 seed 3 False" in res.stdout
    assert res.collected == ["submission.csv"] and sorted(res.refused) == ["big.csv", "val_predictions.csv"]
    assert "over the 10-byte limit" in res.refused["big.csv"]
    assert sorted(p.name for p in out.iterdir()) == ["submission.csv"]
    assert (out / "submission.csv").read_text() == "id,y\n1,0.5\n"
    assert "OPENAI_API_KEY" not in sandbox.envs[0] and sandbox.killed


def test_non_zero_exit_is_an_error(tmp_path, sandbox):
    res, _ = run(tmp_path, sandbox, "raise SystemExit(3)\n")
    assert res.status == "error" and res.returncode == 3 and sandbox.killed


def test_timeout_kills_the_process_the_sdk_would_leave_running(tmp_path, sandbox):
    res, _ = run(tmp_path, sandbox, "import time\nprint('started', flush=True)\ntime.sleep(60)\n", timeout_s=1.5)
    assert res.status == "timeout" and res.runtime_s < 10 and "started" in res.stdout
    proc = sandbox.handles[0].proc
    assert proc.poll() is not None  # really dead, not just abandoned
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    assert sandbox.killed
