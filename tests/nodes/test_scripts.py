"""Telling programs apart from their layout, and whether a run's edit requests have paid so far."""

import pytest

from gome.nodes.scripts import edits_pay, same_program
from gome.tools.run.folder import RunFolder

BASE = '''"""Train a model."""
import numpy as np

def fit(x, seed=0):
    return np.random.default_rng(seed).random(len(x)) * 0.5

fit([1, 2, 3], seed=1)
'''


def test_the_same_code_laid_out_differently_is_the_same_program():
    relaid = '''"""Train a model."""
# imports first
import numpy as np


def fit(x,seed = 0):  # a comment
    return np.random.default_rng( seed ).random(len(x))*0.5

fit([1,2,3],
    seed=1)
'''
    assert same_program(BASE, relaid)
    assert same_program("try:\n    a()\nexcept E: pass\n", "try:\n    a()\nexcept E:\n    pass\n")  # a lone pass
    assert same_program("x = 'é'; y = 1  # é\r\n@d\ndef f(): pass\n", "x = 'é'\ny = 1\n@d\ndef f():\n    pass\n")


@pytest.mark.parametrize("a, b", [
    ("x = 1\n", "x = True\n"),  # equal values of different types
    ("x = 0.0\n", "x = -0.0\n"),  # equal floats that differ
    (BASE, BASE.replace("Train a model.", "Train two models.")),  # the docstring
    (BASE, BASE.replace("0.5", "0.25")),  # a constant
    (BASE, BASE.replace("seed=1", "seed=2")),  # a constant in a call
    (BASE, BASE.replace("fit([1, 2, 3], seed=1)", "fit([1, 2, 3], x=1)")),  # a renamed keyword argument
    ("y = x in {1, 2}\n", "y = x in {1, 3}\n"),  # a constant inside a frozenset
    # a line moved out of a try: the same bytecode since 3.11 (the exception table differs), another program
    ("try:\n    a()\n    b()\nexcept E:\n    pass\n", "try:\n    a()\nexcept E:\n    pass\nelse:\n    b()\n"),
    ("def f(x):\n    assert x > 0\n    return x\n", "def f(x):\n    return x\n"),  # an assert (-O drops it)
    # statements whose own text is the same but not their decorators, or not where a line of several cuts them
    ("@cache\ndef f():\n    return 1\n", "@wraps(g)\ndef f():\n    return 1\n"),
    ("@a\n@b\nclass C:\n    pass\n", "@b\n@a\nclass C:\n    pass\n"),
    ("a(); b()\nb()\n", "a()\na(); b()\n"),
    ("s = 'é'; t = 1\nu = 2\n", "s = 'é'\nt = 1; u = 3\n"),  # a cut after non-ASCII text
    ("x = 1\ry = 2\r\nz = 3\n", "x = 1\ny = 2\nz = 4\n"),  # any line end
])
def test_a_changed_program_is_not_the_same(a, b):
    assert not same_program(a, b)


def test_scripts_that_do_not_compile_are_compared_token_by_token():
    broken = "def fit(:\n    return 1\n"
    assert same_program(broken, "def   fit(:\n\n      return 1")
    assert not same_program(broken, "def fit(:\n    return 2\n")


def _plan(run, exp_id, *edits, repairs=()):
    folder = run.experiment(exp_id)
    folder.path.mkdir(parents=True, exist_ok=True)
    plan = {"edit": {"asked": "edits", "applied": edits[0]} if edits else {"asked": "script", "form": "script"}}
    folder.write("plan", {**plan, "repairs": [{"edit": {"asked": "edits", "applied": a}} for a in repairs]})


@pytest.mark.parametrize("applied, pays", [
    ((), True),
    ((False,), True),  # one failure: not yet EDIT_TRIES
    ((False, False), False),
    ((True, False, False), False),  # fewer than half applied
    ((True, True, False, False), True),  # half applied
])
def test_edits_stop_paying_after_two_failures_unless_half_applied(tmp_path, applied, pays):
    run = RunFolder(tmp_path)
    for i, ok in enumerate(applied):
        _plan(run, f"{i + 1:04d}", ok)
    _plan(run, "0099")  # asked for a whole script: not an edit request
    assert edits_pay(run) is pays


def test_edits_pay_reads_a_plan_rewritten_after_it_was_read(tmp_path):
    run = RunFolder(tmp_path)
    _plan(run, "0001", False)
    _plan(run, "0002", True)
    assert edits_pay(run)
    _plan(run, "0002", True, repairs=[False])  # the step's repair asked for edits too, and they failed
    assert not edits_pay(run)
