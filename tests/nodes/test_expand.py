import random

from gome.nodes.expand import pick
from gome.state.journal import Journal
from gome.state.records import Experiment, TreeConfig


def draft(exp_id: str, score: float) -> Experiment:
    return Experiment(id=exp_id, trace=0, step=int(exp_id) - 1, status="ok", score=score, score_source="harness",
                      submission_valid=True, intent="draft")


def test_a_short_run_drafts_a_third_of_its_steps_and_improves_the_rest():
    cfg, rng = TreeConfig(num_drafts=3), random.Random(0)
    one = Journal([draft("0001", 0.8)])
    # three steps: one draft, then improvements of it (three drafts would leave nothing to improve)
    assert pick(one, cfg, "maximize", rng, budget=3) == ("improve", one.get("0001"))
    assert pick(one, cfg, "maximize", rng, budget=5)[0] == "draft"  # five steps: two drafts
    assert pick(Journal([draft("0001", 0.8), draft("0002", 0.9)]), cfg, "maximize", rng, budget=5)[1].id == "0002"
    assert pick(one, cfg, "maximize", rng, budget=30)[0] == "draft"  # a long run drafts num_drafts roots
    assert pick(one, cfg, "maximize", rng)[0] == "draft"
