import os
import textwrap
import time

from gome.tools.executor import Executor, Limits
from gome.tools.local_executor import CappedBuffer, LocalExecutor


def run(tmp_path, code: str, env=None, **limits):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(code))
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return LocalExecutor().run(script, tmp_path, data, Limits(**limits), env=env)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_is_an_executor():
    assert isinstance(LocalExecutor(), Executor)


def test_ok_run_collects_output_and_artifacts(tmp_path):
    res = run(tmp_path, """
        import os
        print("hello", os.environ["GOME_DATA_DIR"].endswith("data"), os.getcwd())
        open("submission.csv", "w").write("id,y\\n")
    """)
    assert res.status == "ok" and res.returncode == 0
    assert "hello True" in res.stdout and str(tmp_path) in res.stdout
    assert "submission.csv" in res.artifacts


def test_non_zero_exit_is_an_error_with_the_traceback(tmp_path):
    res = run(tmp_path, "import sys\nprint('x')\nraise KeyError('target')\n")
    assert res.status == "error" and res.returncode == 1
    assert "KeyError: 'target'" in res.stderr


def test_timeout_kills_the_script_and_its_grandchildren(tmp_path):
    res = run(tmp_path, """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys, time; g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "open('grandchild.pid', 'w').write(str(g.pid)); time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(60)
    """, timeout_s=2.0)
    assert res.status == "timeout" and res.runtime_s < 10
    time.sleep(0.2)
    for name in ("child.pid", "grandchild.pid"):
        assert not alive(int((tmp_path / name).read_text())), f"{name} survived the timeout"


def test_background_child_left_behind_is_killed_and_run_still_ok(tmp_path):
    res = run(tmp_path, """
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open("bg.pid", "w").write(str(p.pid))
    """, timeout_s=20)
    assert res.status == "ok" and res.runtime_s < 10
    time.sleep(0.2)
    assert not alive(int((tmp_path / "bg.pid").read_text()))


def test_output_is_capped_in_memory_but_counted(tmp_path):
    res = run(tmp_path, """
        import sys
        print("FIRST LINE")
        for i in range(200000):
            sys.stdout.write("x" * 49 + "\\n")
        print("LAST LINE")
    """, max_output_bytes=20_000)
    assert res.status == "ok"
    assert res.stdout_bytes > 10_000_000
    assert len(res.stdout) < 21_000
    assert res.stdout.startswith("FIRST LINE") and res.stdout.rstrip().endswith("LAST LINE")
    assert "bytes dropped" in res.stdout


def test_secrets_are_scrubbed_and_threads_capped(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok")
    monkeypatch.setenv("HARMLESS", "yes")
    res = run(tmp_path, """
        import os
        print(sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k), os.environ["HARMLESS"],
              os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"])
    """, threads=3)
    assert res.stdout.strip() == "[] yes 3 3"


def test_memory_error_is_oom(tmp_path):
    res = run(tmp_path, "raise MemoryError()\n")
    assert res.status == "oom"


def test_capped_buffer_keeps_head_and_tail():
    buf = CappedBuffer(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        buf.feed(chunk)
    assert buf.total == 26
    assert buf.text().startswith("abcde") and buf.text().endswith("vwxyz")
