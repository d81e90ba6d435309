"""What a flood of output costs gome itself: a script that writes a 500 MB val_predictions.csv and a 10-million-row
submission, run through the real execute node on the breast-cancer example. Prints gome's own seconds (the node's
wall time minus the script's) and gome's peak memory growth, measured in a fresh process.

    python -m gome.evals.bench_artifacts [--mb 500] [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOD = '''
import os
with open("val_predictions.csv", "w") as f:
    f.write("id,benign\\n")
    line = "".join(f"{{i}},0.5\\n" for i in range(100_000))
    for _ in range({mb} * 1_000_000 // len(line)):
        f.write(line)
with open("submission.csv", "w") as f:
    f.write("id,benign\\n")
    chunk = "".join(f"{{i}},0.5\\n" for i in range(100_000))
    for _ in range({rows} // 100_000):
        f.write(chunk)
'''


def measure(mb: int, rows: int) -> dict:
    from gome.nodes.execute import execute
    from gome.nodes.prepare import prepare
    from gome.nodes.scripts import save_script
    from gome.state.records import RunConfig

    examples = Path(__file__).resolve().parents[1] / "examples" / "breast-cancer"
    with tempfile.TemporaryDirectory() as tmp:
        top = prepare({"task_dir": str(examples), "run_dir": str(Path(tmp) / "run"),
                       "config": RunConfig(steps=1, time_s=3600).model_dump(mode="json")})
        state = {**top, "trace": 0, "budget": 1, "step": 0, "feedback": [], "usage": {}, "best": None}
        pending = save_script(state["run_dir"], "0001", FLOOD.format(mb=mb, rows=rows), parent=None,
                              plan={"kind": "draft"}, errors=[])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.monotonic()
        last = execute({**state, "pending": pending}, None)["last"]
        wall = time.monotonic() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"script_s": round(last["runtime_s"], 2), "gome_s": round(wall - last["runtime_s"], 2),
            "gome_peak_growth_mb": round((peak - before) / 1024, 1), "status": last["status"],
            "val_error": (last.get("val_error") or "")[:120], "submission_error":
                (last.get("submission_error") or "")[:120]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--child", action="store_true")
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.mb, args.rows)))
        return
    out = subprocess.run([sys.executable, "-m", "gome.evals.bench_artifacts", "--child", "--mb", str(args.mb),
                          "--rows", str(args.rows)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"flood: {args.mb} MB val_predictions.csv + {args.rows:,}-row submission")
    for k, v in result.items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
