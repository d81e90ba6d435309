"""What a node reads from state, typed: the run's config and task (validated once per state value, so each must
stand for its own value)."""

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
