"""When a failed attempt is repaired rather than judged, and when a trace is in its late stage."""

from gome.nodes.compute_gradient import blend_gradient
from gome.nodes.policy import late_stage, should_repair
from gome.state.journal import Journal
from gome.state.records import Experiment, RunConfig

CONFIG = RunConfig(time_s=1000, select={"reruns": 0}).model_dump(mode="json")  # search time: all 1000 s
OK = {"status": "ok", "submission_valid": True, "score": 0.9, "score_source": "harness"}
CRASH = {"status": "error", "submission_valid": False, "score": None}


def state(last, attempt=0, deadline=10_000.0, **extra):
    return {"last": last, "attempt": attempt, "deadline": deadline, "config": CONFIG, **extra}


def test_only_a_failed_attempt_with_repairs_and_time_left_is_repaired():
    assert should_repair(state(CRASH), now=0)
    assert not should_repair(state(OK), now=0)
    assert should_repair(state({**OK, "score_source": "self_reported"}), now=0)  # no predictions file: repair it
    assert not should_repair(state({"status": "no_script"}), now=0)  # nothing to repair
    assert not should_repair(state({**CRASH, "repair_error": "no script in the reply"}), now=0)
    assert should_repair(state(CRASH, attempt=2), now=0) and not should_repair(state(CRASH, attempt=3), now=0)
    assert not should_repair(state(CRASH, deadline=10.0), now=0)  # under the time a repair needs


def test_the_late_stage_starts_at_its_share_of_the_steps_or_of_the_clock():
    def at(step, budget, left=900.0, share=0.7):
        cfg = {**CONFIG, "late_stage": share}
        return late_stage({"step": step, "budget": budget, "deadline": 1000.0, "config": cfg}, now=1000.0 - left)

    assert [at(s, 3) for s in range(3)] == [False, False, True]  # the third of three steps
    assert [at(s, 10) for s in range(10)] == [False] * 6 + [True] * 4
    assert at(0, 10, left=250.0)  # 75% of the search's clock is spent
    assert not at(9, 10, share=1.0) and not at(0, 10, left=0.0, share=1.0)  # 1: never


def exp(exp_id, score, source="harness", blend=()):
    gradient = {"hypothesis": {"change": "blend", "component": "ensembling"}, "blend": list(blend)} if blend else None
    return Experiment(id=exp_id, trace=0, step=0, status="ok", score=score, score_source=source,
                      submission_valid=True, gradient=gradient, intent="blend" if blend else "update")


def test_a_blend_takes_harness_scored_candidates_never_a_blend_and_never_the_same_set_twice():
    journal = Journal([exp("0001", 0.90), exp("0002", 0.95), exp("0003", 0.99, source="self_reported")])
    gradient = blend_gradient(journal, "maximize")
    assert gradient.blend == ["0002", "0001"] and gradient.hypothesis.component == "ensembling"
    done = Journal([*journal, exp("0004", 0.96, blend=("0002", "0001"))])
    assert blend_gradient(done, "maximize") is None  # that set is blended, and a blend is never blended again
    more = Journal([*done, exp("0005", 0.97)])
    assert blend_gradient(more, "maximize").blend == ["0005", "0002", "0001"]
    assert blend_gradient(Journal([exp("0001", 0.9)]), "maximize") is None  # one candidate: nothing to blend
