"""The journal: the typed experiments every part of gome asks, and the comparisons it answers."""

from gome.state.journal import Journal, beats
from gome.state.records import Experiment


def test_beats_prefers_harness_and_respects_direction():
    assert beats({"score": 0.5, "score_source": "harness"}, {"score": 0.9, "score_source": "self_reported"}, "maximize")
    assert not beats({"score": 0.99, "score_source": "self_reported"}, {"score": 0.5, "score_source": "harness"},
                     "maximize")
    assert beats({"score": 1.0, "score_source": "harness"}, {"score": 2.0, "score_source": "harness"}, "minimize")
    assert not beats({"score": None}, None, "maximize")
    assert beats({"score": 0.1, "score_source": "harness"}, None, "maximize")


def exp(exp_id, score, parent=None, intent="draft", buggy=False, status="ok", valid=True, source="harness",
        trace=0) -> Experiment:
    return Experiment(id=exp_id, trace=trace, step=int(exp_id), parent=parent, status=status, score=score,
                      score_source=source, submission_valid=valid, intent=intent, buggy=buggy)


def test_the_tree_its_fix_chains_and_the_best():
    j = Journal([exp("0003", None, parent="0002", intent="debug", buggy=True, status="error", valid=False),
                 exp("0001", 0.9), exp("0002", None, parent="0001", intent="improve", buggy=True, status="error",
                                       valid=False),
                 exp("0004", None, parent="0003", intent="debug", buggy=True, status="error", valid=False),
                 exp("0005", 0.95, parent="0001", intent="improve"), exp("0006", 0.99, trace=1)])
    assert [e.id for e in j] == ["0001", "0002", "0003", "0004", "0005", "0006"]
    assert [e.id for e in j.roots] == ["0001", "0006"] and [e.id for e in j.children("0001")] == ["0002", "0005"]
    assert [j.debug_depth(i) for i in ("0001", "0002", "0003", "0004")] == [0, 0, 1, 2]
    assert j.best("maximize").id == "0006" and j.of_trace(0).best("maximize").id == "0005"
    assert j.best("minimize").id == "0001" and j.first_working().id == "0001"
    assert [e.id for e in j.of_trace(0).good] == ["0001", "0005"]


def test_ranking_puts_buggy_and_self_reported_last():
    j = Journal([exp("0001", 0.91), exp("0002", 0.999, buggy=True), exp("0003", 0.99, source="self_reported"),
                 exp("0004", 0.95), exp("0005", 0.97, valid=False)])
    assert [e.id for e in j.ranked("maximize")] == ["0004", "0001", "0003", "0002"]


def test_a_vetoed_validation_is_never_a_candidate_while_another_works():
    from gome.state.records import Diagnosis

    leak = exp("0002", 1.0)
    leak.diagnosis = Diagnosis(outcome="ran", summary="the labels are in the features", leakage=True, accept=False)
    misaligned = exp("0003", 0.99)
    misaligned.diagnosis = Diagnosis(outcome="ran", summary="scored on train", validation_aligned=False,
                                     accept=False)
    j = Journal([exp("0001", 0.9), leak, misaligned])
    assert [e.id for e in j.ranked("maximize")] == ["0001"]
    assert [e.id for e in Journal([leak, misaligned]).ranked("maximize")] == ["0002", "0003"]  # better than none
