"""Parallel traces and bounded growth, with a scripted model that sleeps like a remote LLM.

    python -m gome.evals.bench_traces [--latency 0.5] [--steps-per-trace 4] [--long 101]

Prints (1) iterations per hour for K = 1, 2, 4, 8 traces while LLM-bound (target: >= 0.9 * K times K=1),
(2) prompt tokens per call at step 10 vs step 100 (target <= 1.2x), (3) checkpoint bytes per step at step 10 vs
step 100 (target: no growth). Run from the repository root: it uses the scripted model in tests/fakes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Trivial on purpose (no pandas import): the run must be bound by the LLM's latency, not by 2 CPU cores.
TRIVIAL = '''# Approach: seeded random guess SEED
import csv, os, random
D = os.environ["GOME_DATA_DIR"]
rng = random.Random(SEED)
def rows(name):
    with open(os.path.join(D, name)) as f:
        return list(csv.DictReader(f))
with open("val_predictions.csv", "w") as f:
    f.write("id,benign\\n" + "".join(f"{r['id']},{rng.random()}\\n" for r in rows("train.csv")[:200]))
with open("submission.csv", "w") as f:
    f.write("id,benign\\n" + "".join(f"{r['id']},{rng.random()}\\n" for r in rows("test.csv")))
'''


def replies(steps: int, offset: int = 0) -> list:
    from tests.fakes.scripts import diagnosis, hypotheses, script

    out = []
    for i in range(steps):
        if i:
            out.append(hypotheses((f"try random seed {offset + i} for the guess", "model", "minimal", 3)))
        out.append(script(TRIVIAL.replace("SEED", str(offset + i))))
        out.append(diagnosis("ran", True, f"step {i} ran; the guess is random"))
    return out


def run(task: str, traces: int, steps_per_trace: int, latency: float) -> tuple[float, Path, dict]:
    from gome.graph.run import run_gome
    from gome.state.records import RunConfig
    from tests.fakes.chat import ScriptedChatModel

    model = ScriptedChatModel(replies={t: replies(steps_per_trace, 1000 * t) for t in range(traces)},
                              latency=latency)
    out = Path(tempfile.mkdtemp(prefix="gome-bench-"))
    cfg = RunConfig(traces=traces, steps=traces * steps_per_trace, time_s=3600, select={"reruns": 0})
    t0 = time.monotonic()
    final = run_gome(task, cfg, out=out, chat_model=model)
    return time.monotonic() - t0, Path(final["run_dir"]), final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.5, help="seconds the fake LLM takes per call")
    ap.add_argument("--steps-per-trace", type=int, default=8, help="more steps amortise start-up (prepare, select)")
    ap.add_argument("--long", type=int, default=101, help="steps of the growth run (101 makes a step 100)")
    ap.add_argument("--task", default=str(ROOT / "examples" / "breast-cancer"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from gome.evals.bench_overhead import checkpoint_bytes_per_step

    print(f"== iterations per hour, LLM latency {args.latency} s/call, {args.steps_per_trace} steps per trace")
    base = None
    for k in (1, 2, 4, 8):
        wall, _, final = run(args.task, k, args.steps_per_trace, args.latency)
        rate = k * args.steps_per_trace / wall * 3600
        base = base or rate
        print(f"K={k}: {k * args.steps_per_trace} steps in {wall:5.1f} s = {rate:7.0f} it/h; "
              f"{rate / base:4.2f}x of K=1 (target >= {0.9 * k:.1f}x); status {final['status']}")

    print(f"== growth over a {args.long}-step run (no latency)")
    _, run_dir, _ = run(args.task, 1, args.long, 0.0)
    usage = [json.loads(line) for line in (run_dir / "usage.jsonl").read_text().splitlines()]
    for node in ("diagnose", "compute-gradient", "apply-momentum"):
        calls = [u["input_tokens"] for u in usage if u["node"] == node]
        first = 10 if node == "diagnose" else 9  # diagnose runs from step 0, the others from step 1
        if len(calls) > first + 90:
            a, b = calls[first], calls[first + 90]
            print(f"prompt tokens per call, {node:16}: step 10: {a:6}  step 100: {b:6}  ratio {b / a:.2f} "
                  "(target <= 1.2)")
    ckpt = checkpoint_bytes_per_step(run_dir / "checkpoints.sqlite")
    print(f"checkpoint bytes written per step: step 10: {ckpt.get(10, 0)}  step 100: {ckpt.get(100, 0)}  "
          f"ratio {ckpt.get(100, 0) / max(ckpt.get(10, 1), 1):.2f} (target: no growth)")


if __name__ == "__main__":
    main()
