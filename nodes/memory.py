"""The success memory, the optimizer's momentum: every accepted hypothesis of the run, shared by all its traces
through the LangGraph Store. checkpoint writes an entry the moment a step is accepted; apply-momentum reads a
bounded, ranked selection of it, so a prompt does not grow with the number of steps.
"""

from __future__ import annotations

import re

from gome.state.records import MemoryEntry

DECAY = 0.8  # weight of an entry relative to the next newer one
SIMILAR = 0.6  # overlap (Jaccard) of their meaningful words above which two changes count as the same idea
_WORD = re.compile(r"[a-z0-9]+")
FILLER = {"the", "and", "for", "with", "use", "using", "instead", "into", "from", "all", "its", "this", "that",
          "add", "try", "new", "then", "than", "each", "per", "model's", "via"}  # words that name no idea


def namespace(run_id: str) -> tuple[str, ...]:
    return ("gome", run_id, "memory")


def remember(store, run_id: str, entry: MemoryEntry) -> None:
    if store is not None:
        store.put(namespace(run_id), entry.experiment, entry.model_dump())


def recall(store, run_id: str, limit: int = 500) -> list[MemoryEntry]:
    if store is None:
        return []
    return [MemoryEntry.model_validate(item.value) for item in store.search(namespace(run_id), limit=limit)]


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in FILLER}


def similar(a: str, a_component: str, b: str, b_component: str) -> bool:
    """The same idea: one component, and most of their words in common."""
    wa, wb = words(a), words(b)
    union = wa | wb
    return a_component == b_component and bool(union) and len(wa & wb) / len(union) >= SIMILAR


def rank(entries: list[MemoryEntry], top_m: int) -> list[dict]:
    """Group similar accepted changes and rank groups by recency-decayed, gain-scaled weight; keep top m."""
    entries = sorted(entries, key=lambda e: e.created_at, reverse=True)
    gains = [e.gain for e in entries if e.gain is not None and e.gain > 0]
    scale = max(gains) if gains else 1.0
    groups: list[dict] = []
    for age, e in enumerate(entries):
        weight = DECAY ** age * (0.5 + 0.5 * (max(e.gain, 0) / scale if e.gain is not None else 0.5))
        for g in groups:
            if similar(e.change, e.component, g["change"], g["component"]):
                g["weight"] += weight
                g["times"] += 1
                break
        else:
            groups.append({"change": e.change, "component": e.component, "weight": weight, "times": 1,
                           "traces": set(), "gain": None})
            g = groups[-1]
        g["traces"].add(e.trace)
        if e.gain is not None:
            g["gain"] = max(g["gain"] if g["gain"] is not None else e.gain, e.gain)
    groups.sort(key=lambda g: g["weight"], reverse=True)
    return [{"change": g["change"], "component": g["component"], "times": g["times"], "gain": g["gain"],
             "weight": round(g["weight"], 3), "traces": sorted(g["traces"])} for g in groups[:top_m]]
