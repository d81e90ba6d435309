"""The hostile suite through the real executor at the strongest isolation this machine allows.

CI installs bubblewrap and runs as root, and sets GOME_REQUIRE_SANDBOX=1 so that a weaker chain fails here
instead of skipping. Elsewhere the suite is skipped with the reason, since a weaker chain cannot contain it.
"""

import os

import pytest

from gome.evals.hostile import DISK_QUOTA, INODE_QUOTA, SCRIPTS, check
from gome.tools.sandbox.isolation import probe
from gome.tools.sandbox.local import LocalExecutor

ISO = probe()


@pytest.fixture(scope="module")
def executor():
    if not ISO.full:
        message = f"the full isolation chain is not available here: {'; '.join(ISO.missing)}"
        if os.environ.get("GOME_REQUIRE_SANDBOX"):
            pytest.fail(message)
        pytest.skip(message)
    return LocalExecutor(memory_bytes=512 << 20, pids=128, disk_bytes=DISK_QUOTA, inodes=INODE_QUOTA)


@pytest.mark.parametrize("hostile", SCRIPTS, ids=[h.name for h in SCRIPTS])
def test_hostile_script_is_contained(executor, hostile, tmp_path):
    verdict = check(executor, hostile, tmp_path)
    assert verdict["contained"], verdict["problems"]
    assert verdict["isolation"] == ISO.level and ISO.full


def test_parallel_slots_run_as_different_users_with_their_share(tmp_path):
    if not ISO.setpriv:
        pytest.skip("needs root to give each slot its own uid")
    import threading

    from gome.tools.sandbox.executor import Limits

    ex = LocalExecutor(slots=2, memory_bytes=256 << 20)
    results = {}

    def one(i):
        work = tmp_path / f"w{i}"
        work.mkdir()
        (work / "main.py").write_text("import os, time\nprint(os.getuid())\ntime.sleep(1)\n")
        results[i] = ex.run(work / "main.py", work, tmp_path, Limits(timeout_s=20))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    uids = {results[i].stdout.strip() for i in range(2)}
    assert uids == {"61000", "61001"}
    assert ex.memory_bytes == 256 << 20 and ex.cpus == pytest.approx((os.cpu_count() or 1) / 2)
