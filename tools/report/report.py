"""The run report: what the agent did and why, from the run folder alone (so it works for a run in progress, a
crashed run and a finished one).

    write_report(run_dir) -> report.html (self-contained: plots inlined, no network) and report.md (PNG plots
    beside it, links into experiments/).
"""

from __future__ import annotations

import base64
import difflib
import html
import json
import time
from collections import defaultdict
from pathlib import Path

from gome.state.records import RunConfig
from gome.tools.files import read_text, write_text
from gome.tools.report.plots import plot_scores
from gome.tools.run.folder import read_json

CODE_LINES = 400  # longer scripts and diffs are cut in the report (the files hold all of it)


def _read(path: Path, max_bytes: int = 1 << 20) -> str:
    try:
        return read_text(path, max_bytes)
    except OSError:  # missing, a link, or too big: the report shows what it can
        return ""


def _memory(steps: list[dict]) -> list[dict]:
    """The success memory as the run built it: every accepted gradient step (the same entries checkpoint put in
    the store, whichever backend holds it)."""
    out = []
    for s in steps:
        h = (s.get("gradient") or {}).get("hypothesis")
        if s.get("accepted") and h:
            out.append({"change": h["change"], "component": h["component"], "step_size": h["step_size"],
                        "trace": s["trace"], "experiment": s["id"], "score": s.get("score")})
    return out


def load_run(run_dir: str | Path) -> dict:
    """Everything the report shows, gathered from files. Missing pieces (a crashed run) are simply absent."""
    run_dir = Path(run_dir)
    run = read_json(run_dir / "run.json", {}) or {}
    steps = []
    for folder in sorted((run_dir / "experiments").glob("*")):
        if not folder.is_dir():
            continue
        rec = read_json(folder / "metrics.json") or {"id": folder.name, "status": "in progress", "step": None,
                                                      "trace": None, "score": None}
        rec["plan"] = read_json(folder / "plan.json", {}) or {}
        rec["parent"] = rec.get("parent") or rec["plan"].get("parent")
        rec["diagnosis"] = rec.get("diagnosis") or read_json(folder / "diagnosis.json")
        rec["code"] = _read(folder / "main.py")
        steps.append(rec)
    usage = []
    for line in _read(run_dir / "usage.jsonl", 256 << 20).splitlines():
        try:
            usage.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return {"dir": run_dir, "run": run, "steps": steps, "usage": usage, "memory": _memory(steps),
            "crash": _read(run_dir / "crash.txt")}


def diff(a: str, b: str, a_name: str, b_name: str) -> str:
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), a_name, b_name, lineterm=""))
    if len(lines) > CODE_LINES:
        lines = [*lines[:CODE_LINES], f"... {len(lines) - CODE_LINES} more lines"]
    return "\n".join(lines)


def costs(data: dict) -> dict:
    """Tokens, dollars and seconds per node type and per trace (LLM calls from usage.jsonl, scripts from runs)."""
    cfg = RunConfig.model_validate(data["run"].get("config") or {})
    by_node: dict = defaultdict(lambda: defaultdict(float))
    by_trace: dict = defaultdict(lambda: defaultdict(float))
    for u in data["usage"]:
        price = cfg.price_of(u.get("model"))
        dollars = (u["input_tokens"] * price[0] + u["output_tokens"] * price[1]) / 1e6 if price else 0.0
        for table, key in ((by_node, u.get("node", "?")), (by_trace, u.get("trace"))):
            row = table[key]
            row["calls"] += 1
            row["tokens"] += u["input_tokens"] + u["output_tokens"]
            row["dollars"] += dollars
            row["seconds"] += u.get("seconds", 0.0)
    for s in data["steps"]:
        if s.get("runtime_s"):
            by_node["execute (scripts)"]["seconds"] += s["runtime_s"]
            by_node["execute (scripts)"]["calls"] += 1
            by_trace[s.get("trace")]["script_seconds"] += s["runtime_s"]
    run = data["run"]
    end = run.get("finished_at") or run.get("updated_at") or time.time()
    return {"by_node": by_node, "by_trace": by_trace, "wall_s": end - run.get("started_at", end)}


def tree(steps: list[dict]) -> list[tuple[int, dict]]:
    """(depth, step) in depth-first order: each root followed by its descendants."""
    ids = {s["id"] for s in steps}
    children = defaultdict(list)
    for s in steps:
        children[s.get("parent") if s.get("parent") in ids else None].append(s)
    out: list[tuple[int, dict]] = []

    def walk(node_id, depth):
        for s in children.get(node_id, []):
            out.append((depth, s))
            walk(s["id"], depth + 1)

    walk(None, 0)
    return out


def verdict(s: dict) -> str:
    if s["status"] == "in progress":
        return "in progress"
    if s.get("buggy") or s["status"] != "ok":
        return "buggy"
    return "accepted" if s.get("accepted") else "rejected"


def _score(s: dict) -> str:
    return "-" if s.get("score") is None else f"{s['score']:.5g}"


def _first_working(steps: list[dict]) -> dict | None:
    return next((s for s in steps if s.get("status") == "ok" and s.get("submission_valid")), None)


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    data = load_run(run_dir)
    run_dir = data["dir"]
    plots = plot_scores(data, run_dir)
    md = run_dir / "report.md"
    write_text(md, render_markdown(data, plots))
    page = run_dir / "report.html"
    write_text(page, render_html(data, plots))
    return page, md


# -- markdown -------------------------------------------------------------------------------------------------
def render_markdown(data: dict, plots: list[Path]) -> str:
    run, steps = data["run"], data["steps"]
    best = run.get("best") or {}
    out = [f"# gome run {run.get('run_id', data['dir'].name)}", "",
           f"- task: {run.get('task')} ({run.get('metric')}, {run.get('direction')})",
           f"- status: **{run.get('status', 'unknown')}** {run.get('message') or ''}",
           f"- mode: {(run.get('config') or {}).get('mode')}; isolation: {run.get('isolation', '?')}; "
           f"stopped by: {', '.join(run.get('stopped_by') or ['-'])}",
           f"- best: {_score(best)} from [{best.get('id')}](#exp-{best.get('id')})" if best else
           "- best: none yet", ""]
    if data["crash"]:
        out += ["## Crash", "", "```", data["crash"][-3000:], "```", ""]
    out += ["## Scores", ""] + [f"![{p.stem.replace('_', ' ')}]({p.name})" for p in plots] + [""]
    if run.get("mode_switches"):
        out += ["Mode switches:", ""] + [f"- after {m['after']} (trace {m['trace']}): {m['switch']}"
                                         for m in run["mode_switches"]] + [""]
    out += ["## Solution tree", ""]
    for depth, s in tree(steps):
        out.append(f"{'  ' * depth}- [{s['id']}](#exp-{s['id']}) {verdict(s)}, score {_score(s)} "
                   f"({s.get('intent', '')}, trace {s.get('trace')})")
    out += ["", "## Steps", ""]
    for s in steps:
        out += _step_md(s, steps, data["dir"])
    out += ["## Success memory", ""]
    out += [f"- {m['change']} ({m['component']}, {m['step_size']}; score {_score(m)}; trace {m['trace']}, "
            f"[{m['experiment']}](#exp-{m['experiment']}))" for m in data["memory"]] or ["- empty"]
    out += ["", "## Best solution", ""]
    first = _first_working(steps)
    best_step = next((s for s in steps if s["id"] == best.get("id")), None)
    if best_step:
        out += [f"[experiments/{best_step['id']}/main.py](experiments/{best_step['id']}/main.py)", "", "```python",
                best_step["code"].rstrip(), "```", ""]
        if first and first["id"] != best_step["id"]:
            out += [f"Diff against the first working draft ({first['id']}):", "", "```diff",
                    diff(first["code"], best_step["code"], first["id"], best_step["id"]), "```", ""]
    out += _costs_md(costs(data))
    return "\n".join(out) + "\n"


def _step_md(s: dict, steps: list[dict], run_dir: Path) -> list[str]:
    out = [f'<a id="exp-{s["id"]}"></a>', f"### {s['id']}: {s.get('hypothesis') or s.get('intent', '')}", "",
           f"trace {s.get('trace')}, step {s.get('step')}, mode {s.get('mode', '-')}, status {s['status']}, "
           f"runtime {s.get('runtime_s', 0) or 0:.1f} s, score {_score(s)} ({s.get('score_source') or '-'}), "
           f"**{verdict(s)}**: {s.get('decision', '')}", ""]
    g = (s.get("gradient") or {}).get("hypothesis")
    if g:
        out += [f"- gradient: {g['change']} ({g['component']}, step size {g['step_size']}; impact {g['impact']}, "
                f"confidence {g['confidence']}, novelty {g['novelty']}, cost {g['cost']})"]
    momentum = s["plan"].get("momentum") or []
    if momentum:
        out += ["- momentum: " + "; ".join(f"{m['change']} (x{m['times']})" for m in momentum)]
    if s["plan"].get("avoid"):
        out += ["- avoided: " + "; ".join(s["plan"]["avoid"])]
    d = s.get("diagnosis")
    if d:
        out += [f"- diagnosis ({s.get('diagnosis_source') or d.get('source', '')}): {d.get('outcome')}: "
                f"{d.get('summary', '')}"]
        out += [f"  - {p['component']}: {p['description']} (evidence: {p.get('evidence', '')})"
                for p in d.get("problems") or []]
    if s.get("switch"):
        out += [f"- mode switch: {s['switch']}"]
    parent = next((p for p in steps if p["id"] == s.get("parent")), None)
    if parent and s["code"]:
        out += ["", "```diff", diff(parent["code"], s["code"], parent["id"], s["id"]), "```"]
    files = [n for n in ("main.py", "stdout.txt", "stderr.txt", "metrics.json", "plan.json", "diagnosis.json")
             if (run_dir / "experiments" / s["id"] / n).is_file()]
    out += ["", "Files: " + ", ".join(f"[{n}](experiments/{s['id']}/{n})" for n in files), ""]
    return out


def _costs_md(c: dict) -> list[str]:
    out = ["## Cost", "", f"Wall time: {c['wall_s'] / 60:.1f} min", "",
           "| node | calls | tokens | dollars | seconds |", "|---|---|---|---|---|"]
    for node, r in sorted(c["by_node"].items()):
        out.append(f"| {node} | {int(r['calls'])} | {int(r['tokens'])} | {r['dollars']:.4f} | {r['seconds']:.1f} |")
    out += ["", "| trace | LLM calls | tokens | dollars | LLM seconds | script seconds |", "|---|---|---|---|---|---|"]
    for trace, r in sorted(c["by_trace"].items(), key=lambda kv: str(kv[0])):
        out.append(f"| {trace} | {int(r['calls'])} | {int(r['tokens'])} | {r['dollars']:.4f} | {r['seconds']:.1f} "
                   f"| {r['script_seconds']:.1f} |")
    return out


# -- html -----------------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#1d1d1f}
h1{font-size:1.5rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px;max-height:32rem}
.add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}.hunk{color:#6e7781}
.accepted{color:#116329}.rejected{color:#9a6700}.buggy{color:#cf222e}.in-progress{color:#0969da}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}
ul.tree{list-style:none;padding-left:1rem}ul.tree li{margin:.1rem 0}
details{margin:.5rem 0;border:1px solid #eee;padding:.3rem .6rem}summary{cursor:pointer}
img{max-width:100%}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _pre_diff(text: str) -> str:
    rows = []
    for line in text.splitlines():
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else "hunk" if line.startswith(
            "@@") else ""
        rows.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return "<pre>" + "\n".join(rows) + "</pre>"


def _tree_html(steps: list[dict]) -> str:
    out, depth_now = ['<ul class="tree">'], 0
    for depth, s in tree(steps):
        while depth > depth_now:
            out.append('<ul class="tree">')
            depth_now += 1
        while depth < depth_now:
            out.append("</ul>")
            depth_now -= 1
        v = verdict(s)
        out.append(f'<li><a href="#exp-{_e(s["id"])}">{_e(s["id"])}</a> <span class="{v.replace(" ", "-")}">'
                   f'{_e(v)}</span> score {_e(_score(s))} <small>{_e(s.get("intent", ""))}, trace '
                   f'{_e(s.get("trace"))}</small></li>')
    out += ["</ul>"] * (depth_now + 1)
    return "\n".join(out)


def render_html(data: dict, plots: list[Path]) -> str:
    """The markdown's content as one self-contained page: plots inlined, tree and steps linked by anchors."""
    run, steps = data["run"], data["steps"]
    best = run.get("best") or {}
    parts = [f"<h1>gome run {_e(run.get('run_id', data['dir'].name))}</h1>",
             f"<p>task <b>{_e(run.get('task'))}</b> ({_e(run.get('metric'))}, {_e(run.get('direction'))}); "
             f"status <b>{_e(run.get('status', 'unknown'))}</b> {_e(run.get('message') or '')}<br>"
             f"mode {_e((run.get('config') or {}).get('mode'))}; isolation {_e(run.get('isolation', '?'))}; "
             f"stopped by {_e(', '.join(run.get('stopped_by') or ['-']))}; best "
             + (f'<a href="#exp-{_e(best.get("id"))}">{_e(best.get("id"))}</a> {_e(_score(best))}' if best else
                "none yet") + "</p>"]
    if data["crash"]:
        parts += ["<h2>Crash</h2>", f"<pre>{_e(data['crash'][-3000:])}</pre>"]
    parts.append("<h2>Scores</h2>")
    for p in plots:
        b64 = base64.b64encode(p.read_bytes()).decode()
        parts.append(f'<img alt="{_e(p.stem)}" src="data:image/png;base64,{b64}">')
    if run.get("mode_switches"):
        parts.append("<ul>" + "".join(f"<li>after {_e(m['after'])} (trace {_e(m['trace'])}): {_e(m['switch'])}</li>"
                                      for m in run["mode_switches"]) + "</ul>")
    parts += ["<h2>Solution tree</h2>", _tree_html(steps), "<h2>Steps</h2>"]
    for s in steps:
        parts.append(_step_html(s, steps))
    parts.append("<h2>Success memory</h2><ul>" + ("".join(
        f"<li>{_e(m['change'])} <small>({_e(m['component'])}, {_e(m['step_size'])}; score {_e(_score(m))}; "
        f"trace {_e(m['trace'])}, experiment <a href=\"#exp-{_e(m['experiment'])}\">{_e(m['experiment'])}</a>)"
        "</small></li>" for m in data["memory"])
        or "<li>empty</li>") + "</ul>")
    parts.append("<h2>Best solution</h2>")
    first = _first_working(steps)
    best_step = next((s for s in steps if s["id"] == best.get("id")), None)
    if best_step:
        parts.append(f"<pre>{_e(best_step['code'])}</pre>")
        if first and first["id"] != best_step["id"]:
            parts += [f"<p>Diff against the first working draft ({_e(first['id'])}):</p>",
                      _pre_diff(diff(first["code"], best_step["code"], first["id"], best_step["id"]))]
    else:
        parts.append("<p>none yet</p>")
    parts.append(_costs_html(costs(data)))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>gome report</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n")


def _step_html(s: dict, steps: list[dict]) -> str:
    v = verdict(s)
    head = (f'<summary><b>{_e(s["id"])}</b> <span class="{v.replace(" ", "-")}">{_e(v)}</span> '
            f"score {_e(_score(s))} &middot; {_e(s.get('hypothesis') or s.get('intent', ''))}</summary>")
    body = [f"<p>trace {_e(s.get('trace'))}, step {_e(s.get('step'))}, mode {_e(s.get('mode', '-'))}, status "
            f"{_e(s['status'])}, runtime {(s.get('runtime_s') or 0):.1f} s, score source "
            f"{_e(s.get('score_source') or '-')}. Decision: {_e(s.get('decision', ''))}</p><ul>"]
    g = (s.get("gradient") or {}).get("hypothesis")
    if g:
        body.append(f"<li>gradient: {_e(g['change'])} ({_e(g['component'])}, step size {_e(g['step_size'])})</li>")
    for m in s["plan"].get("momentum") or []:
        body.append(f"<li>momentum: {_e(m['change'])} (x{_e(m['times'])})</li>")
    for a in s["plan"].get("avoid") or []:
        body.append(f"<li>avoided: {_e(a)}</li>")
    d = s.get("diagnosis")
    if d:
        body.append(f"<li>diagnosis: {_e(d.get('outcome'))}: {_e(d.get('summary', ''))}<ul>" + "".join(
            f"<li>{_e(p['component'])}: {_e(p['description'])} <small>{_e(p.get('evidence', ''))}</small></li>"
            for p in d.get("problems") or []) + "</ul></li>")
    if s.get("switch"):
        body.append(f"<li>mode switch: {_e(s['switch'])}</li>")
    body.append("</ul>")
    parent = next((p for p in steps if p["id"] == s.get("parent")), None)
    if parent and s["code"]:
        body += [f"<p>diff against {_e(parent['id'])}:</p>", _pre_diff(diff(parent["code"], s["code"], parent["id"],
                                                                         s["id"]))]
    elif s["code"]:
        body.append(f"<pre>{_e(chr(10).join(s['code'].splitlines()[:CODE_LINES]))}</pre>")
    return f'<details id="exp-{_e(s["id"])}" open>{head}{"".join(body)}</details>'


def _costs_html(c: dict) -> str:
    rows = "".join(f"<tr><td>{_e(n)}</td><td>{int(r['calls'])}</td><td>{int(r['tokens'])}</td>"
                   f"<td>{r['dollars']:.4f}</td><td>{r['seconds']:.1f}</td></tr>"
                   for n, r in sorted(c["by_node"].items()))
    trows = "".join(f"<tr><td>{_e(t)}</td><td>{int(r['calls'])}</td><td>{int(r['tokens'])}</td>"
                    f"<td>{r['dollars']:.4f}</td><td>{r['seconds']:.1f}</td><td>{r['script_seconds']:.1f}</td></tr>"
                    for t, r in sorted(c["by_trace"].items(), key=lambda kv: str(kv[0])))
    return (f"<h2>Cost</h2><p>wall time {c['wall_s'] / 60:.1f} min</p>"
            "<table><tr><th>node</th><th>calls</th><th>tokens</th><th>dollars</th><th>seconds</th></tr>"
            f"{rows}</table><br><table><tr><th>trace</th><th>LLM calls</th><th>tokens</th><th>dollars</th>"
            f"<th>LLM seconds</th><th>script seconds</th></tr>{trows}</table>")
