"""Scripts on a real Ray cluster (a head and a second node started on this machine, tests/conftest.py): a run's
traces on both nodes, the hostile suite contained through Ray, a node killed under its script."""

import json
import os
import threading
import time

import pytest
import ray

from gome.cli import main
from gome.evals.hostile import DISK_QUOTA, INODE_QUOTA, SCRIPTS, _marked, check, leftovers
from gome.tools.sandbox.executor import Collect, Limits
from gome.tools.sandbox.isolation import SLOT_UID_BASE, probe
from gome.tools.sandbox.ray_executor import (
    NODE_UID_OFFSET,
    RayExecutor,
    RayUnavailable,
    _reachable,
    connect,
    node_data,
    node_root,
)
from tests.drivers.ray_nodes import add_node, kill_node, live_nodes
from tests.fakes.chat import KindChatModel
from tests.fakes.scripts import diagnosis, generic_script, hypotheses

ISO = probe()


def fake_model(script=generic_script) -> KindChatModel:
    return KindChatModel(by_kind={
        "text": script, "Diagnosis": diagnosis("ran", True, "it ran and validated"),
        "HypothesisSet": hypotheses(("Regularize less: the model underfits", "model", "minimal", 3))})


def results(run_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("experiments/*/result.json"))]


def test_a_run_with_two_traces_runs_its_scripts_on_both_nodes(ray_cluster, breast_cancer, tmp_path, capsys):
    code = main(["run", str(breast_cancer), "--executor", "ray", "--ray-address", ray_cluster.address,
                 "--traces", "2", "--threads", "1", "--steps", "4", "--reruns", "0", "--out", str(tmp_path)],
                chat_model=fake_model())
    assert code == 0, capsys.readouterr().err
    run_dir = next(tmp_path.glob("*/run.json")).parent
    done = results(run_dir)
    assert len(done) >= 4 and all(r["status"] == "ok" and r["score"] is not None for r in done)
    assert {r["node"] for r in done} == live_nodes()  # both nodes ran scripts, and only the cluster's nodes
    run = json.loads((run_dir / "run.json").read_text())
    assert run["executor"]["kind"] == "ray" and run["executor"]["ray_address"] == ray_cluster.address
    assert (run_dir / "best" / "submission.csv").is_file()


def test_a_script_sees_the_data_read_only_runs_as_a_node_slot_user_and_brings_back_only_what_was_asked(
        ray_cluster, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    (data / "train.csv").write_text("id,y\n1,2\n")
    (tmp_path / "main.py").write_text(
        "import os\nprint(os.getuid(), sorted(os.listdir(os.environ['GOME_DATA_DIR'])))\n"
        "try:\n    open(os.path.join(os.environ['GOME_DATA_DIR'], 'train.csv'), 'a').write('x')\n"
        "    print('BREACH')\nexcept OSError:\n    pass\n"
        "open('submission.csv', 'w').write('id,y\\n1,2\\n')\nopen('extra.bin', 'wb').write(b'x' * 10)\n"
        "open('val_predictions.csv', 'w').write('x' * 5000)\n")
    ex = RayExecutor(cpus=1)
    caps = {"submission.csv": 1000, "val_predictions.csv": 100}
    res = ex.run(tmp_path / "main.py", tmp_path / "work", data, Limits(timeout_s=60, threads=1),
                 collect=Collect(out, caps))
    assert res.status == "ok", res.stderr
    assert "BREACH" not in res.stdout and "['train.csv']" in res.stdout
    if ISO.setpriv:
        assert int(res.stdout.split()[0]) >= SLOT_UID_BASE + NODE_UID_OFFSET
    assert res.collected == ["submission.csv"] and "val_predictions.csv" in res.refused
    assert sorted(p.name for p in out.iterdir()) == ["submission.csv"] and res.node in live_nodes()
    assert "extra.bin" in res.artifacts
    assert (data / "train.csv").read_text() == "id,y\n1,2\n"


def test_a_node_keeps_the_data_it_uses_and_evicts_the_least_recently_used_rest(ray_cluster, tmp_path):
    root = tmp_path / "node"
    root.mkdir(mode=0o711)

    def files(i):
        return [ray.put([("train.csv", f"id,y\n{i},0\n".encode())])]

    with node_data("k0", files(0), root, keep=2) as held:  # a script reads k0 all along
        for i in range(1, 5):
            with node_data(f"k{i}", files(i), root, keep=2) as folder:
                assert (folder / "train.csv").read_text() == f"id,y\n{i},0\n"
                time.sleep(0.01)  # distinct use times
        assert (held / "train.csv").is_file()
    assert sorted(p.name for p in (root / "data").iterdir() if p.is_dir()) == ["k0", "k3", "k4"]


def test_a_request_no_node_can_meet_is_refused_before_anything_runs(ray_cluster):
    with pytest.raises(ValueError, match="no live node"):
        RayExecutor(gpus=1)
    with pytest.raises(ValueError, match="no live node"):
        RayExecutor(cpus=3)


def test_a_node_whose_sandbox_leaves_the_network_open_refuses_scripts_unless_told(ray_cluster, tmp_path):
    """A script that reached the network could reach Ray's unauthenticated control plane, and run code as root
    on every node: a node without bubblewrap (here: isolation turned off) does not run it."""
    (tmp_path / "main.py").write_text("print('ran')\n")
    (tmp_path / "data").mkdir()
    args = (tmp_path / "main.py", tmp_path / "work", tmp_path / "data", Limits(timeout_s=30, threads=1))
    refused = RayExecutor(cpus=1, sandbox={"isolation": "none"}).run(*args)
    assert refused.status == "error" and "control plane" in refused.detail and "ran" not in refused.stdout
    accepted = RayExecutor(cpus=1, sandbox={"isolation": "none"}, weak_sandbox=True).run(*args)
    assert accepted.ok and accepted.stdout.strip() == "ran"
    with pytest.raises(ValueError, match="control plane"):
        RayExecutor(cpus=1, allow_network=True)


def test_an_unreachable_cluster_is_a_clear_error_in_seconds_and_another_cluster_is_refused(ray_cluster):
    start = time.monotonic()
    with pytest.raises(RayUnavailable, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        _reachable("127.0.0.1:1")
    assert time.monotonic() - start < 15
    with pytest.raises(RayUnavailable, match="already connected"):
        connect("127.0.0.1:1")


@pytest.fixture(scope="module")
def hostile_executor(ray_cluster):
    if not ISO.full:
        message = f"the full isolation chain is not available here: {'; '.join(ISO.missing)}"
        if os.environ.get("GOME_REQUIRE_SANDBOX"):
            pytest.fail(message)
        pytest.skip(message)
    return RayExecutor(cpus=1, sandbox={"memory_bytes": 512 << 20, "pids": 128, "disk_bytes": DISK_QUOTA,
                                        "inodes": INODE_QUOTA})


@pytest.mark.parametrize("hostile", SCRIPTS, ids=[h.name for h in SCRIPTS])
def test_hostile_script_is_contained_through_ray(hostile_executor, hostile, tmp_path):
    verdict = check(hostile_executor, hostile, tmp_path)
    assert verdict["contained"], verdict["problems"]
    assert verdict["isolation"] == ISO.level


def _wait_for(condition, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)


def test_a_node_killed_under_its_script_is_a_recorded_error_and_leaves_nothing_running(ray_cluster, tmp_path):
    node = add_node(ray_cluster, doomed=1)
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "main.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    marker = os.urandom(8).hex()
    ex, got = RayExecutor(cpus=1, resources={"doomed": 1}), {}
    start = time.monotonic()
    runner = threading.Thread(target=lambda: got.setdefault("res", ex.run(
        tmp_path / "main.py", tmp_path / "work", data, Limits(timeout_s=110, threads=1),
        env={"GOME_HOSTILE_MARKER": marker})))
    runner.start()
    _wait_for(lambda: bool(_marked(marker)))
    kill_node(ray_cluster, node)
    runner.join(100)
    res = got["res"]
    assert res.status == "error" and "lost" in res.detail and time.monotonic() - start < 100
    assert not leftovers(marker, settle_s=10)  # the sandbox died with its node's worker (--die-with-parent)
    # The dead worker's folder (its script, its outputs) is swept by the next script on the machine.
    assert RayExecutor(cpus=1).run(tmp_path / "main.py", tmp_path / "work", data, Limits(timeout_s=5, threads=1)
                                   ).status == "timeout"
    dead = [d for d in node_root().glob("run-*-*") if not os.path.exists(f"/proc/{d.name.split('-')[1]}")]
    assert not dead


def slow_script(prompt: str) -> str:
    """generic_script, whose full run (not the run on a sample) takes 20 s: long enough to kill its node."""
    return generic_script(prompt).replace(
        "import os\n", "import os\nimport time\nif os.environ.get('GOME_DEBUG') == '0':\n    time.sleep(20)\n", 1)


def test_a_run_goes_on_when_the_node_under_its_script_dies(ray_cluster, breast_cancer, tmp_path):
    from gome.graph.run import run_gome
    from gome.state.records import RunConfig

    node = add_node(ray_cluster, doomed=1)

    def full_run_started() -> bool:  # a sandboxed script of this test, past its run on a sample
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if b"GOME_DEBUG=0" in env:
                return True
        return False

    got = {}
    runner = threading.Thread(target=lambda: got.setdefault("final", run_gome(
        breast_cancer, RunConfig(steps=2, time_s=600, threads=1, select={"reruns": 0}), out=tmp_path,
        chat_model=fake_model(slow_script), executor=RayExecutor(cpus=1, resources={"doomed": 1}))))
    runner.start()
    _wait_for(full_run_started)
    kill_node(ray_cluster, node)
    spare = add_node(ray_cluster, doomed=1)  # where the run goes on
    try:
        runner.join(400)
    finally:
        kill_node(ray_cluster, spare)  # the cluster as the other tests know it
    final = got["final"]
    done = results(next(tmp_path.glob("*/run.json")).parent)
    lost = [r for r in done if "lost" in r.get("detail", "")]
    assert len(lost) == 1 and lost[0]["status"] == "error"
    assert final["status"] == "succeeded" and any(r["status"] == "ok" and r["score"] is not None for r in done)
