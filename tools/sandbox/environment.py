"""What a script can import where it runs: the ML packages installed (with versions, stated in every script
prompt), and a static check of a script's imports before it runs, so that a wrong import becomes a repair in
seconds instead of a sandbox run that dies.

Both questions are asked of the sandbox's own interpreter, by a small script of gome's run in the sandbox (a name
an LLM wrote is never imported in gome's process: importing a package runs its code). The check parses the
script and resolves every `import X` and `from X import name` (a module is found; a name is one of its
attributes or submodules). Imports inside a `try` that catches ImportError are the script's own fallback and are
not checked. Answers are cached per process: the environment does not change during a run.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable, Iterator

from gome.tools.syntax import parse

# What Kaggle practitioners reach for, by distribution name -> import name.
ML_PACKAGES = {"numpy": "numpy", "pandas": "pandas", "scikit-learn": "sklearn", "scipy": "scipy",
               "lightgbm": "lightgbm", "xgboost": "xgboost", "xgboost-cpu": "xgboost", "catboost": "catboost",
               "statsmodels": "statsmodels", "torch": "torch", "pillow": "PIL"}
CATCHES = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
MARK = "GOME-ENVIRONMENT:"

VERSIONS_SCRIPT = f"""import importlib.metadata, json
found = {{}}
for dist, module in {ML_PACKAGES!r}.items():
    try:
        found.setdefault(module, importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        pass
print({MARK!r} + json.dumps(found))
"""

CHECK_SCRIPT = """import importlib, importlib.util, json
answers = {{}}
for module, name in {wanted!r}:
    try:
        if name is None:
            answers[module] = importlib.util.find_spec(module) is not None
        else:
            try:
                found = importlib.util.find_spec(module + "." + name) is not None
            except Exception:
                found = False
            answers[module + ":" + name] = found or hasattr(importlib.import_module(module), name)
    except Exception:
        answers[module if name is None else module + ":" + name] = False
print({mark!r} + json.dumps(answers))
"""

_known: dict[tuple[str, str], bool] = {}  # (sandbox, "module" or "module:name") -> resolves there


def parse_answer(stdout: str) -> dict | None:
    """The JSON a probe script printed after MARK, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                value = json.loads(line[len(MARK):])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def describe(versions: dict[str, str]) -> str:
    return ", ".join(f"{m} {v}" for m, v in sorted(versions.items())) or "none of the usual ML packages"


def imports_of(code: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(module, names imported from it, line) of every import the script depends on."""
    return list(_imports_of(code))


@functools.lru_cache(maxsize=4)  # a step asks twice of the same script: moving imports, then checking them
def _imports_of(code: str) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    found = []
    for node in _statements(parse(code).body):
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, tuple(a.name for a in node.names if a.name != "*"), node.lineno))
    return tuple(sorted(found, key=lambda f: f[2]))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, but not those a `try: ... except ImportError:` guards (the script's
    own fallback). Imports are statements: walking expressions too (ast.walk) cost ten times more."""
    for stmt in body:
        yield stmt
        guarded = isinstance(stmt, ast.Try) and any(_catches_import_error(h) for h in stmt.handlers)
        for name, value in ast.iter_fields(stmt):
            if isinstance(value, list) and not (guarded and name == "body"):
                yield from _statements([i for i in value if isinstance(i, ast.stmt)])
                for part in value:  # an except clause, a match case: statements of their own
                    if isinstance(part, ast.excepthandler | ast.match_case):
                        yield from _statements(part.body)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in CATCHES for n in names)


def unresolved_imports(code: str, run_in_sandbox: Callable[[str], str], sandbox: str = "local"
                       ) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of each import the sandbox cannot give the script: name None for a module that is
    not there, else a name the module lacks. `run_in_sandbox(script) -> stdout` runs gome's check script where the
    script will run; `sandbox` names it, for the cache (answers of one sandbox say nothing of another)."""
    try:
        wanted = imports_of(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # compiling is the run's to report: write_script already asked for a script that compiles
    keys = [(m, None) for m, _, _ in wanted] + [(m, n) for m, names, _ in wanted for n in names]
    missing = sorted({k for k in keys if (sandbox, _key(*k)) not in _known}, key=lambda k: _key(*k))
    if missing:
        answers = parse_answer(run_in_sandbox(CHECK_SCRIPT.format(wanted=missing, mark=MARK))) or {}
        if not answers:
            return []  # the check itself could not run: let the real run speak
        _known.update({(sandbox, k): bool(v) for k, v in answers.items()})
    found = []
    for module, names, line in wanted:
        if not _known.get((sandbox, module), True):
            found.append((line, module, None))
            continue
        found += [(line, module, n) for n in names if not _known.get((sandbox, _key(module, n)), True)]
    return found


def check_imports(code: str, run_in_sandbox: Callable[[str], str], sandbox: str = "local") -> list[str]:
    """What the script imports that the sandbox cannot give it, one line each (empty: all resolve)."""
    return [f"line {line}: no module named {module!r}" if name is None else
            f"line {line}: cannot import name {name!r} from {module!r}"
            for line, module, name in unresolved_imports(code, run_in_sandbox, sandbox)]


def _key(module: str, name: str | None) -> str:
    return module if name is None else f"{module}:{name}"
