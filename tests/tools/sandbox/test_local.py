import os
import signal
import subprocess
import textwrap
import time
import uuid

import pytest

from gome.evals.hostile import leftovers
from gome.tools.sandbox import local
from gome.tools.sandbox.executor import Collect, Executor, Limits
from gome.tools.sandbox.local import CappedBuffer, LocalExecutor

# Every behaviour here must hold at the strongest isolation this machine allows and with none at all.
LEVELS = ["auto", "none"]


def run(tmp_path, code: str, isolation="auto", env=None, **limits):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "main.py").write_text(textwrap.dedent(code))
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "train.csv").write_text("id,y\n1,0\n")
    marker = uuid.uuid4().hex
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    res = LocalExecutor(isolation=isolation).run(work / "main.py", work, data, Limits(**limits),
                                                 env={"GOME_TEST_MARKER": marker, **(env or {})},
                                                 collect=Collect(into=out, caps={"submission.csv": 1 << 20}))
    return res, marker


def test_is_an_executor():
    assert isinstance(LocalExecutor(isolation="none"), Executor)


@pytest.mark.parametrize("level", LEVELS)
def test_ok_run_collects_output_and_artifacts(tmp_path, level):
    res, _ = run(tmp_path, """
        import os
        print("hello", open(os.path.join(os.environ["GOME_DATA_DIR"], "train.csv")).read().splitlines()[0])
        open("submission.csv", "w").write("id,y\\n")
    """, level)
    assert res.status == "ok" and res.returncode == 0, res.stderr
    assert "hello id,y" in res.stdout
    assert "submission.csv" in res.artifacts and res.collected == ["submission.csv"]
    assert (tmp_path / "out/submission.csv").read_text() == "id,y\n"
    assert res.isolation == ("process-group" if level == "none" else LocalExecutor().isolation)


@pytest.mark.parametrize("level", LEVELS)
def test_non_zero_exit_is_an_error_with_the_traceback(tmp_path, level):
    res, _ = run(tmp_path, "import sys\nprint('x')\nraise KeyError('target')\n", level)
    assert res.status == "error" and res.returncode == 1
    assert "KeyError: 'target'" in res.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_timeout_kills_the_script_and_its_grandchildren(tmp_path, level):
    res, marker = run(tmp_path, """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "time.sleep(60)"])
        time.sleep(60)
    """, level, timeout_s=2.0)
    assert res.status == "timeout" and res.runtime_s < 10
    assert leftovers(marker) == []


@pytest.mark.parametrize("level", LEVELS)
def test_background_child_left_behind_is_killed_and_run_still_ok(tmp_path, level):
    res, marker = run(tmp_path, """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """, level, timeout_s=20)
    assert res.status == "ok" and res.runtime_s < 10
    assert leftovers(marker) == []


@pytest.mark.parametrize("level", LEVELS)
def test_a_writer_that_escaped_the_kill_does_not_hold_the_run(tmp_path, level, monkeypatch):
    """A grandchild in a session of its own keeps the script's stdout open and writes on. Without a cgroup nothing
    kills it: the run reads the pipes for DRAIN_S after the script ended, then closes them (it dies of the broken
    pipe)."""
    monkeypatch.setattr(local, "DRAIN_S", 1.0)
    t0 = time.monotonic()
    res, marker = run(tmp_path, """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time\\nwhile True:\\n    print('tick', flush=True)\\n"
                          "    time.sleep(0.05)"], start_new_session=True)
        print("script done", flush=True)
    """, level, timeout_s=20)
    assert time.monotonic() - t0 < 8
    assert res.status == "ok" and "script done" in res.stdout, res.stderr
    assert leftovers(marker, settle_s=5) == []


@pytest.mark.parametrize("level", LEVELS)
def test_ctrl_c_as_the_script_starts_still_kills_it(tmp_path, level, monkeypatch):
    """A single trace runs in the main thread, where Python raises Ctrl-C: one that comes the moment the script has
    started (before the code that kills it on the way out) must not leave it running."""
    real = subprocess.Popen

    def popen_then_ctrl_c(argv, *args, **kwargs):
        proc = real(argv, *args, **kwargs)
        if any(str(a).endswith("main.py") for a in argv):  # the script, not a quota tool
            os.kill(os.getpid(), signal.SIGINT)
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen_then_ctrl_c)
    marker = uuid.uuid4().hex
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "import time\ntime.sleep(30)\n", level, env={"GOME_TEST_MARKER": marker}, timeout_s=60)
    assert leftovers(marker) == []


@pytest.mark.parametrize("level", LEVELS)
def test_output_is_capped_in_memory_but_counted(tmp_path, level):
    res, _ = run(tmp_path, """
        import sys
        print("FIRST LINE")
        for i in range(200000):
            sys.stdout.write("x" * 49 + "\\n")
        print("LAST LINE")
    """, level, max_output_bytes=20_000)
    assert res.status == "ok"
    assert res.stdout_bytes > 10_000_000
    assert len(res.stdout) < 21_000
    assert res.stdout.startswith("FIRST LINE") and res.stdout.rstrip().endswith("LAST LINE")
    assert "bytes dropped" in res.stdout


@pytest.mark.parametrize("level", LEVELS)
def test_the_environment_is_an_allow_list_with_threads_capped(tmp_path, monkeypatch, level):
    secrets = {"OPENAI_API_KEY": "sk-secret", "MY_SERVICE_TOKEN": "tok",
               "DATABASE_URL": "postgresql://app:hunter2@db/prod", "MYSQL_PWD": "hunter3", "DB_PASS": "hunter4",
               "SENTRY_DSN": "https://abc123@sentry.example/1", "HTTPS_PROXY": "http://user:hunter5@proxy:3128",
               "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/hunter6"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    res, _ = run(tmp_path, """
        import os
        print(sorted(os.environ))
        print(os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"], os.environ["GOME_TEST_MARKER"] != "")
    """, level, threads=3)
    assert res.status == "ok", res.stderr
    names, caps = res.stdout.strip().splitlines()
    assert caps == "3 3 True"
    for name, value in secrets.items():
        assert name not in names and value not in res.stdout


def test_memory_error_is_oom(tmp_path):
    res, _ = run(tmp_path, "raise MemoryError()\n", "none")
    assert res.status == "oom"


def test_capped_buffer_keeps_head_and_tail():
    buf = CappedBuffer(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        buf.feed(chunk)
    assert buf.total == 26
    assert buf.text().startswith("abcde") and buf.text().endswith("vwxyz")


@pytest.mark.parametrize("gpus,slots,seen", [
    (["0", "1"], 1, ["0,1"]),  # one slot (a Ray task given two GPUs): both
    (["0", "1"], 2, ["0", "1"]),
    (["0", "1", "2", "3"], 2, ["0,2", "1,3"]),  # each slot its share
    (["0"], 2, ["0", "0"]),  # fewer GPUs than slots: shared round-robin
])
def test_each_slot_sees_its_share_of_the_gpus(gpus, slots, seen, tmp_path):
    ex = LocalExecutor(isolation="none", slots=slots, gpus=gpus, first_slot=5)
    got = [ex._command(5 + i, tmp_path / "main.py", tmp_path, tmp_path, Limits(), None)[1]["CUDA_VISIBLE_DEVICES"]
           for i in range(slots)]
    assert got == seen
