"""expand: tree search's step (AIDE-style). Pick a node of the solution tree by scalar harness score only, and
ask for one child: a new draft, a fix of a buggy leaf, or an improvement of a working node.

No diagnosis, hypothesis or memory feeds the choice: that is the point of the comparison with gradient mode.
"""

from __future__ import annotations

import math
import random

from langgraph.runtime import Runtime

from gome.nodes.prompts import CODE_CHARS, EXPAND_DEBUG, EXPAND_DRAFT, EXPAND_IMPROVE, LOG_CHARS, clip, time_note
from gome.nodes.runtime import config_of, folder_of, llm, task_of
from gome.nodes.scripts import announce, save_script, sibling_note, write_change
from gome.nodes.template import baseline_template
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.journal import Journal
from gome.state.records import Experiment, TreeConfig
from gome.tools.run.folder import experiment_id


def pick(tree: Journal, cfg: TreeConfig, direction: str, rng: random.Random) -> tuple[str, Experiment | None]:
    """(intent, node): draft while fewer than num_drafts roots exist; debug a buggy leaf with probability
    debug_prob; otherwise improve the best working node (greedy) or the UCT choice."""
    if len(tree.roots) < cfg.num_drafts:
        return "draft", None
    debuggable = [n for n in tree.buggy if not tree.children(n.id) and tree.debug_depth(n.id) < cfg.max_debug_depth]
    good = tree.good
    if debuggable and (not good or rng.random() < cfg.debug_prob):
        return "debug", rng.choice(debuggable)
    if not good:
        return "draft", None
    if cfg.policy == "greedy":
        return "improve", tree.best(direction)
    return "improve", _uct(good, tree, cfg.uct_c, direction)


def _uct(good: list[Experiment], tree: Journal, c: float, direction: str) -> Experiment:
    scores = [n.score for n in good]
    lo, hi = min(scores), max(scores)

    def value(n: Experiment) -> float:
        norm = 0.5 if hi == lo else (n.score - lo) / (hi - lo)
        norm = norm if direction == "maximize" else 1 - norm
        visits = 1 + len(tree.children(n.id))
        return norm + c * math.sqrt(math.log(len(tree) + 1) / visits)

    return max(good, key=value)


def expand(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, run, trace, step = config_of(state), folder_of(state), state["trace"], state.get("step", 0)
    task = state["task"]
    rng = random.Random(f"{cfg.seed}-{trace}-{step}")
    tree = run.journal().of_trace(trace)
    intent, node = pick(tree, cfg.tree, task["direction"], rng)
    common, base = {"time": time_note(state)}, None
    if intent == "draft":
        others = [run.experiment(n.id).read("plan", {}).get("approach") for n in tree.roots]
        prompt = EXPAND_DRAFT.format(**common, siblings=sibling_note(runtime, state),
                                     others="\n".join(f"- {o}" for o in others if o) or "- none yet",
                                     # every other root starts from the averaged-ensemble template: the
                                     # 1.5B model copies the template it is given, so copies must differ
                                     template=baseline_template(task_of(state), cfg.repair.debug_rows,
                                                                ensemble=len(tree.roots) % 2 == 1))
    elif intent == "debug":
        folder = run.experiment(node.id)
        result = folder.read("result", {})
        detail = "; ".join(str(result.get(k)) for k in ("status", "detail", "val_error", "submission_error")
                           if result.get(k))
        base = folder.read_code() or ""
        prompt = EXPAND_DEBUG.format(**common, code=clip(base, CODE_CHARS), detail=detail,
                                     stderr=clip(folder.read_log("stderr") or "", LOG_CHARS) or "(empty)")
    else:
        base = run.experiment(node.id).read_code() or ""
        prompt = EXPAND_IMPROVE.format(**common, code=clip(base, CODE_CHARS), metric=task["metric"],
                                       score=f"{node.score:.6g}")
    caller = llm(state, runtime, "expand")
    code, edit = write_change(caller, state, prompt, base, small=intent != "draft")
    exp_id = experiment_id(trace, step, cfg.traces)
    pending = save_script(state["run_dir"], exp_id, code, parent=node.id if node else None,
                          plan={"kind": intent, "tree_policy": cfg.tree.policy, "edit": edit}, errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "attempt": 0, "usage": caller.usage}
