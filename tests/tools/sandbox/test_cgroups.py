"""A run's cgroups: a kill that found one empty reads nothing again; a script joins all of them or none."""

import subprocess

import pytest

from gome.tools.sandbox.cgroups import V1_CONTROLLERS, CgroupLimits, RunCgroup, sweep
from gome.tools.sandbox.isolation import join_cgroups_args

LIMITS = CgroupLimits(memory_bytes=1 << 30, pids=64, cpus=1.0)


def fake_cgroup(tmp_path, procs: str = "") -> RunCgroup:
    """A RunCgroup over a folder laid out like cgroup v2 (constructing one only computes paths)."""
    cgroup = RunCgroup("run-0001", LIMITS, "v2", root=tmp_path)
    for d in cgroup.dirs:
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text(procs)
    return cgroup


def test_a_cgroup_found_empty_is_not_read_again(tmp_path, monkeypatch):
    cgroup = fake_cgroup(tmp_path)
    assert cgroup.kill()
    kill_file = cgroup.dirs[0] / "cgroup.kill"
    assert kill_file.read_text() == "1"
    kill_file.unlink()
    monkeypatch.setattr(cgroup, "pids", lambda: pytest.fail("an emptied cgroup was read again"))
    assert cgroup.kill() and not kill_file.exists()  # nothing written either


def test_a_cgroup_still_holding_a_process_is_read_again(tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"])
    cgroup = fake_cgroup(tmp_path, f"{sleeper.pid}\n")  # the fake file keeps listing it after it dies
    try:
        assert not cgroup.kill(rounds=2)
        assert not cgroup.kill(rounds=1)  # read again: still listed (unreaped, so its pid is not reused)
        assert sleeper.wait(timeout=10) == -9  # the kill reached it
    finally:
        sleeper.kill()
        sleeper.wait()
    (cgroup.dirs[0] / "cgroup.procs").write_text("")
    assert cgroup.kill()


def test_a_dead_gomes_leftover_cgroup_is_swept(tmp_path):
    """sweep() rebuilds the leftover's RunCgroup without __init__: a kill on it must work all the same (it once
    raised AttributeError, and every LocalExecutor after a killed gome failed to start). Laid out like v1: a v2
    kill writes cgroup.kill, which only cgroupfs lets rmdir remove."""
    version = "v1"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is no longer running
    parents = [tmp_path] if version == "v2" else [tmp_path / c for c in V1_CONTROLLERS]
    leftovers = [p / "gome" / f"{dead.pid}-0-abcd1234" for p in parents]
    for d in leftovers:
        d.mkdir(parents=True)
    sweep(version, root=tmp_path)
    assert not any(d.exists() for d in leftovers)


def test_a_script_that_cannot_join_every_group_does_not_start(tmp_path):
    """The join writes its pid into each group's cgroup.procs: one failed write (a group gone) stops the chain,
    or the script would run without that group's limit."""
    joinable = tmp_path / "cgroup.procs"
    joinable.write_text("")
    argv = join_cgroups_args([str(tmp_path / "gone" / "cgroup.procs"), str(joinable)]) + ["/bin/echo", "ran"]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode != 0 and "ran" not in out.stdout
