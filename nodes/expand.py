"""expand: tree search's step (AIDE-style). Pick a node of the solution tree by scalar harness score only, and
ask for one child: a new draft, a fix of a buggy leaf, or an improvement of a working node.

No diagnosis, hypothesis or memory feeds the choice: that is the point of the comparison with gradient mode.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.common import CODE_CHARS, LOG_CHARS, clip, config_of, llm, read_code, script_rules, system, task_brief
from gome.nodes.scripts import announce, save_script, sibling_note
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import TreeConfig
from gome.tools.files import read_text
from gome.tools.run.folder import experiment_dir, experiment_id, read_json
from gome.tools.task.metrics import beats

DRAFT = """{brief}

{rules}
{siblings}
Write a new solution from scratch: a sound approach that differs from the drafts this search already has:
{others}"""

DEBUG = """{brief}

{rules}

# A script that failed
```python
{code}
```

# What happened
{detail}

# stderr (tail)
{stderr}

Fix the failure and return the whole corrected script. Keep the approach; change only what the fix needs."""

IMPROVE = """{brief}

{rules}

# A working solution (validation {metric}: {score})
```python
{code}
```

Make one atomic improvement that should raise the validation score (a single, focused change: a feature, a model
setting, a preprocessing step) and return the whole new script."""


def load_tree(run_dir: str, trace: int) -> list[dict]:
    """This trace's solution tree from the experiment records on disk (state stays small)."""
    nodes = {}
    for path in sorted((Path(run_dir) / "experiments").glob("*/metrics.json")):
        rec = read_json(path)
        if rec and rec.get("trace") == trace:
            nodes[rec["id"]] = {k: rec.get(k) for k in ("id", "parent", "intent", "buggy", "score", "score_source",
                                                        "status", "submission_valid")}
    for node in nodes.values():  # depth of consecutive fixes ending here
        depth, cur = 0, node
        while cur and cur.get("intent") == "debug" and cur.get("parent") in nodes:
            depth, cur = depth + 1, nodes[cur["parent"]]
        node["debug_depth"] = depth
    return list(nodes.values())


def pick(tree: list[dict], cfg: TreeConfig, direction: str, rng: random.Random) -> tuple[str, dict | None]:
    """(intent, node): draft while fewer than num_drafts roots exist; debug a buggy leaf with probability
    debug_prob; otherwise improve the best working node (greedy) or the UCT choice."""
    roots = [n for n in tree if n["parent"] is None]
    if len(roots) < cfg.num_drafts:
        return "draft", None
    parents = {n["parent"] for n in tree}
    debuggable = [n for n in tree if n["buggy"] and n["id"] not in parents and n["debug_depth"] < cfg.max_debug_depth]
    good = [n for n in tree if not n["buggy"]]
    if debuggable and (not good or rng.random() < cfg.debug_prob):
        return "debug", rng.choice(debuggable)
    if not good:
        return "draft", None
    if cfg.policy == "greedy":
        best = None
        for n in good:
            if beats(n, best, direction):
                best = n
        return "improve", best
    return "improve", _uct(good, tree, cfg.uct_c, direction)


def _uct(good: list[dict], tree: list[dict], c: float, direction: str) -> dict:
    scores = [n["score"] for n in good]
    lo, hi = min(scores), max(scores)
    total = len(tree)

    def value(n: dict) -> float:
        norm = 0.5 if hi == lo else (n["score"] - lo) / (hi - lo)
        norm = norm if direction == "maximize" else 1 - norm
        visits = 1 + sum(1 for m in tree if m["parent"] == n["id"])
        return norm + c * math.sqrt(math.log(total + 1) / visits)

    return max(good, key=value)


def expand(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, run_dir, trace, step = config_of(state), state["run_dir"], state["trace"], state.get("step", 0)
    task = state["task"]
    rng = random.Random(f"{cfg.seed}-{trace}-{step}")
    tree = load_tree(run_dir, trace)
    intent, node = pick(tree, cfg.tree, task["direction"], rng)
    common = {"brief": task_brief(state), "rules": script_rules(state)}
    if intent == "draft":
        others = [read_json(experiment_dir(run_dir, n["id"]) / "plan.json", {}).get("approach") for n in tree
                  if n["parent"] is None]
        prompt = DRAFT.format(**common, siblings=sibling_note(runtime, state),
                              others="\n".join(f"- {o}" for o in others if o) or "- none yet")
    elif intent == "debug":
        folder = experiment_dir(run_dir, node["id"])
        result = read_json(folder / "result.json", {})
        try:
            stderr = read_text(folder / "stderr.txt", 1 << 20)
        except OSError:
            stderr = ""
        detail = "; ".join(str(result.get(k)) for k in ("status", "detail", "val_error", "submission_error")
                           if result.get(k))
        prompt = DEBUG.format(**common, code=clip(read_code(run_dir, node["id"]) or "", CODE_CHARS), detail=detail,
                              stderr=clip(stderr, LOG_CHARS) or "(empty)")
    else:
        prompt = IMPROVE.format(**common, code=clip(read_code(run_dir, node["id"]) or "", CODE_CHARS),
                                metric=task["metric"], score=f"{node['score']:.6g}")
    caller = llm(state, runtime, "expand")
    code = caller.write_script([system(state), HumanMessage(prompt)])
    exp_id = experiment_id(trace, step, cfg.traces)
    parent = node["id"] if node else None
    pending = save_script(run_dir, exp_id, code, parent=parent, plan={"kind": intent, "tree_policy": cfg.tree.policy},
                          errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "usage": caller.usage}
