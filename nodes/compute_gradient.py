"""compute-gradient: propose scored hypotheses, drop those that repeat a refuted change, pick one.

The chosen hypothesis is the gradient: a direction (one focused, testable change) and a step size. The proposer
sees the task (a digest of its description and data, and its challenges), the last diagnosis and the change it
tested, the success memory of every trace (momentum steers the direction, not only the writing), the changes that
were refuted, and those whose implementation failed (untested: not refuted). Late in the budget the gradient is a
blend of the run's best candidates, as in the paper's late stage.
"""

from __future__ import annotations

import json
import re

from langgraph.runtime import Runtime

from gome.nodes import memory
from gome.nodes.judge import working
from gome.nodes.policy import late_stage
from gome.nodes.prompts import CODE_CHARS, COMPUTE_GRADIENT, DROPPED, ask, clip
from gome.nodes.runtime import config_of, folder_of, llm, store_of, task_of
from gome.state.context import GomeContext
from gome.state.graph_state import TraceState
from gome.state.journal import Journal
from gome.state.records import Experiment, Gradient, Hypothesis, HypothesisSet

FIX_FIRST = "Nothing works yet: the first hypothesis must fix the last run's failure with a minimal edit."
# A proposal that is, from its first words, a guard, a log or a tidy-up ("add a check for missing data", "wrap
# training in try/except", "print the importances") changes no prediction, unless it also names a change to the
# data or the model ("check for missing values and impute them"). Later in a sentence such words are a detail of
# a real change ("use LightGBM with early stopping, printing the best iteration").
COSMETIC = re.compile(
    r"^\W*((check|verify|validate|print|log|assert)\b(?!-)|((add|include|implement|introduce|improve|ensure|perform|"
    r"put|wrap(\s+\w+){1,2}\s+in)\s+)?((a|an|the|more|some|better|proper|basic|extra|additional|explicit|robust|"
    r"input|data|sanity)\s+)*(checks?|checking|logging|print(s|ing)?|try[/ -]?except|exception handling|"
    r"error handling|asserts?|assertions?|warnings?|comments?|docstrings?|readab\w*|refactor\w*)\b)", re.I)
CHANGES = re.compile(r"\b(imput|fill|encod|scal|normali[sz]|standardi[sz]|tun|replac|switch|increas|decreas|lower|"
                     r"rais|drop|remov|clip|transform|engineer|averag|blend|stack|ensembl|augment|weigh|resampl|"
                     r"oversampl|select)\w*", re.I)
IDEAS_SHOWN = 8  # refuted and untested changes listed (the most recent)
BLEND_SIZE = 3  # candidates a late-stage blend takes


def choose(hypotheses: list[Hypothesis], failed: bool) -> Hypothesis:
    """Highest utility (impact + confidence + novelty - cost); after a failure a fix (minimal step) comes first."""
    pool = [h for h in hypotheses if h.step_size == "minimal"] if failed else []
    return max(pool or hypotheses, key=Hypothesis.utility)


FIX = Hypothesis(change="Fix the error shown in the log so the script runs and writes valid outputs",
                 component="training", step_size="minimal", impact=5, confidence=3, novelty=1, cost=1)
# When no proposal survives, the first of these that repeats no refuted change: distinct components, so a run
# whose model tuning was refuted goes on to features rather than proposing the same tuning again.
FALLBACKS = (
    Hypothesis(change="Tune the model's main hyperparameters: more trees or iterations, a lower learning rate",
               component="model", step_size="minimal", impact=3, confidence=3, novelty=2, cost=1),
    Hypothesis(change="Engineer features: ratios, differences and products of the most informative numeric columns",
               component="features", step_size="moderate", impact=3, confidence=2, novelty=3, cost=2),
    Hypothesis(change="Switch the learner to gradient boosting (HistGradientBoosting) with early stopping",
               component="model", step_size="moderate", impact=3, confidence=2, novelty=3, cost=2),
    Hypothesis(change="Preprocess differently: impute with the median and one-hot encode every categorical column",
               component="data", step_size="minimal", impact=2, confidence=2, novelty=2, cost=1),
)


def fallback_gradient(failed: bool, refuted: list[Experiment] = ()) -> Gradient:
    """A fix while nothing works; otherwise the first stock idea that repeats no refuted change (the last one when
    every one does: a step is never skipped)."""
    h = FIX if failed else next((h for h in FALLBACKS if not dropped_why(h, refuted)), FALLBACKS[-1])
    return Gradient(hypothesis=h, source="fallback")


def ideas(journal: Journal, verdict: str) -> list[Experiment]:
    """The run's gradient steps (every trace) whose hypothesis got this verdict, most recent last."""
    return [e for e in journal if e.verdict == verdict and e.gradient is not None][-IDEAS_SHOWN:]


def dropped_why(h: Hypothesis, refuted: list[Experiment], failed: bool = False) -> str | None:
    """Why a proposal is dropped before the choice: it repeats a refuted change, or, once a script works, it changes
    no prediction (checks, logging, error handling: what a small model proposes when it has no idea)."""
    if any(memory.similar(h.change, h.component, e.gradient.hypothesis.change, e.gradient.hypothesis.component)
           for e in refuted):
        return "it repeats a refuted change"
    if not failed and COSMETIC.search(h.change) and not CHANGES.search(h.change):
        return "it changes no prediction"
    return None


def ensemble_gradient(journal: Journal, trace: int) -> Gradient | None:
    """The late stage's first step in a trace: average the best script's model with a different kind of model
    (extra trees), unless this trace has an ensembling step already."""
    if any(e.gradient is not None and e.gradient.hypothesis.component == "ensembling" for e in journal.of_trace(trace)):
        return None
    h = Hypothesis(change="Average the best script's model with extra trees, a different kind of model (a voting "
                          "ensemble)", component="ensembling", rationale="late stage: models whose errors differ "
                   "average to a better one", step_size="moderate", impact=4, confidence=4, novelty=3, cost=2)
    return Gradient(hypothesis=h, source="late-stage", ensemble=True)


def blend_gradient(journal: Journal, direction: str) -> Gradient | None:
    """A later late-stage step: blend the best working candidates of the run (distinct ones: a change that moved no
    prediction scores the same as its parent; no earlier blend), unless that very set was blended."""
    ids, seen = [], set()
    for e in journal.ranked(direction):  # never a blend of blends: that fits blend weights to the held-out rows
        usable = not e.buggy and not e.vetoed and e.score_source == "harness" and e.intent != "blend"
        if usable and e.score not in seen and len(ids) < BLEND_SIZE:
            ids.append(e.id)
            seen.add(e.score)
    done = {tuple(e.gradient.blend) for e in journal if e.gradient is not None and e.gradient.blend}
    if len(ids) < 2 or tuple(ids) in done:
        return None
    h = Hypothesis(change=f"Blend the predictions of the run's best candidates {', '.join(ids)}",
                   component="ensembling", rationale="late stage: a blend of different models is usually better "
                   "than the best of them", step_size="rewrite", impact=4, confidence=4, novelty=3, cost=1)
    return Gradient(hypothesis=h, source="late-stage", blend=ids)


def _lines(items: list[str]) -> str:
    return "\n".join(items) or "- none yet"


def compute_gradient(state: TraceState, runtime: Runtime[GomeContext] | None = None) -> dict:
    task, last, best, cfg, run = task_of(state), state["last"], state.get("best"), config_of(state), folder_of(state)
    journal = run.journal()
    if late_stage(state) and (gradient := ensemble_gradient(journal, state["trace"])
                              or blend_gradient(journal, task.direction)):
        return {"gradient": gradient.model_dump(mode="json")}
    failed = not working(last) and best is None  # while nothing works, the next step fixes the last attempt
    code = run.experiment(best["id"] if best else last["id"]).read_code() or "(no script yet)"
    diagnosis = {k: v for k, v in (state.get("diagnosis") or {}).items() if k != "source"}
    refuted = ideas(journal, "refuted")
    fields = dict(
        code=clip(code, CODE_CHARS),
        hypothesis=(state.get("feedback") or [{}])[-1].get("hypothesis") or "none yet",
        verdict=(state.get("feedback") or [{}])[-1].get("verdict") or "none", diagnosis=json.dumps(diagnosis, indent=1),
        fix_first=FIX_FIRST if failed else "",
        memory=_lines([f"- {m['change']} ({m['component']}; accepted {m['times']}x"
                       + (f", gain {m['gain']:.4g}" if m.get("gain") is not None else "") + ")"
                       for m in memory.rank(memory.recall(store_of(runtime), state["run_id"]), cfg.memory_top_m)]),
        refuted=_lines([f"- {e.gradient.hypothesis.change} ({e.gradient.hypothesis.component}; {e.decision[:120]})"
                        for e in refuted]),
        untested=_lines([f"- {e.gradient.hypothesis.change} ({e.gradient.hypothesis.component})"
                         for e in ideas(journal, "untested")]),
        feedback="\n".join(f"- step {f['step']}: {f['hypothesis']} -> {f['status']}, score {f['score']}, "
                           f"{'accepted' if f['accepted'] else 'rejected'} ({f['reason']})"
                           for f in state.get("feedback", [])) or "none")
    caller = llm(state, runtime, "compute-gradient")
    dropped: list[str] = []
    kept: list[Hypothesis] = []
    for _ in range(2):  # a second ask, told which proposals were dropped, when every one repeated a refutation
        note = DROPPED.format(dropped="\n".join(f"- {d}" for d in dropped)) if dropped else ""
        proposal = caller.decide(HypothesisSet, ask(state, COMPUTE_GRADIENT.format(**fields, dropped=note)))
        if proposal is None:
            break
        kept = [h for h in proposal.hypotheses if not dropped_why(h, refuted, failed)]
        dropped += [f"{h.change} ({why})" for h in proposal.hypotheses if (why := dropped_why(h, refuted, failed))]
        if kept:
            break
    if kept:
        chosen = choose(kept, failed)
        gradient = Gradient(hypothesis=chosen, alternatives=[h.change for h in kept if h is not chosen],
                            dropped=dropped)
    else:
        gradient = fallback_gradient(failed, refuted).model_copy(update={"dropped": dropped})
    return {"gradient": gradient.model_dump(mode="json"), "usage": caller.usage}
