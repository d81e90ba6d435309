"""Every prompt gome sends, in one place.

Every call of a run sends the same system prompt and starts its request with the same block, byte for byte: the
task brief (description, metric, data schema and installed packages), the script rules, and the task's challenges
(`preamble`). The node's own request follows it. A prompt cache then serves that block after the first call:
llama.cpp's server reuses the longest prefix it shares with the previous prompt, whichever trace or node sent it,
and API providers bill a cached prefix at a discount (Anthropic's is marked, see tools/llm/structured.py). So
nothing that changes during a run (the trace, the time left, the step) may sit in the system prompt or the
preamble.

Prompts are filled in by the node that sends them; they hold text and formatting only.
"""

from __future__ import annotations

import time

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from gome.nodes.runtime import config_of, folder_of, task_of
from gome.nodes.template import format_rule, skeleton
from gome.state.records import GRADIENT_KINDS
from gome.tools.files import file_version
from gome.tools.llm.structured import CACHE_PREFIX

DESCRIPTION_CHARS = 6000
CODE_CHARS = 16000
LOG_CHARS = 3000

SYSTEM = ("You are a Kaggle grandmaster and a careful machine-learning engineer. You write complete, correct, "
          "efficient Python scripts and you judge experiments by their validation evidence.")


def clip(text: str, limit: int) -> str:
    """Keep the head and the tail of long text: errors sit at the end of logs, imports at the top of code."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def task_brief(state: dict) -> str:
    """Description, metric and the data schema written at prepare time."""
    task, folder = task_of(state), folder_of(state)
    return (f"# Task: {task.name}\n{clip(folder.description(), DESCRIPTION_CHARS)}\n\n"
            f"# Metric\n{task.metric} ({task.direction}). The harness scores your held-out predictions with it.\n\n"
            f"# Data\n{folder.schema()}")


def script_rules(state: dict) -> str:
    """What every script must do. Constant for the run (the time a script has is in `time_note`, at the end)."""
    task, cfg = task_of(state), config_of(state)
    cols = ", ".join([task.id_column, *task.submission_columns])
    return f"""# Rules for the script
- Start the script with one comment line `# Approach: <model and key features in a few words>`.
- Read data only from the folder in the environment variable GOME_DATA_DIR:
  `DATA_DIR = os.environ["GOME_DATA_DIR"]`. It is read-only. Write every output into the current folder.
- Validate honestly: hold out rows of {task.train_file} (K-fold out-of-fold predictions, or one fixed split with a
  fixed random_state) and write `val_predictions.csv` with columns {cols}: one row per held-out row of
  {task.train_file}, predicted by a model that never trained on that row. The harness scores this file.
- Then train on all of {task.train_file}, predict every row of {task.test_file}, and write `{task.submission_file}`
  with exactly the columns of the sample submission ({cols}), one row per test id.
- {format_rule(task)}
- Print the validation score in a line `validation score: <number>`.
- When the environment variable GOME_DEBUG is "1" this is a quick first run: use at most {cfg.repair.debug_rows}
  rows of {task.train_file} and few iterations, and still write both files.
- It must finish within the time limit given at the end, on {cfg.threads} CPU threads (n_jobs={cfg.threads}); no GPU.
- Use only installed packages (see Data); LightGBM, XGBoost and CatBoost take numeric columns only (encode text
  and categories first, as the template does). Take the random seed from the environment,
  `SEED = int(os.environ.get("GOME_SEED", "{cfg.seed}"))`, for every split and model, so a rerun repeats.

# How the held-out predictions are usually written (adapt the model and features)
```python
{skeleton(task)}
```"""


def challenges_note(state: dict) -> str:
    found = state.get("challenges") or []
    lines = "\n".join(f"- {c['name']} ({c['component']}): {c['detail']}" for c in found)
    return f"# Challenges of this task\n{lines or '- none listed'}"


_preambles: dict[tuple, tuple[tuple, str]] = {}  # the same block for every call of a run: built once


def preamble(state: dict, *, challenges: bool = True) -> str:
    """The block every request of the run starts with (see the module's docstring). `challenges=False`: the
    request that lists them, which shares all of the block before them. Kept per state value of task, config and
    challenges (LangGraph hands every node the same value of a channel that did not change, and never changes it
    in place: comparing them as JSON cost every call ~0.1 ms), and per version of the files it quotes."""
    folder = folder_of(state)
    values = (state.get("task"), state.get("config"), state.get("challenges") if challenges else None)
    key = (*map(id, values), str(folder.root), challenges,
           file_version(folder.input / "description.md"), file_version(folder.root / "schema.md"))
    hit = _preambles.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], values, strict=True)):
        return hit[1]
    head = f"{task_brief(state)}\n\n{script_rules(state)}\n\n"
    text = head + (f"{challenges_note(state)}\n\n" if challenges else "")
    if len(_preambles) >= 64:
        _preambles.clear()
    _preambles[key] = (values, text)  # the values kept: their ids are not reused while they are cached
    return text


def ask(state: dict, request: str, *, challenges: bool = True) -> list[BaseMessage]:
    """The messages of one call: the run's system prompt, then the preamble and this node's `request`. Which trace
    asks is said after the preamble, so that every trace's calls share it."""
    shared = preamble(state, challenges=challenges)
    traces = state.get("config", {}).get("traces", 1)
    trace = (f"(This is trace {state['trace']} of {traces} parallel search traces.)\n\n"
             if traces > 1 and "trace" in state else "")
    return [SystemMessage(SYSTEM),
            HumanMessage(shared + trace + request.strip("\n"), additional_kwargs={CACHE_PREFIX: len(shared)})]


def time_note(state: dict) -> str:
    """The time this script may take: the script time-out, or what is left of the run's clock."""
    budget = min(config_of(state).script_timeout_s, max(state.get("deadline", time.time() + 3600) - time.time(), 60))
    return f"# Time limit\nThe script must finish well within {int(budget)} seconds."


WHOLE_SCRIPT = "Reply with the whole script in one ```python block."


def implements(state: dict) -> str:
    """The change the pending script implements, in words."""
    pending, gradient = state.get("pending") or {}, state.get("gradient") or {}
    if pending.get("kind") in GRADIENT_KINDS and gradient.get("hypothesis"):
        return gradient["hypothesis"]["change"]
    return {"draft": "the first solution of this trace: a simple, solid baseline",
            "debug": "a fix of a failing script", "improve": "one atomic improvement of a working solution"
            }.get(pending.get("kind"), pending.get("approach") or "a new solution")


# -- draft -------------------------------------------------------------------------------------------------------
DRAFT = """{siblings}
Write the first solution: a simple, solid baseline that runs without errors and validates honestly. Prefer a
well-understood model with sensible preprocessing over anything clever. This template already follows every
rule; start from it, change the model or the features if you have a better idea, and keep how it reads the data
and writes val_predictions.csv and the submission:
```python
{template}```

{time}"""


# -- diagnose ----------------------------------------------------------------------------------------------------
DIAGNOSE = """# The change under test
{hypothesis}

# The script that just ran
```python
{code}
```

# Diff against the best script so far
{diff}

# What happened
status: {status} ({detail}); runtime {runtime:.1f} s; {attempts}
harness validation score: {score}
validation problem: {val_error}
submission check: {submission}
best score so far: {best}

# stdout (tail)
{stdout}

# stderr (tail)
{stderr}

Diagnose this run. Say what happened (bug, timeout, oom, ran), list the problems you see with evidence from the
code or logs and the component each lives in, check that the validation matches how the metric scores the test
set and that no held-out label leaks into training or features, say whether this run should replace the best
(accept only a correct, leak-free run that beats it), and whether the change under test was confirmed (it
helped), refuted (it ran and did not help) or untested (its implementation failed)."""


# -- compute-gradient --------------------------------------------------------------------------------------------
COMPUTE_GRADIENT = """# Current base script (the best so far, or the last attempt while none works)
```python
{code}
```

# Diagnosis of the last run (the change it tested: {hypothesis}; verdict: {verdict})
{diagnosis}

# What worked in this run (every trace, strongest first): build on it
{memory}

# Refuted: these changes ran and did not help. Do not propose them again
{refuted}

# Untested: these failed in their implementation, not as ideas; a simpler implementation may retry one
{untested}

# Recent steps of this trace (oldest first)
{feedback}
{dropped}
Propose 2 to 4 hypotheses for the next step. Each is ONE focused, testable change to the base script that
addresses a challenge of the task or a problem the diagnosis found, with the component it touches, a step size
(minimal edit, moderate change, or rewrite) and scores from 1 to 5 for impact, confidence, novelty and cost.
Change what the model learns (features, model, training, validation), not logging or error handling. {fix_first}"""

DROPPED = """
# Dropped: these proposals repeat refuted changes or change no prediction; propose different ones
{dropped}
"""


# -- challenges (prepare) -----------------------------------------------------------------------------------------
CHALLENGES = """List the 3 to 6 main challenges of this task that a solution must handle, read from the data schema
and the description: for example class imbalance, high-cardinality categories, text columns, a skewed target,
missing values, small data, many features, an ordinal target, a metric that needs calibrated probabilities. For
each give a short name, the evidence in the data, and the component it lives in."""


# -- apply-momentum ----------------------------------------------------------------------------------------------
STEP_MEANING = {"minimal": "change as few lines as possible", "moderate": "a focused change of one component",
                "rewrite": "restructure the script freely, keeping what works"}

APPLY_MOMENTUM = """{siblings}
UPDATE PLAN (instructions for you, not code)
Change to make now: {change}
Component: {component}. Step size: {step_size} ({step_meaning}).
Why: {rationale}

Momentum, changes that paid off in this run (keep their effect and build on them):
{momentum}

Avoid, recent changes that did not help:
{avoid}

BASE SCRIPT ({base_note}), to apply the change to:
{base}

{time}

Apply the change at that step size to the base script, keeping everything else that works. The plan above stays
out of the code."""

BLEND = """# Late stage: blend the best candidates of this run
Candidates (best first): {candidates}
Their held-out and test predictions are read-only in GOME_CANDIDATES_DIR/<id>/val_predictions.csv and
{submission_file}. This script blends them and already follows every rule; keep it, or improve the blend (rank
averaging, weights) without fitting anything on the held-out labels:
```python
{template}
```

{time}"""


ENSEMBLE = """{siblings}
# Base script (the best so far)
{base}

# Late stage: average the base script's model with a different kind of model
Keep the base script's features and validation, and make its model a voting ensemble of what it uses now and
extra trees (soft voting for classes, so that probabilities are averaged). This is how the baseline looks with
that ensemble; apply the same to the base script:
```python
{template}
```

{time}"""


# -- repair --------------------------------------------------------------------------------------------------------
REPAIR = """# The change this script implements
{hypothesis}

# The script (it failed; this is repair {attempt} of at most {rounds})
```python
{code}
```

# What went wrong ({phase})
{error}

# stderr (tail)
{stderr}

# Earlier attempts of this step failed with
{earlier}

{time}

Fix the failure so the script runs and writes a valid val_predictions.csv and {submission_file}. Keep the change it
implements and change only what the fix needs. Import only the installed packages listed under Data."""


# -- edits (a small step's reply: see nodes/scripts.write_step) ----------------------------------------------------
EDITS = """Reply with edit blocks only, not the whole script: the script above stays as it is except where a block
changes it. For example, this block adds an import after a line of that script:
<<<<<<< SEARCH
{line}
=======
{line}
from sklearn.preprocessing import StandardScaler
>>>>>>> REPLACE
SEARCH copies lines of the script above exactly (enough of them to be unique); REPLACE holds what replaces them.
Write one block per place you change, in the order they appear, and nothing else."""


# -- expand (tree search) ----------------------------------------------------------------------------------------
EXPAND_DRAFT = """{siblings}
Write a new solution from scratch: a sound approach that differs from the drafts this search already has:
{others}

This template reads the data and writes val_predictions.csv and the submission as the rules ask; keep those parts
as they are and put your own model and features in place of its:
```python
{template}```

{time}"""

EXPAND_DEBUG = """# A script that failed
```python
{code}
```

# What happened
{detail}

# stderr (tail)
{stderr}

{time}

Fix the failure. Keep the approach; change only what the fix needs."""

EXPAND_IMPROVE = """# A working solution (validation {metric}: {score})
```python
{code}
```

{time}

Make one atomic improvement that should raise the validation score (a single, focused change: a feature, a model
setting, a preprocessing step)."""
