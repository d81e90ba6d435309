"""A deterministic scripted model that a separate process (the LangGraph server) can build by name:
GOME_MODEL=python:tests.fakes.server_model:build."""

from tests.fakes.chat import KindChatModel
from tests.fakes.scripts import PLAIN_LOGREG, SCALED_LOGREG, diagnosis, hypotheses, script


def build() -> KindChatModel:
    return KindChatModel(by_kind={
        "text": lambda prompt: script(SCALED_LOGREG if "Change to make now" in prompt else PLAIN_LOGREG),
        "Diagnosis": diagnosis("ran", True, "it ran and validated"),
        "HypothesisSet": hypotheses(("Standardize the features", "features", "moderate", 4))})
