"""Orchestration overhead per step and checkpoint bytes per step, with an instant scripted model.

    python -m gome.evals.bench_overhead [--steps 51] [--task examples/breast-cancer] [--repeat 4]

Overhead is a step's wall time minus its LLM time minus the script's runtime: what gome itself costs (harness
scoring, files, checkpoints, prompts). On a shared 2-core machine one run's median moves by a few ms from run to
run of the same code: compare the median of several runs' medians, alternating the two commits. gome's CPU per
step (all its threads, the scripts not included, the scripted model's own work included) is printed beside it.
Checkpoint bytes are what SQLite stores per step (checkpoint blobs, metadata and pending writes), read back from
checkpoints.sqlite: the state is bounded, so step 50 should cost what step 5 costs. Run from the repository
root: it uses the scripted model in tests/fakes.
"""

from __future__ import annotations

import argparse
import json
import re
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


def scripted_model(steps: int):
    """A model that answers every request of a gradient run the way a good model would, by kind: a new seed per
    hypothesis, worded apart enough that gome does not drop it as a repeat of a refuted one; an edit block that
    sets that seed when asked for edits (the base script is the first script the prompt shows), the whole script
    otherwise (a draft, a late-stage ensemble or blend); a diagnosis that accepts. A model that gome re-asks
    would time retries, not steps: main() refuses to report a run that left this conversation."""
    from tests.fakes.chat import KindChatModel
    from tests.fakes.scripts import diagnosis, hypotheses, script

    seeds = iter(range(1, 10 * steps))
    wanted = [0]

    def hypothesis(prompt: str) -> dict:
        wanted[0] = next(seeds)
        return hypotheses((f"seed {1000 + wanted[0]}", "model", "minimal", 3))

    def text(prompt: str) -> str:
        base = re.search(r"default_rng\((\d+)\)", prompt)
        if base is None or "<<<<<<< SEARCH" not in prompt:
            return script(TRIVIAL.replace("SEED", str(wanted[0])))
        return (f"<<<<<<< SEARCH\nrng = np.random.default_rng({base.group(1)})\n=======\n"
                f"rng = np.random.default_rng({wanted[0]})\n>>>>>>> REPLACE\n")

    return KindChatModel(by_kind={"HypothesisSet": hypothesis, "text": text,
                                  "Diagnosis": diagnosis("ran", True, "the script ran")})


def off_script(run: dict, edits: dict[str, dict], calls: list[dict], steps: int) -> str | None:
    """How a run left the scripted conversation, or None. Figures from such a run time something else: a re-ask,
    a whole script after an edit that failed, a fallback. On script, every step runs ok, each makes one text call
    (its script or edit) and one diagnosis, each update step one hypothesis call, and every update is an edit
    that applied."""
    off = [f"{s['id']} {s['status']}" for s in run["steps"] if s["status"] != "ok"]
    if off or len(run["steps"]) != steps:
        return f"{len(run['steps'])} of {steps} steps, not ok: {off}"
    updates = {s["id"] for s in run["steps"] if s.get("intent") == "update"}
    text = sum(1 for c in calls if c["method"] == "plain")
    structured = sum(1 for c in calls if c["method"] != "plain")
    if text != steps or structured != steps + len(updates):
        return (f"{text} text and {structured} structured calls; on script {steps} and {steps + len(updates)} "
                f"({len(updates)} update steps)")
    failed = sorted(i for i in updates if not (edits.get(i, {}).get("asked") == "edits" and edits[i].get("applied")))
    return f"update steps whose edit did not apply: {failed}" if failed else None


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


def one_run(task: str, steps: int) -> dict:
    """One scripted run: its per-step overheads and gome's CPU per step (ms), checkpoint bytes, what it printed."""
    from gome.graph.run import run_gome
    from gome.state.records import RunConfig

    stamps: list[tuple[float, float]] = []  # (wall, gome's CPU: all its threads, not the scripts) at each step's end
    model = scripted_model(steps)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        final = run_gome(task, RunConfig(steps=steps, time_s=3600), out=out, chat_model=model,
                         on_event=lambda e: e.get("event") == "step" and stamps.append((time.monotonic(),
                                                                                        time.process_time())))
        total = time.monotonic() - t0
        run_dir = Path(final["run_dir"])
        run = json.loads((run_dir / "run.json").read_text())
        edits = {p.parent.name: json.loads(p.read_text()).get("edit") or {}
                 for p in run_dir.glob("experiments/*/plan.json")}
        usage = [json.loads(line) for line in (run_dir / "usage.jsonl").read_text().splitlines()]
        ckpt = checkpoint_bytes_per_step(run_dir / "checkpoints.sqlite")
        db_size = (run_dir / "checkpoints.sqlite").stat().st_size

    if problem := off_script(run, edits, model.calls, steps):
        sys.exit(f"the run left the scripted conversation ({problem}); fix scripted_model() before reading any figure")
    # usage rows carry wall-clock `at`; step i spans (stamp[i-1], stamp[i]] in monotonic time. Convert once.
    offset = time.time() - time.monotonic()
    overheads, cpu = [], []
    for i in range(1, len(stamps)):
        (lo, cpu_lo), (hi, cpu_hi) = stamps[i - 1], stamps[i]
        llm = sum(u["seconds"] for u in usage if lo + offset < u["at"] <= hi + offset)
        overheads.append((hi - lo - llm - run["steps"][i]["runtime_s"]) * 1000)
        cpu.append((cpu_hi - cpu_lo) * 1000)
    return {"run": run, "final": final, "total": total, "overheads": overheads, "cpu": cpu, "ckpt": ckpt,
            "db_size": db_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=51, help="51 steps make a step 50 (steps count from 0)")
    ap.add_argument("--task", default=str(ROOT / "examples" / "breast-cancer"))
    ap.add_argument("--repeat", type=int, default=1, help="runs, one after another: the median of their medians is "
                    "steadier on a shared machine, where one run's median moves by a few ms")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))

    medians, cpus = [], []
    for k in range(args.repeat):
        r = one_run(args.task, args.steps)
        overheads, run = r["overheads"], r["run"]
        medians.append(statistics.median(overheads))
        cpus.append(statistics.median(r["cpu"]))
        updates = sum(1 for s in run["steps"] if s.get("intent") == "update")
        print(f"{f'run {k + 1}: ' if args.repeat > 1 else ''}steps: {len(run['steps'])}  update steps (all edits, "
              f"all applied): {updates}  total wall: {r['total']:.1f} s  status: {r['final']['status']}")
        print(f"orchestration overhead per step (ms): median {medians[-1]:.1f}  "
              f"p90 {statistics.quantiles(overheads, n=10)[-1]:.1f}  max {max(overheads):.1f}  (target <= 20 median)")
        print(f"gome's CPU per step (ms, all its threads, scripts not included): median {cpus[-1]:.1f}")
    if args.repeat > 1:
        print(f"over {args.repeat} runs: overhead median of medians {statistics.median(medians):.1f} ms "
              f"(runs: {' '.join(f'{m:.1f}' for m in medians)}); CPU {statistics.median(cpus):.1f} ms")
    ckpt = r["ckpt"]
    marks = sorted({min(s, args.steps - 1) for s in (5, 10, 25, args.steps - 1)})
    print("checkpoint bytes written per step: " + "  ".join(f"step {s}: {ckpt.get(s, 0)}" for s in marks)
          + f"  ratio last/step {marks[0]}: {ckpt.get(marks[-1], 0) / max(ckpt.get(marks[0], 1), 1):.2f}"
          "  (target: no growth)")
    print(f"checkpoints.sqlite after {args.steps} steps: {r['db_size'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
