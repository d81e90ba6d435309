"""Orchestration overhead per step and checkpoint bytes per step, with an instant scripted model.

    python -m gome.evals.bench_overhead [--steps 50] [--task examples/breast-cancer]

Overhead is a step's wall time minus its LLM time minus the script's runtime: what gome itself costs (harness
scoring, files, checkpoints, prompts). Checkpoint bytes are what SQLite stores per step (checkpoint blobs,
metadata and pending writes), read back from checkpoints.sqlite: the state is bounded, so step 50 should cost
what step 5 costs. Run from the repository root: it uses the scripted model in tests/fakes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRIVIAL = '''import os
import numpy as np
import pandas as pd
D = os.environ["GOME_DATA_DIR"]
train, test = pd.read_csv(f"{D}/train.csv"), pd.read_csv(f"{D}/test.csv")
rng = np.random.default_rng(SEED)
held = train.sample(frac=0.2, random_state=0)
pd.DataFrame({"id": held["id"], "benign": rng.random(len(held))}).to_csv("val_predictions.csv", index=False)
pd.DataFrame({"id": test["id"], "benign": rng.random(len(test))}).to_csv("submission.csv", index=False)
'''


def replies(steps: int) -> list:
    from tests.fakes.scripts import diagnosis, hypotheses, script

    out = []
    for i in range(steps):
        if i:
            out.append(hypotheses((f"try random seed {i}", "model", "minimal", 3)))
        out.append(script(TRIVIAL.replace("SEED", str(i))))
        out.append(diagnosis("ran", True, f"step {i} ran"))
    return out


def checkpoint_bytes_per_step(db: Path) -> dict[int, int]:
    """Bytes written for each gome step of the trace, grouped by the trace's `step` channel."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(db)
    raw = {cid: size for cid, size in conn.execute(
        "SELECT checkpoint_id, length(checkpoint) + length(metadata) FROM checkpoints WHERE checkpoint_ns != ''")}
    for cid, size in conn.execute(
            "SELECT checkpoint_id, sum(length(value)) FROM writes WHERE checkpoint_ns != '' GROUP BY checkpoint_id"):
        raw[cid] = raw.get(cid, 0) + size
    ns, thread = conn.execute("SELECT checkpoint_ns, thread_id FROM checkpoints WHERE checkpoint_ns != ''").fetchone()
    per_step: dict[int, int] = defaultdict(int)
    for tup in SqliteSaver(conn).list({"configurable": {"thread_id": thread, "checkpoint_ns": ns}}):
        step = tup.checkpoint["channel_values"].get("step", 0)
        per_step[step] += raw.get(tup.config["configurable"]["checkpoint_id"], 0)
    return dict(per_step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=51, help="51 steps make a step 50 (steps count from 0)")
    ap.add_argument("--task", default=str(ROOT / "examples" / "breast-cancer"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from gome.graph.run import run_gome
    from gome.state.records import RunConfig
    from tests.fakes.chat import ScriptedChatModel

    stamps: list[float] = []
    model = ScriptedChatModel(replies=replies(args.steps))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        final = run_gome(args.task, RunConfig(steps=args.steps, time_s=3600), out=out, chat_model=model,
                         on_event=lambda e: e.get("event") == "step" and stamps.append(time.monotonic()))
        total = time.monotonic() - t0
        run_dir = Path(final["run_dir"])
        run = json.loads((run_dir / "run.json").read_text())
        usage = [json.loads(line) for line in (run_dir / "usage.jsonl").read_text().splitlines()]
        ckpt = checkpoint_bytes_per_step(run_dir / "checkpoints.sqlite")
        db_size = (run_dir / "checkpoints.sqlite").stat().st_size

    # usage rows carry wall-clock `at`; step i spans (stamp[i-1], stamp[i]] in monotonic time. Convert once.
    offset = time.time() - time.monotonic()
    overheads = []
    for i in range(1, len(stamps)):
        lo, hi = stamps[i - 1] + offset, stamps[i] + offset
        llm = sum(u["seconds"] for u in usage if lo < u["at"] <= hi)
        script = run["steps"][i]["runtime_s"]
        overheads.append((stamps[i] - stamps[i - 1] - llm - script) * 1000)

    print(f"steps: {len(run['steps'])}  total wall: {total:.1f} s  status: {final['status']}")
    print(f"orchestration overhead per step (ms): median {statistics.median(overheads):.1f}  "
          f"p90 {statistics.quantiles(overheads, n=10)[-1]:.1f}  max {max(overheads):.1f}  (target <= 50 median)")
    marks = sorted({min(s, args.steps - 1) for s in (5, 10, 25, args.steps - 1)})
    print("checkpoint bytes written per step: " + "  ".join(f"step {s}: {ckpt.get(s, 0)}" for s in marks)
          + f"  ratio last/step {marks[0]}: {ckpt.get(marks[-1], 0) / max(ckpt.get(marks[0], 1), 1):.2f}"
          "  (target: no growth)")
    print(f"checkpoints.sqlite after {args.steps} steps: {db_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
