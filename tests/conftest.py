import shutil
from pathlib import Path

import pytest

from gome.tools.llm import structured

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def breast_cancer(tmp_path) -> Path:
    """A private copy of the breast-cancer example task (tests may break it)."""
    dest = tmp_path / "breast-cancer"
    shutil.copytree(EXAMPLES / "breast-cancer", dest)
    return dest


@pytest.fixture(autouse=True)
def _fresh_method_cache():
    """The remembered structured-output method is per model identity; tests reuse the fake's name."""
    structured._working_method.clear()
    yield
    structured._working_method.clear()
