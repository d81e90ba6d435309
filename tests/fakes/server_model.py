"""A deterministic scripted model that a separate process (the LangGraph server) can build by name:
GOME_MODEL=python:tests.fakes.server_model:build."""

from tests.fakes.chat import KindChatModel
from tests.fakes.scripts import PLAIN_LOGREG, SCALED_LOGREG, diagnosis, hypotheses, script


def build() -> KindChatModel:
    return KindChatModel(by_kind={
        "text": lambda prompt: script(SCALED_LOGREG if "Change to make now" in prompt else PLAIN_LOGREG),
        "Diagnosis": diagnosis("ran", True, "it ran and validated"),
        "HypothesisSet": hypotheses(("Standardize the features", "features", "moderate", 4))})


def generic() -> KindChatModel:
    """For any suite task (the target read from the prompt): what `gome eval --ray`'s nodes build by name."""
    from tests.fakes.scripts import generic_script

    return KindChatModel(by_kind={
        "text": generic_script, "Diagnosis": diagnosis("ran", True, "it ran and validated"),
        "HypothesisSet": hypotheses(("Regularize less: the model underfits", "model", "minimal", 3))})


def slow_generic() -> KindChatModel:
    """generic(), whose scripts' full runs (not their runs on a sample) take 15 s: time to kill their node."""
    from tests.fakes.scripts import generic_script

    def slow(prompt: str) -> str:
        return generic_script(prompt).replace(
            "import os\n", "import os\nimport time\nif os.environ.get('GOME_DEBUG') == '0':\n    time.sleep(15)\n", 1)

    model = generic()
    model.by_kind = {**model.by_kind, "text": slow}
    return model


def broken_on_nodes() -> KindChatModel:
    """generic() where gome checks the name (the eval's driver), a failure on the Ray nodes that run the cells."""
    import ray

    if ray.is_initialized() and ray._private.worker.global_worker.mode == ray.WORKER_MODE:
        raise RuntimeError("this node cannot build the model")
    return generic()
