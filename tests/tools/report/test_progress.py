import io
import json

from gome.tools.report.progress import Progress

EVENTS = [
    {"event": "step_started", "trace": 0, "step": 1, "budget": 2, "id": "0001", "intent": "draft",
     "mode": "gradient"},
    {"event": "step_started", "trace": 1, "step": 1, "budget": 2, "id": "0002", "intent": "draft", "mode": "tree"},
    {"event": "step", "trace": 0, "step": 1, "budget": 2, "id": "0001", "mode": "gradient", "status": "ok",
     "score": 0.93, "score_source": "harness", "accepted": True, "improved_best": True, "best": 0.93,
     "runtime_s": 1.2, "hypothesis": "draft", "switch": "gradient -> tree: stalled"},
]


def render(progress: Progress) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(progress)
    return console.file.getvalue()


def test_live_table_has_a_row_per_trace_and_a_title_with_the_run_s_state(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("gome.tools.report.progress.time.time", lambda: clock[0])
    out = io.StringIO()
    with Progress(live=True, out=out) as progress:
        progress({"event": "phase", "phase": "searching", "steps": 4, "direction": "minimize"})
        for e in EVENTS:
            progress(e)
        progress({**EVENTS[2], "trace": 1, "id": "0002", "best": 0.91,
                  "spent": {"tokens": 12345, "dollars": 0.0123}})
        text = render(progress)
        clock[0] += 75  # no event for 75 s: the clock still moves (the table is drawn afresh at each refresh)
        later = render(progress)
        progress({"event": "phase", "phase": "selecting"})
        progress({"event": "rerun", "id": "0001", "seed": 1, "score": 0.92, "done": 1, "of": 4})
        selecting = render(progress)
    assert "0.93" in text and "gradient -> tree: stalled" in text
    assert "gome  0:00  searching  steps 2/4  best 0.91  tokens 12,345, $0.0123" in text  # lower is better here
    assert "gome  1:15  searching" in later
    assert "selecting: re-run 1/4" in selecting


def test_plain_lines_and_json_lines():
    plain, as_json = io.StringIO(), io.StringIO()
    with Progress(live=False, out=plain) as p, Progress(as_json=True, out=as_json) as j:
        for e in EVENTS:
            p(e)
            j(e)
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("[  1/2] trace 0 exp 0001 grad ok") and "NEW BEST" in lines[0]
    assert lines[1].strip() == "mode switch: gradient -> tree: stalled"
    assert [json.loads(x)["event"] for x in as_json.getvalue().splitlines()] == ["step_started", "step_started", "step"]
