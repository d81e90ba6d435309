"""The search policy (nodes/policy.py) and the conditional edge that follows what checkpoint recorded of it."""

import pytest
from langgraph.graph import END

from gome.graph.routing import route_after_checkpoint
from gome.nodes.policy import choose_mode, stop_reason
from gome.state.records import RunConfig

AUTO = RunConfig(mode="auto").model_dump(mode="json")  # window 4, min_steps 3, accept_low 0.25, stall 3


def step(mode, accepted, score=0.9, status="ok"):
    return {"mode": mode, "accepted": accepted, "score": score, "status": status}


def test_continues_while_budgets_remain():
    state = {"step": 2, "budget": 5, "deadline": 2000.0, "config": {"mode": "gradient"}, "mode_now": "gradient"}
    assert stop_reason(state, now=1000.0) is None
    assert route_after_checkpoint(state) == "compute-gradient"
    assert route_after_checkpoint({**state, "mode_now": "tree"}) == "expand"


@pytest.mark.parametrize("state, reason", [
    ({"step": 5, "budget": 5}, "steps"),
    ({"step": 1, "budget": 5, "deadline": 1000.0}, "time"),
    ({"step": 1, "budget": 5, "config": {"max_tokens": 100}, "spent": {"tokens": 100}}, "tokens"),
    ({"step": 1, "budget": 5, "config": {"max_dollars": 0.5}, "spent": {"tokens": 9, "dollars": 0.51}}, "dollars"),
])
def test_each_budget_stops_the_trace(state, reason):
    assert stop_reason(state, now=1000.0) == reason


def test_routes_to_end_once_stopped():
    assert route_after_checkpoint({"stop_reason": "time", "config": {"mode": "gradient"}}) == END


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown step mode 'beam'"):
        route_after_checkpoint({"config": {"mode": "auto"}, "mode_now": "beam"})


def test_fixed_modes_never_switch():
    for mode in ("gradient", "tree"):
        state = {"config": {"mode": mode}, "mode_now": mode, "mode_steps": 50, "since_improvement": 50,
                 "feedback": [step(mode, False)] * 8}
        assert choose_mode(state) == (mode, None)


def test_auto_leaves_gradient_when_steps_are_rejected_and_the_best_stalls():
    state = {"config": AUTO, "mode_now": "gradient", "mode_steps": 4, "since_improvement": 3,
             "feedback": [step("gradient", True), *[step("gradient", False)] * 4]}
    mode, why = choose_mode(state)
    assert mode == "tree" and "accepted 0/4" in why and "no new best for 3 steps" in why


def test_auto_stays_in_gradient_while_it_pays_off_or_too_soon():
    paying = {"config": AUTO, "mode_now": "gradient", "mode_steps": 6, "since_improvement": 3,
              "feedback": [step("gradient", a) for a in (True, False, True, False)]}
    assert choose_mode(paying) == ("gradient", None)  # 2/4 accepted
    too_soon = {"config": AUTO, "mode_now": "gradient", "mode_steps": 2, "since_improvement": 9,
                "feedback": [step("gradient", False)] * 4}
    assert choose_mode(too_soon) == ("gradient", None)
    improving = {**too_soon, "mode_steps": 5, "since_improvement": 1}
    assert choose_mode(improving) == ("gradient", None)


def test_auto_leaves_tree_when_it_stalls():
    state = {"config": AUTO, "mode_now": "tree", "mode_steps": 3, "since_improvement": 3,
             "feedback": [step("tree", False, s) for s in (0.7, 0.8, 0.9)]}
    mode, why = choose_mode(state)
    assert mode == "gradient" and "no new best for 3 steps" in why


def test_auto_leaves_tree_when_its_nodes_score_alike():
    state = {"config": AUTO, "mode_now": "tree", "mode_steps": 3, "since_improvement": 1,
             "feedback": [step("tree", False, s) for s in (0.9001, 0.9002, 0.9)]}
    mode, why = choose_mode(state)
    assert mode == "gradient" and "score alike" in why


def test_auto_stays_in_a_tree_that_keeps_finding_better_nodes():
    state = {"config": AUTO, "mode_now": "tree", "mode_steps": 5, "since_improvement": 0,
             "feedback": [step("tree", True, s) for s in (0.7, 0.8, 0.9)]}
    assert choose_mode(state) == ("tree", None)


def test_auto_judges_only_the_current_modes_steps():
    # accepted tree steps must not keep a failing gradient mode alive
    state = {"config": AUTO, "mode_now": "gradient", "mode_steps": 3, "since_improvement": 3,
             "feedback": [step("tree", True)] * 5 + [step("gradient", False)] * 3}
    assert choose_mode(state)[0] == "tree"
