"""What a run's steps cost in LLM time and tokens, and how its small steps were written.

    python -m gome.evals.llm_steps RUN_DIR [RUN_DIR ...] [--server-log PATH --lines FROM:TO]

Per run: LLM seconds per step (median over the steps after the draft: each one's diagnose, compute-gradient,
apply-momentum or expand, and repairs), steps per hour of LLM time, output tokens per update step, prompt tokens
served from the provider's cache (usage.jsonl's cached_input_tokens), and the share of edit requests whose
edits applied (plan.json's `edit`, repairs included). llama-cpp-python's server reports no cached tokens; its log
does ("N prefix-match hit, remaining M prompt tokens to eval"): give the log and the line range a run wrote to
read them from there.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

PREFIX_HIT = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens")
STEP_NODES = {"diagnose", "compute-gradient", "apply-momentum", "expand", "repair"}


def run_figures(run_dir: Path) -> dict:
    calls = [json.loads(line) for line in (run_dir / "usage.jsonl").read_text().splitlines() if line.strip()]
    # A step: the diagnosis of the last run, the proposal, the writing of the new script and its repairs, up to
    # the next diagnosis.
    per_step, current = [], defaultdict(float)
    first = next((i for i, c in enumerate(calls) if c["node"] == "diagnose"), len(calls))
    for c in calls[first:]:  # the draft and its repairs come before the first diagnosis
        current["seconds"] += c["seconds"]
        current["output"] += c["output_tokens"] if c["node"] in ("apply-momentum", "expand", "repair") else 0
        current["writes"] += c["node"] in ("apply-momentum", "expand")
        if c["node"] == "diagnose" and current["writes"]:  # the next step begins with this diagnosis
            seconds = current["seconds"] - c["seconds"]
            per_step.append({"seconds": seconds, "output": current["output"]})
            current = defaultdict(float, {"seconds": c["seconds"]})
    prompt = sum(c["input_tokens"] for c in calls)
    edits = []
    for plan_file in sorted((run_dir / "experiments").glob("*/plan.json")):
        plan = json.loads(plan_file.read_text())
        edits += [e for e in [plan.get("edit"), *[r.get("edit") for r in plan.get("repairs", [])]]
                  if e and e.get("asked") == "edits"]
    return {
        "calls": len(calls), "steps_measured": len(per_step),
        "llm_s_per_step_median": statistics.median([s["seconds"] for s in per_step]) if per_step else None,
        "steps_per_llm_hour": 3600 / statistics.median([s["seconds"] for s in per_step]) if per_step else None,
        "output_tokens_per_update_median": statistics.median([s["output"] for s in per_step]) if per_step else None,
        "prompt_tokens": prompt, "cached_prompt_tokens": sum(c.get("cached_input_tokens", 0) for c in calls),
        "edit_requests": len(edits), "edits_applied": sum(1 for e in edits if e.get("applied")),
        "llm_seconds_total": round(sum(c["seconds"] for c in calls), 1),
    }


def server_log_cache(path: Path, lines: str) -> dict:
    start, _, end = lines.partition(":")
    text = path.read_text(errors="replace").splitlines()[int(start or 0):int(end) if end else None]
    hits = [tuple(map(int, m.groups())) for line in text if (m := PREFIX_HIT.search(line))]
    reused, fresh = sum(h[0] for h in hits), sum(h[1] for h in hits)
    return {"server_calls": len(hits), "prompt_tokens_reused": reused, "prompt_tokens_evaluated": fresh,
            "reused_share": round(reused / (reused + fresh), 3) if hits else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--server-log", type=Path, help="llama-cpp-python's log (~/.cache/gome/llama-server.log)")
    parser.add_argument("--lines", default="0:", help="FROM:TO, the lines of the log the run wrote")
    args = parser.parse_args(argv)
    for run in args.runs:
        figures = run_figures(run)
        if args.server_log:
            figures |= server_log_cache(args.server_log, args.lines)
        print(json.dumps({"run": str(run), **figures}))


if __name__ == "__main__":
    main()
