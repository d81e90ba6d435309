"""What a node reads from state, typed: the run's config and task (validated once per state value, so each must
stand for its own value)."""

import json

from gome.nodes.runtime import config_of, task_of
from gome.state.records import RunConfig


def test_each_state_gets_its_own_config_and_a_moved_run_its_own_data(breast_cancer, tmp_path):
    from gome.tools.task.loading import load_task

    a, b = RunConfig(steps=3).model_dump(mode="json"), RunConfig(steps=7).model_dump(mode="json")
    assert config_of({"config": a}).steps == 3 and config_of({"config": b}).steps == 7
    assert config_of({"config": a}).steps == 3
    assert config_of({"config": dict(a, steps=5)}).steps == 5  # an equal-looking new value is its own

    task = load_task(breast_cancer).model_dump(mode="json")
    here, moved = tmp_path / "run", tmp_path / "moved"
    assert task_of({"task": task, "run_dir": str(here)}).data_dir == str(here / "input")
    assert task_of({"task": task, "run_dir": str(moved)}).data_dir == str(moved / "input")


def test_a_progress_display_that_breaks_does_not_end_the_run(tmp_path, caplog):
    """`gome run --json | head -1`: the display's pipe closes, its callback raises at every event from then on. The
    node goes on (the events are kept in events.jsonl), and the user is told once."""
    from types import SimpleNamespace

    from gome.nodes.runtime import emit
    from gome.state.context import GomeContext

    calls = []

    def broken(event):
        calls.append(event)
        raise BrokenPipeError(32, "Broken pipe")

    runtime = SimpleNamespace(context=GomeContext(on_event=broken), stream_writer=None)
    for step in range(3):
        emit(runtime, {"event": "step", "step": step}, run_dir=str(tmp_path))
    assert [c["step"] for c in calls] == [0, 1, 2]  # called each time: it may work again
    kept = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in kept] == [0, 1, 2]
    warned = [r for r in caplog.records if "could not be shown" in r.getMessage()]
    assert len(warned) == 1 and "BrokenPipeError" in warned[0].getMessage()
    emit(SimpleNamespace(context=GomeContext(on_event="not a function"), stream_writer=None), {"event": "x"})
