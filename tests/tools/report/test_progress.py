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


def test_live_table_has_a_row_per_trace():
    out = io.StringIO()
    with Progress(live=True, out=out) as progress:
        for e in EVENTS:
            progress(e)
        table = progress._table()
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160)
    console.print(table)
    text = console.file.getvalue()
    assert "0.93" in text and "running 0002 (draft)" in text and "gradient -> tree: stalled" in text
    assert text.count("1/2") == 2


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
