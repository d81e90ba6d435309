"""apply-momentum: fold the success memory into the gradient, then take the step (write the new script).

The memory holds accepted hypotheses from every trace of the run (the LangGraph Store). Entries are weighted by
recency and gain, similar ones are grouped, and only the top m reach the prompt, so it does not grow with steps.
"""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from gome.nodes.checkpoint import memory_namespace
from gome.nodes.common import CODE_CHARS, clip, config_of, llm, read_code, script_rules, system, task_brief
from gome.nodes.scripts import announce, save_script, sibling_note
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.records import MemoryEntry
from gome.tools.run.folder import experiment_id

DECAY = 0.8  # weight of an entry relative to the next newer one
SIMILAR = 0.5  # word-set overlap (Jaccard) above which two changes count as the same idea
STEP_MEANING = {"minimal": "change as few lines as possible", "moderate": "a focused change of one component",
                "rewrite": "restructure the script freely, keeping what works"}

PROMPT = """{brief}

{rules}
{siblings}
# Base script ({base_note})
{base}

# Update plan
Change to make now: {change}
Component: {component}. Step size: {step_size} ({step_meaning}).
Why: {rationale}

Momentum, changes that paid off in this run (keep their effect and build on them):
{momentum}

Avoid, recent changes that did not help:
{avoid}

Write the new complete script: apply the change at that step size and keep everything else that works."""

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def rank_memory(entries: list[MemoryEntry], top_m: int) -> list[dict]:
    """Group similar accepted changes and rank groups by recency-decayed, gain-scaled weight; keep top m."""
    entries = sorted(entries, key=lambda e: e.created_at, reverse=True)
    gains = [e.gain for e in entries if e.gain is not None and e.gain > 0]
    scale = max(gains) if gains else 1.0
    groups: list[dict] = []
    for age, e in enumerate(entries):
        weight = DECAY ** age * (0.5 + 0.5 * (max(e.gain, 0) / scale if e.gain is not None else 0.5))
        words = _words(e.change)
        for g in groups:
            union = words | g["words"]
            if g["component"] == e.component and union and len(words & g["words"]) / len(union) >= SIMILAR:
                g["weight"] += weight
                g["times"] += 1
                break
        else:
            groups.append({"change": e.change, "component": e.component, "weight": weight, "times": 1,
                           "words": words, "traces": set()})
            g = groups[-1]
        g["traces"].add(e.trace)
    groups.sort(key=lambda g: g["weight"], reverse=True)
    return [{"change": g["change"], "component": g["component"], "times": g["times"],
             "weight": round(g["weight"], 3), "traces": sorted(g["traces"])} for g in groups[:top_m]]


def read_memory(runtime: Runtime[GomeContext] | None, run_id: str, limit: int = 500) -> list[MemoryEntry]:
    store = runtime.store if runtime is not None else None
    if store is None:
        return []
    return [MemoryEntry.model_validate(item.value) for item in store.search(memory_namespace(run_id), limit=limit)]


def apply_momentum(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    cfg, gradient, best, last = config_of(state), state["gradient"], state.get("best"), state.get("last") or {}
    h = gradient["hypothesis"]
    momentum = rank_memory(read_memory(runtime, state["run_id"]), cfg.memory_top_m)
    avoid = [f for f in state.get("feedback", []) if not f["accepted"] and f["hypothesis"] not in ("draft", None)]
    base_id = best["id"] if best else (last.get("id") if read_code(state["run_dir"], last.get("id")) else None)
    base_code = read_code(state["run_dir"], base_id)
    base_note = ("the best so far" if best else "the last attempt; it does not work yet") if base_code else "none"
    prompt = PROMPT.format(
        brief=task_brief(state), rules=script_rules(state), siblings=sibling_note(runtime, state), base_note=base_note,
        base=f"```python\n{clip(base_code, CODE_CHARS)}\n```" if base_code else "(none: write the script from scratch)",
        change=h["change"], component=h["component"], step_size=h["step_size"],
        step_meaning=STEP_MEANING[h["step_size"]], rationale=h.get("rationale") or "-",
        momentum="\n".join(f"- {m['change']} ({m['component']}; accepted {m['times']}x)" for m in momentum)
        or "- none yet",
        avoid="\n".join(f"- {f['hypothesis']}: {f['reason']}" for f in avoid[-4:]) or "- nothing yet")
    caller = llm(state, runtime, "apply-momentum")
    code = caller.write_script([system(state), HumanMessage(prompt)])
    exp_id = experiment_id(state["trace"], state.get("step", 0), cfg.traces)
    plan = {"kind": "update", "gradient": gradient, "momentum": momentum,
            "avoid": [f["hypothesis"] for f in avoid[-4:]], "base": base_id}
    pending = save_script(state["run_dir"], exp_id, code, parent=base_id, plan=plan, errors=caller.errors)
    announce(runtime, state, pending)
    return {"pending": pending, "usage": caller.usage}
