"""Every prompt gome sends, in one place: the system prompt, the task brief and script rules every script prompt
carries, and each node's own request.

Prompts are filled in by the node that sends them; they hold text and formatting only.
"""

from __future__ import annotations

import time

from langchain_core.messages import SystemMessage

from gome.nodes.runtime import config_of, folder_of, task_of
from gome.nodes.template import format_rule, skeleton

DESCRIPTION_CHARS = 6000
CODE_CHARS = 16000
LOG_CHARS = 3000

SYSTEM = ("You are a Kaggle grandmaster and a careful machine-learning engineer. You write complete, correct, "
          "efficient Python scripts and you judge experiments by their validation evidence.")


def system(state: dict) -> SystemMessage:
    """The system prompt, naming the trace (siblings search in parallel and should not duplicate each other)."""
    return SystemMessage(f"{SYSTEM}\nThis conversation belongs to trace {state['trace']} of "
                         f"{state['config'].get('traces', 1)} parallel search traces.")


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
    task, cfg = task_of(state), config_of(state)
    budget = min(cfg.script_timeout_s, max(state.get("deadline", time.time() + 3600) - time.time(), 60))
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
- It must finish well within {int(budget)} seconds on {cfg.threads} CPU threads (n_jobs={cfg.threads}); no GPU.
- Use only installed packages (see Data). Take the random seed from the environment,
  `SEED = int(os.environ.get("GOME_SEED", "{cfg.seed}"))`, for every split and model, so a rerun repeats.
- Reply with the whole script in one ```python block.

# How the held-out predictions are usually written (adapt the model and features)
```python
{skeleton(task)}
```"""


# -- draft -------------------------------------------------------------------------------------------------------
DRAFT = """{brief}

{rules}
{siblings}
Write the first solution: a simple, solid baseline that runs without errors and validates honestly. Prefer a
well-understood model with sensible preprocessing over anything clever. This template already follows every
rule; start from it, change the model or the features if you have a better idea, and keep how it reads the data
and writes val_predictions.csv and the submission:
```python
{template}```"""


# -- diagnose ----------------------------------------------------------------------------------------------------
DIAGNOSE = """# Task
{task_name}: metric {metric} ({direction}). Scripts must write val_predictions.csv (held-out rows of train) that the
harness scores with the metric, and {submission} for the test set.

# The script that just ran
```python
{code}
```

# Diff against the best script so far
{diff}

# What happened
status: {status} ({detail}); runtime {runtime:.1f} s
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
set and that no held-out label leaks into training or features, and say whether this run should replace the best
(accept only a correct, leak-free run that beats it)."""


# -- compute-gradient --------------------------------------------------------------------------------------------
COMPUTE_GRADIENT = """# Task
{task_name}: metric {metric} ({direction}).

# Current base script (the best so far, or the last attempt while none works)
```python
{code}
```

# Diagnosis of the last run
{diagnosis}

# Recent steps of this trace (oldest first)
{feedback}

Propose 2 to 4 hypotheses for the next step. Each is ONE focused, testable change to the base script, with the
component it touches, a step size (minimal edit, moderate change, or rewrite) and scores from 1 to 5 for impact,
confidence, novelty and cost. If the last run failed, the first hypothesis must fix that failure with a minimal
edit. Do not repeat a change that was already rejected."""


# -- apply-momentum ----------------------------------------------------------------------------------------------
STEP_MEANING = {"minimal": "change as few lines as possible", "moderate": "a focused change of one component",
                "rewrite": "restructure the script freely, keeping what works"}

APPLY_MOMENTUM = """{brief}

{rules}
{siblings}
# Base script ({base_note})
{base}

# Update plan
Change to make now: {change}
Component: {component}. Step size: {step_size} ({step_meaning}).
Why: {rationale}

Momentum, changes that paid off in this run (keep their effect and build on them):
{momentum}

Avoid, recent changes that did not help:
{avoid}

Write the new complete script: apply the change at that step size and keep everything else that works."""


# -- expand (tree search) ----------------------------------------------------------------------------------------
EXPAND_DRAFT = """{brief}

{rules}
{siblings}
Write a new solution from scratch: a sound approach that differs from the drafts this search already has:
{others}"""

EXPAND_DEBUG = """{brief}

{rules}

# A script that failed
```python
{code}
```

# What happened
{detail}

# stderr (tail)
{stderr}

Fix the failure and return the whole corrected script. Keep the approach; change only what the fix needs."""

EXPAND_IMPROVE = """{brief}

{rules}

# A working solution (validation {metric}: {score})
```python
{code}
```

Make one atomic improvement that should raise the validation score (a single, focused change: a feature, a model
setting, a preprocessing step) and return the whole new script."""
