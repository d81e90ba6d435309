"""Typed state: graph states with reducers, pydantic records, the runtime context. Imports nothing of gome's."""

from gome.state.context import GomeContext
from gome.state.graph_state import GomeInput, GomeOutput, GomeState, TraceOutput, TraceState
from gome.state.records import (
    Diagnosis,
    Experiment,
    Gradient,
    Hypothesis,
    HypothesisSet,
    MemoryEntry,
    ModelSpec,
    Problem,
    RunConfig,
    Task,
)

__all__ = [
    "Diagnosis", "Experiment", "GomeContext", "GomeInput", "GomeOutput", "GomeState", "Gradient", "Hypothesis",
    "HypothesisSet", "MemoryEntry", "ModelSpec", "Problem", "RunConfig", "Task", "TraceOutput", "TraceState",
]
