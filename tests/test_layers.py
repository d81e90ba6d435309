"""The layering, guarded: state imports nothing of gome's but itself, tools never import nodes or the graph, nodes
never import the graph, nothing but the CLI and the eval import the eval, and no module imports its way back to
itself (at module level or inside a function)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"tests", "examples", "build", ".venv"}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP or any(p.startswith(".") for p in rel.parts):
            continue
        parts = ["gome", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every gome module `path` imports, anywhere in the file (`from pkg import mod` counts as pkg.mod)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("gome")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gome"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def test_each_layer_imports_only_what_is_below_it():
    rules = {  # layer -> layers it must never import
        "gome.state": ("gome.tools", "gome.nodes", "gome.graph", "gome.evals", "gome.cli"),
        "gome.tools": ("gome.nodes", "gome.graph", "gome.evals", "gome.cli"),
        "gome.nodes": ("gome.graph", "gome.evals", "gome.cli"),
        "gome.graph": ("gome.evals", "gome.cli"),
        "gome.evals": ("gome.cli",),
    }
    bad = [f"{mod} imports {dep}" for mod, deps in graph().items() for layer, banned in rules.items()
           if mod == layer or mod.startswith(layer + ".") for dep in deps
           if any(dep == b or dep.startswith(b + ".") for b in banned)]
    assert bad == []


def test_no_import_loops():
    g = graph()
    index, low, on_stack, stack, loops, counter = {}, {}, set(), [], [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in g:
        if v not in index:
            visit(v)
    assert loops == []


def test_the_guard_sees_the_modules_it_guards():
    g = graph()
    assert {"gome.nodes.checkpoint", "gome.graph.routing", "gome.tools.run.folder", "gome.state.journal"} <= set(g)
    assert "gome.nodes.policy" in g["gome.nodes.checkpoint"] and "gome.state.journal" in g["gome.tools.run.folder"]
