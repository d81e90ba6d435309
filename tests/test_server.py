"""gome on the LangGraph server: `langgraph dev` on a free loopback port, driven through langgraph-sdk (thread,
run, stream) and RemoteGraph, with the scripted model named by GOME_MODEL; then the server is stopped by PID."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
LANGGRAPH = shutil.which("langgraph")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def langgraph_dev(log: Path, *flags: str, **env_vars: str):
    """`langgraph dev` on a free loopback port, with the scripted model; yields its URL."""
    if not LANGGRAPH:
        pytest.fail("langgraph-cli is not installed: pip install -e '.[test]'")
    port = free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true",
           "GOME_MODEL": "python:tests.fakes.server_model:build", "PYTHONPATH": str(ROOT), **env_vars}
    with open(log, "w") as out:
        proc = subprocess.Popen([LANGGRAPH, "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser",
                                 *flags, "--config", str(ROOT / "langgraph.json")], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/ok", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"langgraph dev did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # stop it by its PID (and its reloader's children)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with langgraph_dev(tmp_path_factory.mktemp("server") / "server.log", "--no-reload") as url:
        yield url


def test_langgraph_dev_as_the_readme_shows_it_does_not_restart_during_a_run(tmp_path):
    """With reload on (the default), a run that names no folder writes outside the watched project: a main.py
    under it would restart the server mid-run."""
    from langgraph_sdk import get_sync_client

    log, home = tmp_path / "server.log", tmp_path / "home"
    with langgraph_dev(log, HOME=str(home)) as url:
        inputs = task_input(tmp_path)
        del inputs["run_dir"]
        final = get_sync_client(url=url).runs.wait(None, "gome", input=inputs)
    assert final["status"] == "succeeded", final
    assert Path(final["run_dir"]).parent == home / "gome-runs"
    assert "Reloading" not in log.read_text() and not (ROOT / "runs").exists()


def task_input(tmp_path: Path) -> dict:
    task = tmp_path / "task"
    shutil.copytree(EXAMPLES / "breast-cancer", task)
    return {"task_dir": str(task), "run_dir": str(tmp_path / "run"),
            "config": {"steps": 2, "select": {"reruns": 0}}}


def test_sdk_thread_run_and_stream(server, tmp_path):
    from langgraph_sdk import get_client

    async def go():
        client = get_client(url=server)
        thread = await client.threads.create()
        events = []
        async for part in client.runs.stream(thread["thread_id"], "gome", input=task_input(tmp_path),
                                             stream_mode=["custom", "values"], stream_subgraphs=True):
            if part.event.startswith("custom"):
                events.append(part.data)
        state = await client.threads.get_state(thread["thread_id"])
        return events, state["values"]

    events, values = asyncio.run(go())
    assert values["status"] == "succeeded", values
    assert [e["event"] for e in events if e["event"] == "step"] == ["step", "step"]
    assert [e["phase"] for e in events if e["event"] == "phase"] == ["searching", "selecting", "writing the report"]
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "succeeded"
    assert (tmp_path / "run/best/submission.csv").is_file() and (tmp_path / "run/report.html").is_file()
    kept = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    assert kept == events  # the server's runs keep what the CLI's keep
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["isolation"] and run["model"] and run["status"] == "succeeded"


def test_remote_graph_invoke_with_an_assistant_per_mode(server, tmp_path):
    from langgraph.pregel.remote import RemoteGraph
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    tree = client.assistants.create("gome", context={"config": {"mode": "tree"}}, name="gome-tree")
    remote = RemoteGraph(tree["assistant_id"], url=server)
    final = remote.invoke(task_input(tmp_path))  # no recursion limit given: the budget ends the run
    assert final["status"] == "succeeded"
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["config"]["mode"] == "tree" and [s["mode"] for s in run["steps"]] == ["tree", "tree"]


def test_studio_gets_the_input_output_and_context_schemas(server):
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    [assistant] = [a for a in client.assistants.search(graph_id="gome") if a["name"] == "gome"]
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    inputs, context = schemas["input_schema"], schemas["context_schema"]
    assert inputs["required"] == ["task_dir"] and "config" in inputs["properties"]
    assert schemas["output_schema"]["properties"].keys() >= {"run_dir", "status", "selected"}
    fields = context["properties"]
    assert fields["sandbox"]["enum"] == ["local", "e2b", "ray"] and all("description" in f for f in fields.values())
    run_config = context["$defs"]["RunConfig"]["properties"]
    assert run_config["mode"]["enum"] == ["gradient", "tree", "auto"] and run_config["steps"]["default"] == 8
    print(f"schema fields: input {len(inputs['properties'])}, context {len(fields)}, config {len(run_config)}")


@pytest.mark.parametrize("inputs, context, error", [
    ({"config": {"step": 1}}, {}, "config: step: unknown setting (known: mode, traces, steps"),
    ({"config": {"mode": "trees"}}, {}, "mode: Input should be 'gradient', 'tree' or 'auto'"),
    ({"task_dir": None}, {}, "the input has no task_dir"),
    ({}, {"sandbox": "docker"}, "unknown sandbox 'docker'"),
    ({}, {"model": "python:no_such_module:build"}, "cannot build model 'python:no_such_module:build'"),
])
def test_bad_settings_are_refused_before_anything_runs(server, tmp_path, inputs, context, error):
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    thread = client.threads.create()
    given = {**task_input(tmp_path), **inputs}
    client.runs.wait(thread["thread_id"], "gome", input={k: v for k, v in given.items() if v is not None},
                     context=context, raise_error=False)
    [run] = client.runs.list(thread["thread_id"])
    assert run["status"] == "error"
    state = client.threads.get_state(thread["thread_id"])
    assert error in str(state["tasks"][0]["error"])
    assert not (tmp_path / "run").exists()  # nothing was written


def test_a_wrong_answer_to_a_review_is_asked_again_and_the_thread_goes_on(server, tmp_path):
    from langgraph_sdk import get_sync_client
    from langgraph_sdk.schema import Command

    client = get_sync_client(url=server)
    thread = client.threads.create()["thread_id"]
    inputs = {**task_input(tmp_path), "config": {"steps": 1, "review": True, "select": {"reruns": 0}}}
    client.runs.wait(thread, "gome", input=inputs)

    def waiting() -> list[dict]:  # (the server lists a trace's interrupt twice, under one id)
        return list({i["id"]: i["value"] for t in client.threads.get_state(thread)["tasks"]
                     for i in t["interrupts"]}.values())

    assert waiting()[0]["id"] == "0001"
    client.runs.wait(thread, "gome", command=Command(resume="approve"))  # a string, not {"action": "approve"}
    [asked] = waiting()
    assert asked["id"] == "0001" and "the answer must be an object" in asked["error"]
    final = client.runs.wait(thread, "gome", command=Command(resume={"action": "approve"}))
    assert final["status"] == "succeeded", final


def test_the_server_image_installs_the_sandbox_s_tools(tmp_path):
    """`langgraph build`'s Dockerfile (made offline by `langgraph dockerfile`) installs bubblewrap and mkfs.ext4,
    so the image's sandbox has the chain a host has (given a container allowed to make namespaces)."""
    dockerfile = tmp_path / "Dockerfile"
    subprocess.run([LANGGRAPH, "dockerfile", "-c", str(ROOT / "langgraph.json"), str(dockerfile)], cwd=ROOT,
                   check=True, capture_output=True, env={**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1"})
    text = dockerfile.read_text()
    assert text.startswith("FROM langchain/langgraph-api:3.11")
    assert "apt-get install -y --no-install-recommends bubblewrap e2fsprogs" in text
