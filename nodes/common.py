"""What every node needs: its collaborators from the runtime context, the task brief, and the script rules."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from langchain_core.messages import SystemMessage
from langgraph.runtime import Runtime

from gome.state.context import GomeContext
from gome.state.records import ModelSpec, RunConfig, Task
from gome.tools.files import read_text
from gome.tools.llm.models import make_chat_model
from gome.tools.llm.structured import LLMCaller
from gome.tools.llm.usage import Ledger
from gome.tools.run.folder import experiment_dir, input_dir
from gome.tools.run.folder import read_code as read_code_file
from gome.tools.sandbox.executor import Executor
from gome.tools.sandbox.local import LocalExecutor
from gome.tools.task.metrics import get_metric

DESCRIPTION_CHARS = 6000
CODE_CHARS = 16000
LOG_CHARS = 3000

SYSTEM = ("You are a Kaggle grandmaster and a careful machine-learning engineer. You write complete, correct, "
          "efficient Python scripts and you judge experiments by their validation evidence.")


def system(state: dict) -> SystemMessage:
    """The system prompt, naming the trace (siblings search in parallel and should not duplicate each other)."""
    return SystemMessage(f"{SYSTEM}\nThis conversation belongs to trace {state['trace']} of "
                         f"{state['config'].get('traces', 1)} parallel search traces.")


def context_of(runtime: Runtime[GomeContext] | None) -> GomeContext:
    return (runtime.context if runtime is not None else None) or GomeContext()


def located(node):
    """A node that works in the run folder where it is now: a run folder moved (or copied) after its checkpoints
    were written carries its old path in state; the runner passes the real one in the context."""

    @functools.wraps(node)
    def run(state: dict, runtime: Runtime[GomeContext] | None = None):
        actual = context_of(runtime).run_dir
        if actual and state.get("run_dir") and state["run_dir"] != actual:
            state = {**state, "run_dir": actual}
        return node(state, runtime)

    return run


_built: dict[tuple, object] = {}  # models and executors built from settings, reused across nodes and steps


def llm(state: dict, runtime: Runtime[GomeContext] | None, node: str) -> LLMCaller:
    """The node's LLM access: the context's chat model, else one built from the context's or the run's spec."""
    ctx = context_of(runtime)
    model = ctx.chat_model
    if model is None:
        spec = ModelSpec(**state["config"].get("model", {}))
        spec = spec.model_copy(update={k: v for k, v in (("model", ctx.model), ("base_url", ctx.base_url)) if v})
        key = ("model", spec.model_dump_json())
        model = _built.get(key) or _built.setdefault(key, make_chat_model(spec))
    return LLMCaller(model, node, ledger=Ledger.of(state["run_dir"]), trace=state.get("trace"))


def executor(runtime: Runtime[GomeContext] | None) -> Executor:
    ctx = context_of(runtime)
    if ctx.executor is not None:
        return ctx.executor
    key = ("executor", ctx.sandbox, ctx.allow_network)
    if key not in _built:
        if ctx.sandbox == "e2b":
            from gome.tools.sandbox.e2b import E2BExecutor

            _built[key] = E2BExecutor(allow_network=ctx.allow_network)
        else:
            _built[key] = LocalExecutor(allow_network=ctx.allow_network)
    return _built[key]


def config_of(state: dict) -> RunConfig:
    return RunConfig.model_validate(state["config"])


def task_of(state: dict) -> Task:
    """The task, its data read from the run's own copy (the task folder may have moved since)."""
    return Task.model_validate({**state["task"], "data_dir": str(input_dir(state["run_dir"]))})


def clip(text: str, limit: int) -> str:
    """Keep the head and the tail of long text: errors sit at the end of logs, imports at the top of code."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def read_code(run_dir: str, exp_id: str | None) -> str | None:
    return read_code_file(experiment_dir(run_dir, exp_id) / "main.py") if exp_id else None


def task_brief(state: dict) -> str:
    """Description, metric and the data schema written at prepare time."""
    task, run_dir = task_of(state), Path(state["run_dir"])
    schema = read_text(run_dir / "schema.md", 1 << 20)
    description = read_text(input_dir(run_dir) / "description.md", 4 << 20)
    return (f"# Task: {task.name}\n{clip(description, DESCRIPTION_CHARS)}\n\n"
            f"# Metric\n{task.metric} ({task.direction}). The harness scores your held-out predictions with it.\n\n"
            f"# Data\n{schema}")


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
- {_format_rule(task)}
- Print the validation score in a line `validation score: <number>`.
- It must finish well within {int(budget)} seconds on {cfg.threads} CPU threads (n_jobs={cfg.threads}); no GPU.
- Use only installed packages (see Data). Take the random seed from the environment,
  `SEED = int(os.environ.get("GOME_SEED", "{cfg.seed}"))`, for every split and model, so a rerun repeats.
- Reply with the whole script in one ```python block.

# How the held-out predictions are usually written (adapt the model and features)
```python
{_skeleton(task)}
```"""


def _skeleton(task: Task) -> str:
    """A few lines showing the val_predictions.csv contract in this task's own columns: small models get the
    ids right from an example far more often than from a rule."""
    kind, cols, idc = get_metric(task.metric).kind, task.submission_columns, task.id_column
    if kind == "probability" and len(cols) > 1:
        predict = "model.predict_proba(X.iloc[va])"
        frame = f'pd.DataFrame(oof, columns=[str(c) for c in model.classes_]).assign({idc}=train["{idc}"].values)'
        init = f"oof = np.zeros((len(train), {len(cols)}))"
    else:
        predict = "model.predict_proba(X.iloc[va])[:, 1]" if kind == "probability" else "model.predict(X.iloc[va])"
        init = "oof = np.zeros(len(train))" if kind != "label" else "oof = np.empty(len(train), dtype=object)"
        frame = f'pd.DataFrame({{"{idc}": train["{idc}"], "{cols[0]}": oof}})'
    target = task.target_columns[0]
    dropped = ", ".join(f'"{c}"' for c in [idc, *task.target_columns])
    return (f'X = train.drop(columns=[{dropped}])\n'
            f'y = train["{target}"]\n{init}\n'
            f"for tr, va in KFold(5, shuffle=True, random_state=SEED).split(X):\n"
            f"    model.fit(X.iloc[tr], y.iloc[tr])\n    oof[va] = {predict}\n"
            f'{frame}.to_csv("val_predictions.csv", index=False)')


SCORERS = {  # how a template script prints its own validation score (the harness's score is the one that counts)
    "accuracy": "accuracy_score(y, oof)", "f1": "f1_score(y, oof)", "f1_macro": "f1_score(y, oof, average='macro')",
    "qwk": "cohen_kappa_score(y, oof, weights='quadratic')", "roc_auc": "roc_auc_score(y, oof)",
    "rmse": "mean_squared_error(y, oof) ** 0.5", "rmsle": "mean_squared_log_error(y, oof.clip(0)) ** 0.5",
    "mae": "mean_absolute_error(y, oof)",
}


def baseline_template(task: Task) -> str:
    """A complete script that already follows every rule, for the draft to start from: a small model copies a
    working frame far more reliably than it follows rules, and a strong one loses nothing."""
    metric = get_metric(task.metric)
    regression = metric.kind == "regression"
    learner = "HistGradientBoostingRegressor" if regression else "HistGradientBoostingClassifier"
    idc, cols, targets = task.id_column, task.submission_columns, task.target_columns
    multi = metric.kind == "probability" and len(cols) > 1
    if multi:
        predict = "model.predict_proba(X_test)"
        write = (f'sub = pd.DataFrame(pred, columns=[str(c) for c in model.classes_])\n'
                 f'sub.insert(0, "{idc}", test["{idc}"].values)\nsub.to_csv("{task.submission_file}", index=False)')
        score = "log_loss(y, oof, labels=model.classes_)" if metric.name == "log_loss" else \
            "roc_auc_score(y, oof, multi_class='ovr')"
    else:
        predict = "model.predict_proba(X_test)[:, 1]" if metric.kind == "probability" else "model.predict(X_test)"
        write = (f'pd.DataFrame({{"{idc}": test["{idc}"], "{cols[0]}": pred}})'
                 f'.to_csv("{task.submission_file}", index=False)')
        score = "log_loss(y, oof)" if metric.name == "log_loss" else SCORERS.get(metric.name, "float('nan')")
    scorer = score.split("(")[0]
    metrics_import = f"from sklearn.metrics import {scorer}\n" if scorer != "float" else ""
    skeleton = _skeleton(task).split("\n")[2:]  # X and y are built above from the encoded features
    skeleton = [line.replace("model.fit", "model = make_model()\n    model.fit") for line in skeleton]
    dropped = ", ".join(f'"{t}"' for t in targets)
    return f"""# Approach: gradient-boosted trees on every column (replace with yours)
import os
import numpy as np
import pandas as pd
from sklearn.ensemble import {learner}
{metrics_import}from sklearn.model_selection import KFold

DATA_DIR = os.environ["GOME_DATA_DIR"]
SEED = int(os.environ.get("GOME_SEED", "0"))
train = pd.read_csv(os.path.join(DATA_DIR, "{task.train_file}"))
test = pd.read_csv(os.path.join(DATA_DIR, "{task.test_file}"))

# Features: every column but the id and the target; categories one-hot encoded over train and test together.
full = pd.concat([train.drop(columns=[{dropped}]), test]).drop(columns=["{idc}"])
wide = [c for c in full.columns if full[c].dtype == object and full[c].nunique() > 50]
full = pd.get_dummies(full.drop(columns=wide), dummy_na=True).astype(float)
full = full.fillna(full.median())
X, X_test = full.iloc[: len(train)].reset_index(drop=True), full.iloc[len(train):].reset_index(drop=True)
y = train["{targets[0]}"]


def make_model():
    return {learner}(random_state=SEED)


{chr(10).join(skeleton)}
print(f"validation score: {{{score}}}")

model = make_model()
model.fit(X, y)
pred = {predict}
{write}
"""


def _format_rule(task: Task) -> str:
    kind = get_metric(task.metric).kind
    if kind == "probability" and len(task.submission_columns) > 1:
        return ("Predict probabilities: one column per class named as in the sample submission, each row summing "
                "to 1 (write full precision).")
    if kind == "probability":
        return f"Predict the probability of the positive class in column {task.submission_columns[0]!r}."
    if kind == "label":
        return "Predict labels with the same values and type as the target column."
    return "Predict numbers on the target's scale."
