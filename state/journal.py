"""The journal: every experiment of a run, typed, and the questions every part of gome asks of it.

The tree search, final selection, the report and the eval runner all read the same Journal (built by the run
folder from experiments/*/metrics.json), so "which experiments work", "what is the best", "how deep is this chain
of fixes" have one answer. Pure: it reads no file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gome.state.records import Experiment

SOURCE_RANK = {"harness": 2, "self_reported": 1}


def beats(new: Experiment | dict, old: Experiment | dict | None, direction: str) -> bool:
    """Does `new` beat `old`? A harness score outranks a self-reported one (they are not comparable); within one
    source the metric's direction decides. A run without a score never wins."""
    new_score, old_score = _get(new, "score"), _get(old, "score") if old else None
    if new_score is None:
        return False
    if old_score is None:
        return True
    a, b = SOURCE_RANK.get(_get(new, "score_source"), 0), SOURCE_RANK.get(_get(old, "score_source"), 0)
    if a != b:
        return a > b
    return new_score > old_score if direction == "maximize" else new_score < old_score


def _get(record, key: str):
    return record.get(key) if isinstance(record, dict) else getattr(record, key)


class Journal:
    """The experiments of a run (or of one trace), ordered by id."""

    def __init__(self, experiments: Iterable[Experiment]):
        self.nodes: list[Experiment] = sorted(experiments, key=lambda e: e.id)
        self.by_id: dict[str, Experiment] = {e.id: e for e in self.nodes}

    def __iter__(self) -> Iterator[Experiment]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, exp_id: str | None) -> Experiment | None:
        return self.by_id.get(exp_id) if exp_id else None

    def of_trace(self, trace: int) -> Journal:
        return Journal(e for e in self.nodes if e.trace == trace)

    def children(self, exp_id: str) -> list[Experiment]:
        return [e for e in self.nodes if e.parent == exp_id]

    @property
    def roots(self) -> list[Experiment]:
        return [e for e in self.nodes if e.parent is None]

    @property
    def good(self) -> list[Experiment]:
        """Working and not buggy: what tree search improves."""
        return [e for e in self.nodes if e.working and not e.buggy]

    @property
    def buggy(self) -> list[Experiment]:
        return [e for e in self.nodes if e.buggy]

    @property
    def working(self) -> list[Experiment]:
        """Ran and left a valid, scored submission: the candidates of final selection."""
        return [e for e in self.nodes if e.working]

    @property
    def accepted_gradients(self) -> list[Experiment]:
        """Accepted gradient steps: the success memory as the run built it."""
        return [e for e in self.nodes if e.accepted and e.gradient is not None]

    def debug_depth(self, exp_id: str) -> int:
        """How many consecutive fixes (tree mode's debug steps) end at this experiment."""
        depth, cur = 0, self.by_id.get(exp_id)
        while cur is not None and cur.intent == "debug" and cur.parent in self.by_id:
            depth, cur = depth + 1, self.by_id[cur.parent]
        return depth

    def best(self, direction: str, among: Iterable[Experiment] | None = None) -> Experiment | None:
        found = None
        for e in self.good if among is None else among:
            if beats(e, found, direction):
                found = e
        return found

    def ranked(self, direction: str) -> list[Experiment]:
        """Working experiments, best first: those whose validation was vetoed (leakage, misaligned) only when no
        other works, those flagged buggy only after all others (a valid submission beats none), then harness
        before self-reported scores, then the metric's direction."""
        pool = [e for e in self.working if not e.vetoed] or self.working
        ranked: list[Experiment] = []
        for cand in pool:  # insertion sort: `beats` is a comparison, not a key
            i = next((i for i, r in enumerate(ranked) if _ahead(cand, r, direction)), len(ranked))
            ranked.insert(i, cand)
        return ranked

    def first_working(self) -> Experiment | None:
        return next((e for e in self.nodes if e.status == "ok" and e.submission_valid), None)


def _ahead(a: Experiment, b: Experiment, direction: str) -> bool:
    if a.buggy != b.buggy:
        return not a.buggy
    return beats(a, b, direction)
