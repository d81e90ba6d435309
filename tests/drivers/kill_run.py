"""Run or resume gome on the breast-cancer example with a deterministic scripted model, and SIGKILL this process
at a chosen point (fault injection for the resume tests and benchmark).

    python -m tests.drivers.kill_run run TASK_DIR OUT_DIR KILL     (prints the run folder first)
    python -m tests.drivers.kill_run resume RUN_DIR
(GOME_DRIVER_DB=postgresql://... puts checkpoints and store in Postgres; GOME_DRIVER_RERUNS=N turns final
selection's re-runs on.)

KILL: none | llm:N (during the N-th LLM call) | script:N (while the N-th script runs) | before:NODE:N (as the
N-th call of a node starts) | after:NODE:N (when it returns, before LangGraph saves it) | put:N (the N-th
checkpoint write) | writes:N (the N-th pending-writes save) | runjson:N (checkpoint's N-th rebuild of run.json).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from tests.fakes.chat import KindChatModel
from tests.fakes.server_model import build

STEPS = 3
NODES = {"draft": "gome.graph.trace", "execute": "gome.graph.trace", "diagnose": "gome.graph.trace",
         "checkpoint": "gome.graph.trace", "compute_gradient": "gome.graph.trace",
         "apply_momentum": "gome.graph.trace", "prepare": "gome.graph.builder", "select": "gome.graph.builder",
         "finalize": "gome.graph.builder"}
calls: Counter = Counter()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def counted(name: str, fn, kill_n: int, when: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        calls[name] += 1
        if when == "before" and calls[name] == kill_n:
            die()
        out = fn(*args, **kwargs)
        if when == "after" and calls[name] == kill_n:
            die()
        return out
    return wrapper


def arm(kill: str) -> int | None:
    """Install the kill point; return the LLM call to die in, if that is the point."""
    kind, _, rest = kill.partition(":")
    if kind in ("none", ""):
        return None
    if kind == "llm":
        return int(rest)
    if kind in ("before", "after"):
        node, n = rest.rsplit(":", 1)
        module = sys.modules.get(NODES[node]) or __import__(NODES[node], fromlist=["x"])
        setattr(module, node, counted(node, getattr(module, node), int(n), kind))
    elif kind == "script":
        from gome.tools.sandbox.local import LocalExecutor

        original = LocalExecutor.run

        def run(self, script, workdir, *args, **kwargs):
            if "checks" not in Path(workdir).parts:  # experiments only, not gome's probes of the sandbox
                calls["script"] += 1
                if calls["script"] == int(rest):
                    threading.Timer(0.4, die).start()  # mid-script: sklearn's import alone takes longer
            return original(self, script, workdir, *args, **kwargs)
        LocalExecutor.run = run
    elif kind in ("put", "writes"):
        from langgraph.checkpoint.sqlite import SqliteSaver

        name = "put" if kind == "put" else "put_writes"
        setattr(SqliteSaver, name, counted(name, getattr(SqliteSaver, name), int(rest), "before"))
    elif kind == "runjson":  # the N-th rebuild of run.json by checkpoint (the only caller that passes no fields)
        from gome.tools.run.folder import RunFolder

        rebuild = RunFolder.update_run_json

        def update_run_json(self, **fields):
            if not fields:
                calls["runjson"] += 1
                if calls["runjson"] == int(rest):
                    die()
            return rebuild(self, **fields)
        RunFolder.update_run_json = update_run_json
    else:
        raise SystemExit(f"unknown kill point {kill!r}")
    return None


def model(kill_at_call: int | None) -> KindChatModel:
    chat = build()
    chat.kill_at_call = kill_at_call
    return chat


def main() -> None:
    from gome.graph.run import resume_gome, run_gome
    from gome.state.records import RunConfig
    from gome.tools.run.folder import new_run_dir

    command = sys.argv[1]
    if command == "run":
        task, out, kill = sys.argv[2], sys.argv[3], sys.argv[4]
        run_dir = new_run_dir(out, "breast-cancer")
        print(run_dir, flush=True)
        chat = model(arm(kill))
        reruns = int(os.environ.get("GOME_DRIVER_RERUNS", "0"))
        final = run_gome(task, RunConfig(steps=STEPS, select={"reruns": reruns}), run_dir=run_dir, chat_model=chat,
                         db=os.environ.get("GOME_DRIVER_DB"))
    else:
        final = resume_gome(Path(sys.argv[2]), chat_model=model(None), db=os.environ.get("GOME_DRIVER_DB"))
    print(final.get("status"), flush=True)
    sys.exit(0 if final.get("status") == "succeeded" else 1)


if __name__ == "__main__":
    main()
