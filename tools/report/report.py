"""The run report: what the agent did and why, from the run folder alone (so it works for a run in progress, a
crashed run and a finished one).

    write_report(run_dir) -> report.html, report.md

report.md is rendered from one template, report.md.j2 (PNG plots beside it, links into experiments/). report.html
is that same Markdown converted by markdown-it-py into one self-contained page: plots inlined as data: URIs,
diff blocks coloured, nothing fetched from the network.

Hypotheses, diagnoses, decisions, code and logs are text an LLM or a script wrote, and the Markdown allows raw HTML
(the step anchors are HTML), so none of that text may reach the page as markup: the template escapes every value
it prints (&, < and > become entities, line breaks spaces) unless a filter made it safe, and code goes into a
fenced block that no line of it can close.
"""

from __future__ import annotations

import base64
import difflib
import functools
import html
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from gome.state.journal import Journal
from gome.state.records import RunConfig, cost
from gome.tools.report.plots import plot_scores
from gome.tools.run.folder import ExperimentFolder, RunFolder

DIFF_LINES = 2000
CODE_LINES = 400  # longer scripts and diffs are cut in the report (the files hold all of it)
CRASH_CHARS = 3000  # the tail of crash.txt the report shows
TEMPLATE = "report.md.j2"


# -- the data -------------------------------------------------------------------------------------------------
def load_run(run_dir: str | Path) -> dict:
    """Everything the report shows, gathered from files. Missing pieces (a crashed run) are simply absent.

    steps: one dict per experiment folder, in id order: its metrics.json record (the journal's node) or, while it
    runs, {"status": "in progress"}; with its plan, parent, diagnosis and code. journal: the finished ones, typed."""
    folder = RunFolder(run_dir)
    steps, finished = [], []
    for exp_folder in folder.experiment_folders():
        exp = exp_folder.read_experiment()
        if exp is None:
            rec = {"id": exp_folder.id, "status": "in progress", "step": None, "trace": None, "score": None}
        else:
            finished.append(exp)
            rec = exp.model_dump(mode="json")
        rec["plan"] = exp_folder.read("plan", {})
        rec["parent"] = rec.get("parent") or rec["plan"].get("parent")
        rec["diagnosis"] = rec.get("diagnosis") or exp_folder.read("diagnosis")
        rec["code"] = exp_folder.read_code() or ""
        steps.append(rec)
    journal = Journal(finished)
    usage = []
    for line in folder.read_text("usage.jsonl", 256 << 20).splitlines():
        try:
            usage.append(json.loads(line))
        except (ValueError, RecursionError):  # a line cut by a crash
            continue
    return {"dir": folder.root, "run": folder.read("run", {}), "steps": steps, "usage": usage, "journal": journal,
            "memory": _memory(journal), "crash": folder.read_text("crash.txt")}


def _memory(journal: Journal) -> list[dict]:
    """The success memory as the run built it: every accepted gradient step (the same entries checkpoint put in
    the store, whichever backend holds it)."""
    return [{"change": e.gradient.hypothesis.change, "component": e.gradient.hypothesis.component,
             "step_size": e.gradient.hypothesis.step_size, "trace": e.trace, "experiment": e.id, "score": e.score}
            for e in journal.accepted_gradients]


def diff(a: str, b: str, a_name: str, b_name: str) -> str:
    """A unified diff, cut at CODE_LINES; scripts longer than DIFF_LINES are diffed on their first lines only
    (difflib is quadratic on repetitive lines)."""
    lines = list(difflib.unified_diff(a.splitlines()[:DIFF_LINES], b.splitlines()[:DIFF_LINES], a_name, b_name,
                                      lineterm=""))
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
        cached = u.get("cached_input_tokens") or 0
        dollars = cost(price, u["input_tokens"], u["output_tokens"], cached) if price else 0.0
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


# -- the report -----------------------------------------------------------------------------------------------
def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    data = load_run(run_dir)
    folder = RunFolder(data["dir"])
    plots = plot_scores(data, folder.root)
    text = render_markdown(data, plots)
    folder.write_text("report.md", text)
    folder.write_text("report.html", render_html(text, plots))
    return folder.path("report.html"), folder.path("report.md")


def render_markdown(data: dict, plots: list[Path]) -> str:
    return _template().render(_context(data, plots))


def _context(data: dict, plots: list[Path]) -> dict:
    """What the template shows, worked out: the tree, each step's diff and files, the best, the cost tables."""
    run, steps, folder = data["run"], data["steps"], RunFolder(data["dir"])
    by_id = {s["id"]: s for s in steps}
    best = run.get("best") or {}
    best_step = by_id.get(best.get("id"))
    first = data["journal"].first_working()
    first_step = by_id.get(first.id) if first else None
    first_diff = None
    if best_step:
        best_step = {**best_step, "main": _href(folder, folder.experiment(best_step["id"]).main)}
        if first_step and first_step["id"] != best_step["id"]:
            first_diff = diff(first_step["code"], best_step["code"], first_step["id"], best_step["id"])
    c = costs(data)
    return {
        "title": run.get("run_id", folder.root.name), "run": run, "best": best, "crash": data["crash"][-CRASH_CHARS:],
        "plots": [{"alt": p.stem.replace("_", " "), "src": _href(folder, p)} for p in plots],
        "tree": tree(steps), "steps": [_step_view(s, by_id, folder) for s in steps], "memory": data["memory"],
        "best_step": best_step, "first": first_step, "first_diff": first_diff,
        "wall_s": c["wall_s"], "by_node": sorted(c["by_node"].items()),
        "by_trace": sorted(c["by_trace"].items(), key=lambda kv: str(kv[0])),
    }


def _step_view(s: dict, by_id: dict[str, dict], folder: RunFolder) -> dict:
    """A step with what the report adds to it: its diff against its parent (or, for a root, its first lines of
    code) and the links to its files."""
    parent = by_id.get(s.get("parent"))
    changed = diff(parent["code"], s["code"], parent["id"], s["id"]) if parent and s["code"] else None
    head = None if parent or not s["code"] else "\n".join(s["code"].splitlines()[:CODE_LINES])
    exp = folder.experiment(s["id"])
    return {"step": s, "diff": changed, "code": head, "files": _files(folder, exp), "attempts": exp.attempts()}


def _files(folder: RunFolder, exp: ExperimentFolder) -> list[tuple[str, str]]:
    """(name, link) of the experiment's files the report links to: the script, its logs, gome's records."""
    return [(p.name, _href(folder, p)) for p in exp.files()]


def _href(folder: RunFolder, path: Path) -> str:
    """A link from a report (at the run folder's top) to a file in the run folder."""
    return path.relative_to(folder.root).as_posix()


def _md_text(value) -> str:
    """Every value the template prints (jinja2's finalize): escaped for Markdown that allows raw HTML, so that text
    an LLM or a script wrote shows as text (&, <, > as entities; a line break, which could start a block, as a
    space). Values a filter made safe (Markup: fenced code, attribute values) pass as they are."""
    if isinstance(value, Markup):
        return value
    return html.escape(re.sub(r"\s*[\r\n]\s*", " ", str(value)), quote=False)


def _fence(text: str, lang: str = "") -> Markup:
    """A fenced code block that no line of `text` can close: its fence is longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return Markup(f"{bar}{lang}\n{text}\n{bar}")


def _attr(value) -> Markup:
    """A value inside a raw-HTML attribute (the step anchors' ids): quotes escaped too."""
    return Markup(html.escape(str(value), quote=True))


@functools.cache
def _template() -> jinja2.Template:
    """report.md.j2, beside this module. Autoescape is off (it writes Markdown, not HTML): _md_text escapes."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=False,
                             finalize=_md_text, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(score=_score, verdict=verdict, fence=_fence, attr=_attr)
    return env.get_template(TEMPLATE)


# -- html -----------------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#1d1d1f}
h1{font-size:1.5rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px;max-height:32rem}
.add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}.hunk{color:#6e7781}
.accepted{color:#116329}.rejected{color:#9a6700}.buggy{color:#cf222e}.in-progress{color:#0969da}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}
ul.tree{list-style:none;padding-left:1rem}ul.tree li{margin:.1rem 0}
details{margin:.5rem 0;border:1px solid #eee;padding:.3rem .6rem}summary{cursor:pointer}
img{max-width:100%}
"""


def render_html(markdown: str, plots: list[Path]) -> str:
    """The report's Markdown as one self-contained page: the plots inlined as data: URIs."""
    images = {p.name: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in plots}
    body = _markdown_it().render(markdown, {"images": images})
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>gome report</title>"
            f"<style>{CSS}</style></head><body>\n{body}</body></html>\n")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Diff blocks coloured: +, - and @@ lines in spans of class add, del and hunk. Other blocks: markdown-it's
    own (escaped) rendering."""
    if lang != "diff":
        return ""
    rows = []
    for line in code.split("\n"):
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else "hunk" if line.startswith(
            "@@") else ""
        rows.append(f'<span class="{cls}">{html.escape(line)}</span>' if cls else html.escape(line))
    return "\n".join(rows)


def _image(self, tokens, idx, options, env) -> str:
    """Only the run's own plots are images, inlined; any other image (a URL in a hypothesis, say) shows as its
    alt text, so opening the page fetches nothing."""
    token = tokens[idx]
    src = env.get("images", {}).get(token.attrGet("src"))
    if src is None:
        return html.escape(self.renderInlineAsText(token.children or [], options, env))
    token.attrSet("src", src)
    return self.image(tokens, idx, options, env)


@functools.cache
def _markdown_it() -> MarkdownIt:
    """CommonMark with tables, raw HTML allowed (the step anchors): the template keeps all other HTML out."""
    md = MarkdownIt("commonmark", {"html": True, "highlight": _highlight}).enable("table")
    md.add_render_rule("image", _image)
    return md
