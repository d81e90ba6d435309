"""Judging a step: did it fail, should it replace the best, and by how much did it gain. Pure functions of the
harness's summary, the diagnosis and the best so far."""

from __future__ import annotations

from gome.state.graph_state import BestRef, DiagnosisRecord, RunSummary
from gome.state.journal import beats
from gome.state.records import GRADIENT_KINDS


def working(last: RunSummary, debug: bool = False) -> bool:
    """It ran and wrote a valid submission with a score (a run on a sample: well-formed held-out predictions)."""
    ok = last["status"] == "ok" and last.get("submission_valid")
    return bool(ok and (last.get("val_error") is None if debug else last.get("score") is not None))


def harness_scored(last: RunSummary) -> bool:
    """Working, with the harness's own score: its held-out predictions were written and scored (a printed score
    alone means they were not, which a repair should fix)."""
    return working(last) and last.get("score_source") == "harness"


def is_buggy(last: RunSummary, diagnosis: DiagnosisRecord, mode: str = "gradient") -> bool:
    """Did the run fail to write valid, scored outputs? In tree mode a diagnosis of "bug" that names a problem
    also counts (AIDE's review); a bare "bug" on a run the harness saw succeed does not (a small model copies the
    field's description, "the script crashed", onto working runs). In gradient mode the harness's facts win."""
    return not working(last) or (mode == "tree" and diagnosis.get("outcome") == "bug"
                                 and bool(diagnosis.get("problems")))


def verdict(intent: str, accepted: bool, buggy: bool) -> str | None:
    """What the step says of the hypothesis it implemented: untested when the implementation failed (even after
    its repairs; the idea was never tried), confirmed when it was accepted, refuted when it ran and did not help.
    Drafts and tree steps test no hypothesis."""
    if intent not in GRADIENT_KINDS:
        return None
    return "untested" if buggy else "confirmed" if accepted else "refuted"


def vetoes(diagnosis: DiagnosisRecord) -> bool:
    """Does the diagnosis reject a run the harness saw succeed and beat the best? Only with a named problem and
    without contradicting the harness: the 1.5B model wrote "MemoryError: cannot allocate <the score> MB" onto a
    clean run that beat the draft, and the run's only real improvements were thrown away."""
    return not diagnosis.get("accept") and diagnosis.get("outcome", "ran") == "ran" and bool(diagnosis.get("problems"))


def decide(last: RunSummary, diagnosis: DiagnosisRecord, best: BestRef | None, direction: str,
           mode: str = "gradient") -> tuple[bool, str]:
    """The harness and the diagnosis together: accept only a valid, aligned, leak-free run that beats the best and
    that the diagnosis does not reject with a named problem.

    The first working run of a trace is accepted unless the diagnosis finds leakage or misaligned validation:
    there is nothing for it to beat, and a trace needs a base to improve. In tree mode the diagnosis counts only
    as bug status: the scalar score alone ranks nodes, as in AIDE.
    """
    if last["status"] != "ok":
        return False, f"run failed ({last['status']}): {last.get('detail', '')}"
    if not last.get("submission_valid"):
        return False, f"invalid submission: {last.get('submission_error')}"
    if last.get("score") is None:
        return False, f"no validation score: {last.get('val_error')}"
    if mode == "tree":
        if is_buggy(last, diagnosis, mode):
            return False, "diagnosed as buggy: " + diagnosis.get("summary", "")[:200]
    else:
        if diagnosis.get("leakage"):
            return False, "leakage found: " + diagnosis.get("reason", "")
        if not diagnosis.get("validation_aligned", True):
            return False, "validation not aligned with the metric: " + diagnosis.get("reason", "")
    if not beats(last, best, direction):
        return False, f"score {last['score']:.6g} does not beat the best {best['score']:.6g}"
    if mode != "tree" and best and vetoes(diagnosis):
        return False, "diagnosis rejects it: " + diagnosis.get("reason", "")
    return True, "new best" if best else "first working solution"


def gain(last: RunSummary, best: BestRef | None, direction: str) -> float | None:
    """The score improvement in the metric's better direction (None when there is nothing comparable)."""
    if not best or best.get("score") is None or best.get("score_source") != last.get("score_source"):
        return None
    delta = last["score"] - best["score"]
    return delta if direction == "maximize" else -delta
