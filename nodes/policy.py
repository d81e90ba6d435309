"""The search policy of a trace: when it stops (a budget is spent) and, in auto mode, which mode its next step
takes. Pure functions of state, unit-tested without a graph.

checkpoint applies them at the end of every step and records their answers (with the reason for a mode switch);
graph/routing's conditional edge only reads what was recorded.
"""

from __future__ import annotations

import time

from gome.nodes.judge import harness_scored
from gome.state.records import RunConfig

MIN_REPAIR_S = 15  # wall clock a repair needs at least (an LLM call and a run)


def stop_reason(state: dict, now: float | None = None) -> str | None:
    """Why this trace must stop now, or None: its steps, the run's wall clock, tokens or dollars are spent."""
    cfg, spent = state.get("config", {}), state.get("spent") or {}
    if state.get("step", 0) >= state.get("budget", 0):
        return "steps"
    if (now if now is not None else time.time()) >= state.get("deadline", float("inf")):
        return "time"
    return over_budget(cfg, spent)


def over_budget(cfg: dict, spent: dict) -> str | None:
    """"tokens" or "dollars" when the run has spent that budget, else None."""
    if cfg.get("max_tokens") and spent.get("tokens", 0) >= cfg["max_tokens"]:
        return "tokens"
    if cfg.get("max_dollars") and spent.get("dollars", 0.0) >= cfg["max_dollars"]:
        return "dollars"
    return None


def _rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 1.0


def choose_mode(state: dict) -> tuple[str, str | None]:
    """The mode of the next step, and why it changed (None when it did not).

    Fixed modes never change. `auto` leaves the current mode once it has run `min_steps` steps and stopped
    paying off: gradient when few of its recent steps were accepted and the best has stalled; tree when the best
    has stalled or its recent nodes all score alike (the tree explores nothing new).
    """
    cfg = state["config"]
    if cfg.get("mode", "gradient") != "auto":
        return cfg.get("mode", "gradient"), None
    auto = cfg.get("auto", {})
    current = state.get("mode_now") or auto.get("start", "gradient")
    if state.get("mode_steps", 0) < auto.get("min_steps", 3):
        return current, None
    window = auto.get("window", 4)
    recent = [f for f in state.get("feedback", []) if f.get("mode") == current][-window:]
    stalled = state.get("since_improvement", 0) >= auto.get("stall", 3)
    if current == "gradient":
        rate = _rate([f["accepted"] for f in recent])
        if stalled and rate < auto.get("accept_low", 0.25):
            return "tree", (f"gradient steps accepted {sum(f['accepted'] for f in recent)}/{len(recent)} and no "
                            f"new best for {state.get('since_improvement', 0)} steps")
        return current, None
    scores = [f["score"] for f in recent if f.get("score") is not None and f.get("status") == "ok"]
    spread = (max(scores) - min(scores)) / max(abs(sum(scores) / len(scores)), 1e-12) if len(scores) >= 2 else None
    if stalled:
        return "gradient", f"tree search found no new best for {state.get('since_improvement', 0)} steps"
    if spread is not None and spread < auto.get("spread_low", 0.005):
        return "gradient", f"tree nodes score alike (relative spread {spread:.2g}): it explores nothing new"
    return current, None


def should_repair(state: dict, now: float | None = None) -> bool:
    """After execute: repair the script (same step) rather than judge it? Only a script that ran and failed,
    while repairs and wall clock remain; a script the repair could not replace goes to judgement as it is."""
    last, cfg = state.get("last") or {}, state.get("config", {})
    if not last or last.get("status") == "no_script" or last.get("repair_error") or harness_scored(last) \
            or last.get("phase") == "candidates":  # a blend's inputs are missing: no change to the script helps
        return False
    if state.get("attempt", 0) >= cfg.get("repair", {}).get("rounds", 3):
        return False
    return (now if now is not None else time.time()) < state.get("deadline", float("inf")) - MIN_REPAIR_S


def late_stage(state: dict, now: float | None = None) -> bool:
    """Is this trace past the share of its budget (its steps, with the one about to run, or the search's wall
    clock) after which its gradient steps blend the run's best candidates?"""
    cfg = state.get("config", {})
    share = cfg.get("late_stage", 0.7)
    if share >= 1:
        return False
    steps = (state.get("step", 0) + 1) / max(state.get("budget", 1), 1)
    search = RunConfig.model_validate(cfg).search_time()
    left = state.get("deadline", float("inf")) - (now if now is not None else time.time())
    return steps >= share or (search > 0 and 1 - left / search >= share)
