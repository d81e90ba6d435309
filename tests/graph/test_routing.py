import pytest
from langgraph.graph import END

from gome.graph.routing import route_after_checkpoint, stop_reason

CONFIG = {"mode": "gradient"}


def test_continues_while_budgets_remain():
    state = {"step": 2, "budget": 5, "deadline": 2000.0, "config": CONFIG}
    assert stop_reason(state, now=1000.0) is None
    assert route_after_checkpoint(state) == "compute-gradient"


def test_stops_when_steps_are_spent():
    assert stop_reason({"step": 5, "budget": 5, "deadline": 2000.0}, now=1000.0) == "steps"


def test_stops_when_wall_clock_is_spent():
    assert stop_reason({"step": 1, "budget": 5, "deadline": 2000.0}, now=2000.0) == "time"


def test_routes_to_end_once_stopped():
    assert route_after_checkpoint({"stop_reason": "time", "config": CONFIG}) == END


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown mode 'tree'"):
        route_after_checkpoint({"config": {"mode": "tree"}})
