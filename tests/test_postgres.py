"""--db postgresql://: checkpoints and the success memory in a real PostgreSQL server (.ci/postgres starts one on
loopback and exports GOME_TEST_POSTGRES; CI sets GOME_REQUIRE_POSTGRES=1 so these fail rather than skip)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.test_resume import ROOT

URL = os.environ.get("GOME_TEST_POSTGRES")


@pytest.fixture
def url():
    if not URL:
        message = "no PostgreSQL server: run `eval \"$(.ci/postgres start)\"` first"
        if os.environ.get("GOME_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    return URL


def driver(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.drivers.kill_run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "GOME_DRIVER_DB": db})


def test_a_killed_run_resumes_from_postgres(url, tmp_path):
    import psycopg

    task = tmp_path / "task"
    shutil.copytree(EXAMPLES / "breast-cancer", task)
    first = driver("run", str(task), str(tmp_path / "runs"), "llm:5", db=url)
    assert first.returncode == -9, first.stderr[-2000:]
    run_dir = Path(first.stdout.splitlines()[0])
    assert not (run_dir / "checkpoints.sqlite").exists()  # the database holds them, not the folder
    second = driver("resume", str(run_dir), db=url)
    assert second.returncode == 0, second.stderr[-3000:]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003"]
    assert ":***@" in run["db"] or "@" not in run["db"]  # no password in the run folder
    with psycopg.connect(url) as conn:
        checkpoints = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s",
                                   (run_dir.name,)).fetchone()[0]
        memory = conn.execute("SELECT count(*) FROM store WHERE prefix = %s",
                              (f"gome.{run_dir.name}.memory",)).fetchone()[0]
    assert checkpoints > 10 and memory == 1  # the one accepted gradient step (the third ties, so it is rejected)


def test_cli_run_with_db(url, breast_cancer, tmp_path):
    from gome.cli import EXIT_OK, main
    from tests.fakes.server_model import build

    code = main(["run", str(breast_cancer), "--steps", "2", "--reruns", "0", "--db", url, "--out",
                 str(tmp_path / "runs")], chat_model=build())
    assert code == EXIT_OK
