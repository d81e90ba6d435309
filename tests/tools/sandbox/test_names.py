"""Undefined names: the import that defines one is added without a model, a name found nowhere is reported."""

import ast
import contextlib
import io
import json

import pytest
from pyflakes import checker, messages

from gome.tools.sandbox.environment import MARK
from gome.tools.sandbox.names import add_imports, insert_imports, move_imports, undefined_names

SCRIPT = '''# Approach: gradient boosting
"""A docstring."""
from __future__ import annotations
import os

X_tr, X_va = train_test_split(range(10), random_state=0)
model = GradientBoostingRegressor()
frame = pd.DataFrame({"a": [1]})
mask = train > 0
print(os.getcwd(), undefined_thing)
'''


def run(code: str) -> str:
    """Runs gome's finder script as the sandbox would (it is gome's own code, not a script's)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # noqa: S102
    return out.getvalue()


def test_undefined_names_are_listed_with_their_first_line():
    assert undefined_names(SCRIPT) == [("train_test_split", 6), ("GradientBoostingRegressor", 7), ("pd", 8),
                                       ("train", 9), ("undefined_thing", 10)]
    assert undefined_names("x = (\n") == []  # not Python: the run reports that


def test_the_import_is_added_for_api_names_and_conventional_aliases_but_never_for_a_plain_word():
    asked = []
    code, added = add_imports(SCRIPT, lambda c: asked.append(c) or run(c), sandbox="test-names")
    assert added == ["from sklearn.model_selection import train_test_split",
                     "from sklearn.ensemble import GradientBoostingRegressor", "import pandas as pd"]
    # `train` is a variable the script forgot, not xgboost.train: it is left to the run (and its NameError)
    assert code.splitlines()[:4] == SCRIPT.splitlines()[:3] + ["from sklearn.model_selection import train_test_split"
                                                               "  # added by gome: the script used it unimported"]
    assert undefined_names(code) == [("train", 12), ("undefined_thing", 13)]
    assert len(asked) == 1
    assert add_imports(SCRIPT, lambda c: asked.append(c) or run(c), sandbox="test-names")[1] == added
    assert len(asked) == 1  # answers are cached per sandbox


def test_only_a_library_s_public_names_are_taken():
    code, added = add_imports("c = Counter('abc')\np = Parallel\n", run, sandbox="test-names-public")
    assert added == ["from collections import Counter"]  # not sklearn's own import of it; joblib's Parallel: no


def test_a_finder_answer_that_was_not_asked_for_or_not_an_import_is_ignored():
    def lying(code: str) -> str:  # what a sandbox run could print, if a script had tampered with the sandbox
        return MARK + json.dumps({"pd": "import os; os.system('x')", "np": "import numpy as np",
                                  "other": "import evil"}) + "\n"

    code, added = add_imports("x = pd.DataFrame()\n", lying, sandbox="test-names-lying")
    assert (code, added) == ("x = pd.DataFrame()\n", [])
    assert add_imports("y = other\n", lying, sandbox="test-names-lying")[1] == []


def test_a_clean_script_asks_nothing_and_a_finder_that_cannot_run_changes_nothing():
    clean = "import os\nprint(os.sep)\n"
    assert add_imports(clean, lambda c: 1 / 0, sandbox="test-names-2") == (clean, [])
    assert add_imports("print(np.pi)\n", lambda c: "", sandbox="test-names-3") == ("print(np.pi)\n", [])


def test_imports_go_above_a_decorated_first_statement_and_at_the_end_of_a_script_of_comments():
    assert insert_imports("@dec\ndef f():\n    pass\n", ["import x"]).startswith("import x  # added")
    assert insert_imports("# only a comment", ["import x"]) == (
        "# only a comment\nimport x  # added by gome: the script used it unimported\n")


def test_lines_are_counted_as_python_counts_them_and_a_script_that_would_not_compile_is_left_alone():
    form_feed = "#\x0c comment\nx = pd\n"  # str.splitlines would see three lines here
    assert insert_imports(form_feed, ["import pandas as pd"]) == (
        "#\x0c comment\nimport pandas as pd  # added by gome: the script used it unimported\nx = pd\n")
    separator = '"""doc\u2028more"""\nx = pd\n'
    assert insert_imports(separator, ["import pandas as pd"]).endswith("unimported\nx = pd\n")
    same_line = "from __future__ import annotations; x = pd\n"  # nowhere to put an import: left as it is
    assert insert_imports(same_line, ["import pandas as pd"]) == same_line


MISPLACED = '''# Approach: xgboost next to histogram boosting
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, XGBClassifier as XGB  # both boosters
if True:
    from sklearn.linear_model import LGBMClassifier
from sklearn.ensemble import NoSuchModel; x = 1
model = XGB(n_estimators=10), HistGradientBoostingClassifier(), LGBMClassifier()
'''


def test_a_name_imported_from_a_module_that_lacks_it_is_imported_from_where_it_lives():
    code, moved = move_imports(MISPLACED, run, sandbox="test-moves")
    assert moved == ["LGBMClassifier: sklearn.linear_model -> lightgbm",
                     "XGBClassifier: sklearn.ensemble -> xgboost"]
    assert code.splitlines()[2:6] == [
        "from sklearn.ensemble import HistGradientBoostingClassifier",
        "from xgboost import XGBClassifier as XGB  # moved by gome: sklearn.ensemble has no XGBClassifier",
        "if True:",
        "    from lightgbm import LGBMClassifier  # moved by gome: sklearn.linear_model has no LGBMClassifier"]
    # A statement sharing its line with other code, and a name found nowhere, are left to the check and repair.
    assert "from sklearn.ensemble import NoSuchModel; x = 1" in code
    ns: dict = {}
    exec(code.replace("from sklearn.ensemble import NoSuchModel; x = 1\n", ""), ns)  # noqa: S102 - it runs now
    assert type(ns["model"][0]).__name__ == "XGBClassifier"
    assert move_imports("import numpy as np\n", run, sandbox="test-moves") == ("import numpy as np\n", [])


@pytest.mark.parametrize("code", [
    "import numpy as np\nx = np.zeros(len(range(3)))\nprint(pd.DataFrame(x), sorted([y]))\n",
    "x = later + 1\nlater = 2\ndef f():\n    return max(after, min(1, 2))\nafter = 3\n",
    "from os import *\nprint(path, anything)\n",
    "try:\n    guarded\nexcept NameError:\n    pass\nclass A:\n    __qualname__\n    b = [c for c in undefined_here]\n",
    "def f():\n    n = len\n    len = 3\n    return n, __file__, __name__, unknown_thing\n",
])
def test_undefined_names_are_pyflakes_own(code):
    """gome's checker skips binding the builtins (a third of a check's time) and drops them afterwards: what it
    reports is what pyflakes reports."""
    firsts: dict[str, int] = {}
    for m in checker.Checker(ast.parse(code), "main.py").messages:
        if isinstance(m, messages.UndefinedName):
            firsts.setdefault(m.message_args[0], m.lineno)
    assert undefined_names(code) == sorted(firsts.items(), key=lambda f: f[1])
