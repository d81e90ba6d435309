"""Saving a new script as the experiment the next execute runs, and telling sibling traces what it tries."""

from __future__ import annotations

import ast
import re
import time

from langgraph.runtime import Runtime

from gome.nodes.prompts import CODE_CHARS, EDITS, WHOLE_SCRIPT, ask
from gome.nodes.runtime import config_of, folder_of, store_of
from gome.state.graph_state import PendingScript
from gome.tools.llm.structured import LLMCaller
from gome.tools.run.folder import RunFolder, read_json
from gome.tools.syntax import parse

APPROACH = re.compile(r"^\s*#\s*Approach:\s*(.+)$", re.MULTILINE | re.IGNORECASE)


def trying_namespace(run_id: str) -> tuple[str, ...]:
    return ("gome", run_id, "trying")


def approach_of(code: str | None) -> str | None:
    """The script's own one-line summary (`# Approach: ...`, which the rules ask for)."""
    found = APPROACH.search(code or "")
    return found.group(1).strip()[:200] if found else None


def save_script(run_dir: str, exp_id: str, code: str | None, *, parent: str | None, plan: dict,
                errors: list[str]) -> PendingScript:
    """Write the experiment's main.py and plan.json (afresh: a node re-run after a crash starts over); return the
    `pending` record for state."""
    folder = RunFolder(run_dir).experiment(exp_id).fresh()
    if code is not None:
        folder.write_code(code)
    approach = approach_of(code)
    folder.write("plan", {**plan, "approach": approach, "parent": parent, "llm_errors": errors[-5:]})
    return PendingScript(id=exp_id, parent=parent, kind=plan.get("kind", "update"), has_script=code is not None,
                         approach=approach, llm_error=None if code is not None else
                         (errors[-1] if errors else "no script in the reply"))


def announce(runtime: Runtime | None, state: dict, pending: PendingScript) -> None:
    """Publish what this trace is trying, for siblings that have nothing working yet."""
    store = store_of(runtime)
    if store is None or not pending.get("has_script") or state["config"].get("traces", 1) < 2:  # no siblings
        return
    gradient = state.get("gradient") or {}
    trying = pending.get("approach") or (gradient.get("hypothesis") or {}).get("change")
    if trying:
        store.put(trying_namespace(state["run_id"]), str(state["trace"]),
                  {"trace": state["trace"], "trying": trying, "step": state.get("step", 0), "at": time.time()})


def sibling_note(runtime: Runtime | None, state: dict) -> str:
    """Until a trace has its first accepted solution, it is told what its siblings try, to try something else."""
    store = store_of(runtime)
    if store is None or state.get("best") or state["config"].get("traces", 1) < 2:
        return ""
    others = [item.value for item in store.search(trying_namespace(state["run_id"]), limit=64)
              if item.value.get("trace") != state["trace"]]
    if not others:
        return ""
    lines = "\n".join(f"- trace {o['trace']}: {o['trying']}" for o in sorted(others, key=lambda o: o["trace"]))
    return f"\n# Sibling traces are trying these; take a clearly different approach\n{lines}\n"


EDIT_TRIES = 2  # failed edit requests after which a run asks for whole scripts, unless half of its edits applied


def edits_pay(run: RunFolder) -> bool:
    """Are edits worth asking for in this run? A failed edit request costs a call and then the whole script anyway:
    the 1.5B model answered edit requests with whole scripts or prose, so a run stops asking once EDIT_TRIES of them
    failed, unless at least half of all of them applied."""
    asked = [e for requests in run.records("plan.json", _edit_requests) for e in requests]
    failed = asked.count(False)
    return failed < EDIT_TRIES or 2 * failed <= len(asked)


def _edit_requests(plan_json: str) -> tuple[bool, ...]:
    """Whether each edit request of an experiment (its step's, then its repairs') applied."""
    plan = read_json(plan_json, {})
    plan = plan if isinstance(plan, dict) else {}
    repairs = plan.get("repairs") if isinstance(plan.get("repairs"), list) else []
    return tuple(bool(e.get("applied")) for e in [plan.get("edit"), *(r.get("edit") for r in repairs if
                                                                      isinstance(r, dict))]
                 if isinstance(e, dict) and e.get("asked") == "edits")


def write_step(caller: LLMCaller, state: dict, request: str, base: str | None, *, small: bool,
               temperature: float | None = None) -> tuple[str | None, dict]:
    """The script of a step, and how it came (plan.json's `edit`). A small step (minimal or moderate, a repair, a
    tree fix or improvement) answers with search/replace edits against `base` when the run allows edits, they have
    paid so far (edits_pay) and the prompt shows all of `base`: a model re-typed ~500 tokens of unchanged script to
    change a few lines. Anything else asks for the whole script."""
    if small and base and config_of(state).edits and len(base) <= CODE_CHARS and edits_pay(folder_of(state)):
        example = EDITS.format(line=next((line for line in base.splitlines() if line.startswith(("import ", "from "))),
                                         base.splitlines()[0]))
        code, edit = caller.write_edit(ask(state, f"{request}\n\n{example}"), base, temperature=temperature)
        return code, {"asked": "edits", **edit}
    code = caller.write_script(ask(state, f"{request}\n\n{WHOLE_SCRIPT}"), temperature=temperature)
    return code, {"asked": "script", "form": "script"}


def same_program(a: str, b: str) -> bool:
    """The same code once comments and layout are set aside. (Comparing compiled bytecode instead was tried for
    speed: since 3.11 which statements a `try` covers lives in the exception table, a lone `pass` leaves a NOP,
    and -O drops asserts, so it called real repairs unchanged; the syntax trees say what the code is.) A top-level
    statement whose source text is the same in both is the same tree: only the others are dumped (ast.dump of a
    whole script cost a step ~1.5 ms, and an edit changes a few statements)."""
    if a == b:
        return True
    try:
        ta, tb = parse(a), parse(b)
        return len(ta.body) == len(tb.body) and all(
            x == y or ast.dump(s) == ast.dump(t)
            for x, y, s, t in zip(_statements(a, ta), _statements(b, tb), ta.body, tb.body, strict=True))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return a.split() == b.split()


NEWLINE = re.compile(rb"\r\n|\r|\n")  # the parser's line ends


def _statements(code: str, tree: ast.Module) -> list[bytes]:
    """The source of each top-level statement, decorators included (a function's line is its `def`), cut by the
    parser's own positions (columns count UTF-8 bytes)."""
    data = code.encode()
    starts = [0, *(m.end() for m in NEWLINE.finditer(data))]
    cut = []
    for stmt in tree.body:
        first = min([stmt, *getattr(stmt, "decorator_list", ())], key=lambda n: (n.lineno, n.col_offset))
        cut.append(data[starts[first.lineno - 1] + first.col_offset:starts[stmt.end_lineno - 1] + stmt.end_col_offset])
    return cut


def write_change(caller: LLMCaller, state: dict, request: str, base: str | None, *, small: bool
                 ) -> tuple[str | None, dict]:
    """write_step for a step that should change `base` (an update, a tree fix or improvement); plan.json's `edit`
    says `unchanged` when the script is `base` again, comments and layout aside. The 1.5B model did that in 3 of
    6 updates in stop 21's eval. Asking once more, told so, at temperature 0.8 was tried: the one retry that
    happened came back unchanged again and cost a 70 s call, so it is not done."""
    code, edit = write_step(caller, state, request, base, small=small)
    if code is not None and base and same_program(code, base):
        edit = {**edit, "unchanged": True}
    return code, edit
