"""Sandbox figures: hostile scripts contained per isolation level, and launch overhead per run.

    python -m gome.evals.bench_sandbox [--runs 20]

Levels are built from the links this machine has (bubblewrap, cgroup, uid, rlimits, quota). Scripts that would
harm the host are not run at levels without the link that contains them (fork and memory bombs need a cgroup,
disk and inode floods a quota): they count as not contained. Anything an uncontained script leaves behind is
removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gome.evals.hostile import DISK_QUOTA, INODE_QUOTA, SCRIPTS, check
from gome.tools.sandbox.executor import Limits
from gome.tools.sandbox.isolation import probe
from gome.tools.sandbox.local import LocalExecutor

LEVELS = {  # name -> links allowed
    "full": ("bwrap", "cgroup", "uid", "rlimits", "quota"),
    "bwrap only": ("bwrap",),
    "cgroup+rlimits (no bwrap)": ("cgroup", "uid", "rlimits"),
    "process group": (),
}


def launch_overhead(runs: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "main.py").write_text("pass\n")

        def timed(fn) -> float:
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1000)
            return statistics.median(samples)

        plain = timed(lambda: subprocess.run([sys.executable, str(work / "main.py")], cwd=work, check=True))
        print(f"== launch overhead, median of {runs} runs of an empty script (ms)")
        print(f"plain subprocess.run: {plain:6.1f}")
        for name, allowed in LEVELS.items():
            ex = LocalExecutor(isolation=probe(sys.executable, allowed) if allowed else "none")
            ms = timed(lambda ex=ex: ex.run(work / "main.py", work, work, Limits(timeout_s=60)))
            print(f"{name:30} ({ex.isolation}): {ms:6.1f}  (+{ms - plain:.1f} over plain)")


def hostile_counts() -> None:
    print("== hostile scripts contained, per isolation level")
    for name, allowed in LEVELS.items():
        iso = probe(sys.executable, allowed) if allowed else None
        ex = LocalExecutor(isolation=iso or "none", memory_bytes=512 << 20, pids=128, disk_bytes=DISK_QUOTA,
                           inodes=INODE_QUOTA)
        contained, notes = 0, []
        with tempfile.TemporaryDirectory() as d:
            for hostile in SCRIPTS:
                if hostile.needs and not (iso and getattr(iso, hostile.needs)):
                    notes.append(f"{hostile.name}: not run (would harm the host without {hostile.needs})")
                    continue
                verdict = check(ex, hostile, Path(d), timeout_s=3)
                contained += verdict["contained"]
                if not verdict["contained"]:
                    notes.append(f"{hostile.name}: {'; '.join(verdict['problems'])[:150]}")
        print(f"{name:30} ({ex.isolation}): {contained}/{len(SCRIPTS)}")
        for n in notes:
            print(f"    - {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    launch_overhead(args.runs)
    hostile_counts()


if __name__ == "__main__":
    main()
