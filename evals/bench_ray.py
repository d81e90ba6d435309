"""What Ray costs: a local cluster of two nodes on this machine (a head and a second node, one CPU each) against
the local executor, with scripted models (tests/fakes) and real scripts.

    python -m gome.evals.bench_ray [--launches 20] [--steps 6] [--skip-eval]

Prints (1) the launch overhead per script: median wall of an empty script, full sandbox chain, through Ray vs
directly; (2) iterations per hour of a run with K=2 traces, Ray vs local (one machine: expect overhead, not
speed-up); (3) cells per hour of a 4-cell eval, `--ray` vs plain. Run from the repository root (it imports
tests.fakes); nothing else should be running.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "python:tests.fakes.server_model:generic"


def launches(executor, n: int, base: Path) -> list[float]:
    from gome.tools.sandbox.executor import Limits

    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "main.py").write_text("pass\n")
    times = []
    for i in range(n + 2):  # two to warm up: Ray's worker processes, the data on the node, the spare quota image
        t0 = time.monotonic()
        res = executor.run(base / "main.py", base / f"work{i}", base / "data", Limits(timeout_s=60, threads=1))
        assert res.ok, res.stderr
        if i >= 2:
            times.append(time.monotonic() - t0)
    return times


def run_steps(executor, steps: int, out: Path) -> float:
    from gome.graph.run import run_gome
    from gome.state.records import ModelSpec, RunConfig
    from gome.tools.llm.models import make_chat_model

    cfg = RunConfig(traces=2, steps=steps, threads=1, time_s=3600, select={"reruns": 0})
    t0 = time.monotonic()
    final = run_gome(ROOT / "examples" / "breast-cancer", cfg, out=out,
                     chat_model=make_chat_model(ModelSpec(model=MODEL)), executor=executor)
    wall = time.monotonic() - t0
    done = len(list(Path(final["run_dir"]).glob("experiments/*/result.json")))
    return 3600 * done / wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--launches", type=int, default=20)
    p.add_argument("--steps", type=int, default=6, help="experiments of the K=2 run")
    p.add_argument("--skip-eval", action="store_true")
    args = p.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from gome.evals.runner import run_eval
    from gome.evals.suite.build import build_suite
    from gome.state.records import RunConfig
    from gome.tools.sandbox.local import LocalExecutor
    from gome.tools.sandbox.ray_executor import RayExecutor

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "object_store_memory": 100 << 20})
    cluster.add_node(num_cpus=1, object_store_memory=100 << 20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    figures = {}
    try:
        tmp = Path(tempfile.mkdtemp(prefix="gome-bench-ray-"))
        local, on_ray = LocalExecutor(slots=2), RayExecutor(cpus=1)
        lo, ra = launches(local, args.launches, tmp / "l"), launches(on_ray, args.launches, tmp / "r")
        figures["launch_ms"] = {"local": round(1000 * statistics.median(lo), 1),
                                "ray": round(1000 * statistics.median(ra), 1),
                                "isolation": local.isolation}
        figures["launch_ms"]["ray_overhead"] = round(figures["launch_ms"]["ray"] - figures["launch_ms"]["local"], 1)
        print(json.dumps({"launch_ms": figures["launch_ms"]}), flush=True)

        figures["iterations_per_hour_k2"] = {"local": round(run_steps(local, args.steps, tmp / "run-local")),
                                             "ray": round(run_steps(on_ray, args.steps, tmp / "run-ray"))}
        print(json.dumps({"iterations_per_hour_k2": figures["iterations_per_hour_k2"]}), flush=True)

        if not args.skip_eval:
            suite = tmp / "suite"
            build_suite(suite, ["penguin-mass", "credit-card"])
            cfg = RunConfig(steps=2, time_s=600, threads=1, select={"reruns": 0})
            kw = dict(tasks=["penguin-mass", "credit-card"], modes=["gradient", "tree"], seeds=[0],
                      models=[MODEL], config=cfg, log=lambda _: None)
            per_hour = {}
            for name, extra in (("plain", {}), ("ray", {"ray": True, "ray_address": cluster.address})):
                t0 = time.monotonic()
                cells = run_eval(suite, tmp / f"eval-{name}", **kw, **extra)
                per_hour[name] = round(3600 * len(cells) / (time.monotonic() - t0), 1)
            figures["cells_per_hour"] = per_hour
            print(json.dumps({"cells_per_hour": per_hour}), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
