"""gome: an MLE agent built on Gome's gradient-style optimizer, as a LangGraph state machine.

    from gome import run_gome, RunConfig
    final = run_gome("examples/breast-cancer", RunConfig(steps=6), chat_model=my_model)
"""

from gome.state.records import ModelSpec, RunConfig, Task
from gome.tools.task.loading import TaskError, load_task


def run_gome(*args, **kwargs):
    """See gome.graph.run.run_gome (imported lazily: importing gome stays cheap)."""
    from gome.graph.run import run_gome as _run

    return _run(*args, **kwargs)


__all__ = ["ModelSpec", "RunConfig", "Task", "TaskError", "load_task", "run_gome"]
