"""The import check: every import a script depends on, asked of the sandbox once per name."""

from gome.tools.sandbox.environment import MARK, check_imports, imports_of

SCRIPT = """import os
import numpy as np
from sklearn.ensemble import RandomForestClassifier, XGBClassifier
try:
    import lightgbm as lgb
except ImportError:
    lgb = None
from . import sibling
"""


def test_imports_are_found_except_the_script_s_own_fallbacks():
    assert imports_of(SCRIPT) == [("os", (), 1), ("numpy", (), 2),
                                  ("sklearn.ensemble", ("RandomForestClassifier", "XGBClassifier"), 3)]


def test_each_call_gets_its_own_list_of_imports():
    first = imports_of(SCRIPT)
    first.append(("planted", (), 99))  # a caller that edits its answer (the analysis itself is cached)
    first[0] = ("changed", (), 1)
    assert imports_of(SCRIPT) == [("os", (), 1), ("numpy", (), 2),
                                  ("sklearn.ensemble", ("RandomForestClassifier", "XGBClassifier"), 3)]


def test_a_name_that_does_not_resolve_is_reported_and_answers_are_cached():
    asked = []

    def sandbox(code: str) -> str:  # runs gome's check script as the sandbox would
        asked.append(code)
        scope = {}
        exec(code, scope)  # noqa: S102 - the check script is gome's own
        return ""

    import contextlib
    import io

    def run(code: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sandbox(code)
        return out.getvalue()

    problems = check_imports(SCRIPT.replace("XGBClassifier", "XGBNope"), run)
    assert problems == ["line 3: cannot import name 'XGBNope' from 'sklearn.ensemble'"]
    assert len(asked) == 1 and MARK in asked[0] and "XGBNope" in asked[0]
    assert check_imports(SCRIPT.replace("XGBClassifier", "XGBNope"), run) == problems and len(asked) == 1
    assert check_imports("import no_such_module_here\n", run) == ["line 1: no module named 'no_such_module_here'"]
    assert check_imports("x = (\n", run) == []  # not Python: the run reports that, not the import check
