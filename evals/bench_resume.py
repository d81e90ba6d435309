"""Kill points resumed cleanly, and time to resume.

    python -m gome.evals.bench_resume

For every kill point of tests/test_resume.py: run the scripted 3-step breast-cancer run, SIGKILL it there,
then `resume`. Counts the runs that complete with no experiment lost or run again, and times the resume from
the start of the resuming process to the next step starting (its `step_started` event in events.jsonl; for
kills after the last step, to the end of the run). Run from the repository root.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.test_resume import KILL_POINTS

    ok, waits = 0, []
    for kill in KILL_POINTS:
        with tempfile.TemporaryDirectory() as out:
            first = subprocess.run([sys.executable, "-m", "tests.drivers.kill_run", "run",
                                    str(ROOT / "examples/breast-cancer"), out, kill], cwd=ROOT, capture_output=True,
                                   text=True)
            run_dir = Path(first.stdout.splitlines()[0])
            before = {p.parent.name: os.stat(p.parent / "result.json").st_mtime_ns
                      for p in run_dir.glob("experiments/*/metrics.json")}
            t0 = time.time()
            second = subprocess.run([sys.executable, "-m", "tests.drivers.kill_run", "resume", str(run_dir)],
                                    cwd=ROOT, capture_output=True, text=True)
            end = time.time()
            run = json.loads((run_dir / "run.json").read_text())
            starts = [e["at"] for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())
                      if e.get("event") == "step_started" and e["at"] >= t0]
            wait = (min(starts) if starts else end) - t0
            clean = (first.returncode == -9 and second.returncode == 0 and run["status"] == "succeeded"
                     and [s["id"] for s in run["steps"]] == ["0001", "0002", "0003"]
                     and all(os.stat(run_dir / "experiments" / i / "result.json").st_mtime_ns == m
                             for i, m in before.items()))
            ok += clean
            waits.append(wait)
            print(f"{kill:26} {'resumed cleanly' if clean else 'FAILED'}; next step started {wait:.2f} s after "
                  f"`resume` began{'' if starts else ' (no step left: time to the end)'}")
    print(f"kill points resumed cleanly: {ok}/{len(KILL_POINTS)}; time to resume: median {statistics.median(waits):.2f}"
          f" s, max {max(waits):.2f} s (a fresh Python process importing gome, langgraph and the sandbox probe)")


if __name__ == "__main__":
    main()
