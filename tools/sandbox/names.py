"""Undefined names in a script and names imported from the wrong module, fixed before the script runs.

The 1.5B model's commonest crash was a NameError for a name it used without importing (`train_test_split`,
`GradientBoostingRegressor`, `pd`): a bug no model is needed to fix. pyflakes finds the names a script uses and
never binds; the sandbox's own interpreter is asked where each one lives (by a small script of gome's: a name an
LLM wrote is never imported in gome's process); the import is added at the top of the script. A name found
nowhere is left to the run (pyflakes also reports names that never run: annotations, uncalled functions).
Its second commonest failure was a name imported from a module that lacks it (`from sklearn.ensemble import
XGBClassifier`), and three repairs at ~80 s each did not fix it: the same finder says where the name lives, and
the import is moved there. Answers are cached per process, like the import check's.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from pyflakes import checker, messages

from gome.tools.sandbox.environment import MARK, parse_answer, unresolved_imports
from gome.tools.syntax import parse

# Names bound by convention, and the import that binds them (found only where that module is).
COMMON = {"np": "import numpy as np", "pd": "import pandas as pd", "plt": "import matplotlib.pyplot as plt",
          "sns": "import seaborn as sns", "lgb": "import lightgbm as lgb", "xgb": "import xgboost as xgb",
          "cb": "import catboost as cb", "sp": "import scipy as sp", "nn": "import torch.nn as nn",
          "stats": "from scipy import stats", "sparse": "from scipy import sparse",
          "defaultdict": "from collections import defaultdict", "partial": "from functools import partial",
          "reduce": "from functools import reduce", "rankdata": "from scipy.stats import rankdata"}
# Modules a script may use unimported by its own name.
TOP = ("os", "sys", "json", "math", "random", "re", "time", "warnings", "gc", "pickle", "itertools", "numpy",
       "pandas", "scipy", "sklearn", "lightgbm", "xgboost", "catboost", "torch")
# Modules an API name (one with a capital or an underscore: `train_test_split`, `GradientBoostingRegressor`) is
# looked for in, in this order. A plain word (`train`, `test`, `log`) is never taken from a module: it is far
# likelier a variable the script forgot than `xgboost.train` or `numpy.test`.
MODULES = ("collections", "sklearn.model_selection", "sklearn.metrics", "sklearn.preprocessing", "sklearn.ensemble",
           "sklearn.linear_model", "sklearn.impute", "sklearn.compose", "sklearn.pipeline", "sklearn.tree",
           "sklearn.neighbors", "sklearn.svm", "sklearn.naive_bayes", "sklearn.decomposition",
           "sklearn.feature_extraction.text", "sklearn.feature_selection", "sklearn.calibration",
           "sklearn.utils.class_weight", "sklearn.base", "scipy.stats", "pathlib", "lightgbm",
           "xgboost", "catboost")

FIND_SCRIPT = """import importlib, importlib.util, json, re
common, top, modules, answers = {common!r}, {top!r}, {modules!r}, {{}}
def found(module):
    try:
        return importlib.util.find_spec(module) is not None
    except Exception:
        return False
for name in {names!r}:
    answers[name] = None
    if name in common:
        module = common[name].split()[1]
        answers[name] = common[name] if found(module) else None
    elif name in top:
        answers[name] = "import " + name if found(name) else None
    elif re.search("[A-Z_]", name) and not name.startswith("_"):
        for module in modules:
            try:
                m = importlib.import_module(module) if found(module) else None
                public = name in m.__all__ if hasattr(m, "__all__") else str(
                    getattr(getattr(m, name, None), "__module__", "")).startswith(module)
                if m is not None and hasattr(m, name) and public:  # not what the module imported for itself
                    answers[name] = "from " + module + " import " + name
                    break
            except Exception:
                pass
print({mark!r} + json.dumps(answers))
"""

LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_known: dict[tuple[str, str], str | None] = {}  # (sandbox, name) -> the import that binds it there, or None


class _Checker(checker.Checker):
    """pyflakes' checker without its ~160 builtins bound into the module scope before a script is read (a third
    of a check of a short script, at every step): a builtin is then reported undefined, and left out by the
    caller. Only UndefinedName is read here, and it comes out the same."""

    def addBinding(self, node, value):
        if node is None and type(value) is checker.Builtin:
            return
        super().addBinding(node, value)


def undefined_names(code: str) -> list[tuple[str, int]]:
    """(name, first line) of every name the script uses and never binds; empty for a script that does not parse
    (compiling is the run's to report)."""
    try:
        found = _Checker(parse(code), "main.py")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    first: dict[str, int] = {}
    for m in found.messages:
        if isinstance(m, messages.UndefinedName) and m.message_args[0] not in found.builtIns:
            first.setdefault(m.message_args[0], m.lineno)
    return sorted(first.items(), key=lambda f: f[1])


def homes(names: list[str], run_in_sandbox: Callable[[str], str], sandbox: str) -> dict[str, str | None]:
    """The import that binds each name in the sandbox (None: found nowhere, or the finder could not run)."""
    unknown = sorted({n for n in names if (sandbox, n) not in _known})
    if unknown:
        answers = parse_answer(run_in_sandbox(FIND_SCRIPT.format(
            common=COMMON, top=TOP, modules=MODULES, names=unknown, mark=MARK)))
        if answers is None:
            return {n: _known.get((sandbox, n)) for n in names}  # the finder could not run: let the run speak
        # Only answers to what was asked, and only imports of the shapes asked for: the finder's output is read
        # from a sandbox run, and its answers are pasted into every later script of this process.
        _known.update({(sandbox, n): answers.get(n) if _valid(n, answers.get(n)) else None for n in unknown})
    return {n: _known.get((sandbox, n)) for n in names}


def add_imports(code: str, run_in_sandbox: Callable[[str], str], sandbox: str = "local") -> tuple[str, list[str]]:
    """(code with the imports it lacks added, the imports added). A name found nowhere is left as it is: pyflakes
    also reports names that never run (annotations, an unused function, `globals()[...]`), so only the run can
    say it fails; its NameError then goes to repair. `run_in_sandbox(script) -> stdout` runs gome's finder where
    the script will run; `sandbox` names it."""
    names = undefined_names(code)
    found = homes([n for n, _ in names], run_in_sandbox, sandbox) if names else {}
    added = list(dict.fromkeys(found[n] for n, _ in names if found.get(n)))
    if not added:
        return code, []
    fixed = insert_imports(code, added)
    return (fixed, added) if fixed != code else (code, [])


def move_imports(code: str, run_in_sandbox: Callable[[str], str], sandbox: str = "local") -> tuple[str, list[str]]:
    """(code with each name that is imported from a module lacking it imported from where it lives, the imports
    moved). A statement that shares its line with other code, or a name found nowhere, is left to the import
    check and to repair."""
    wrong = [(line, module, name) for line, module, name in unresolved_imports(code, run_in_sandbox, sandbox)
             if name]
    if not wrong:
        return code, []
    found = homes([n for _, _, n in wrong], run_in_sandbox, sandbox)
    lines, moved = LINES.findall(code), []
    for stmt in sorted((n for n in ast.walk(parse(code)) if isinstance(n, ast.ImportFrom)),
                       key=lambda n: n.lineno, reverse=True):  # bottom up: line numbers above stay valid
        movable = {name: found[name] for line, module, name in wrong if line == stmt.lineno
                   and module == stmt.module and (found.get(name) or "").startswith("from ")}
        if not movable or not _whole_lines(lines, stmt):
            continue
        indent = lines[stmt.lineno - 1][:stmt.col_offset]
        kept = [a for a in stmt.names if a.name not in movable]
        new = [f"{indent}from {stmt.module} import {', '.join(_alias(a) for a in kept)}\n"] if kept else []
        for a in stmt.names:
            if a.name in movable:
                new.append(f"{indent}{movable[a.name]}{' as ' + a.asname if a.asname else ''}  # moved by gome: "
                           f"{stmt.module} has no {a.name}\n")
                moved.append(f"{a.name}: {stmt.module} -> {movable[a.name].split()[1]}")
        lines[stmt.lineno - 1:stmt.end_lineno] = new
    fixed = "".join(lines)
    try:
        compile(fixed, "main.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code, []
    return (fixed, moved) if moved else (code, [])


def _alias(a: ast.alias) -> str:
    return f"{a.name} as {a.asname}" if a.asname else a.name


def _whole_lines(lines: list[str], stmt: ast.stmt) -> bool:
    """Does the statement have its lines to itself (nothing before it, at most a comment after it)?"""
    if stmt.end_lineno is None or stmt.end_col_offset is None or stmt.end_lineno > len(lines):
        return False
    before = lines[stmt.lineno - 1][:stmt.col_offset]
    after = lines[stmt.end_lineno - 1].encode()[stmt.end_col_offset:].decode(errors="replace").strip()
    return not before.strip() and (not after or after.startswith("#"))


def _valid(name: str, answer) -> bool:
    return isinstance(answer, str) and answer in {COMMON.get(name), f"import {name}" if name in TOP else None,
                                                  *(f"from {m} import {name}" for m in MODULES)}


def insert_imports(code: str, imports: list[str]) -> str:
    """`imports` placed before the script's first statement that is not its docstring or a __future__ import, so
    that the `# Approach:` line and other leading comments stay where they are; `code` unchanged when that would
    not compile."""
    body = parse(code).body
    while body and _docstring_or_future(body[0]):
        body = body[1:]
    first = body[0] if body else None
    lines = LINES.findall(code)  # lines as ast counts them (str.splitlines also splits on \x0c, \u2028 ...)
    at = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))]) - 1 if first else len(lines)
    if at and not lines[at - 1].endswith(("\n", "\r")):
        lines[at - 1] += "\n"
    fixed = "".join([*lines[:at], *(f"{i}  # added by gome: the script used it unimported\n" for i in imports),
                     *lines[at:]])
    try:
        compile(fixed, "main.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    return fixed


def _docstring_or_future(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__") or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str))
