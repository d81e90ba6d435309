"""Real scripts and realistic decisions a model would write for the breast-cancer example (roc_auc)."""

from __future__ import annotations

HEADER = '''import os
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

DATA_DIR = os.environ["GOME_DATA_DIR"]
train = pd.read_csv(os.path.join(DATA_DIR, "train.csv"))
test = pd.read_csv(os.path.join(DATA_DIR, "test.csv"))
'''

FOOTER = '''
features = [c for c in train.columns if c not in ("id", TARGET)]
X, y = train[features].to_numpy(), train[TARGET].to_numpy()
oof = np.zeros(len(train))
for fold, (tr, va) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)):
    model = make_model()
    model.fit(X[tr], y[tr])
    oof[va] = model.predict_proba(X[va])[:, 1]
pd.DataFrame({"id": train["id"], TARGET: oof}).to_csv("val_predictions.csv", index=False)
from sklearn.metrics import roc_auc_score
print(f"validation score: {roc_auc_score(y, oof):.5f}")
model = make_model()
model.fit(X, y)
pd.DataFrame({"id": test["id"], TARGET: model.predict_proba(test[features].to_numpy())[:, 1]}).to_csv(
    "submission.csv", index=False)
'''


CHALLENGES = {"challenges": [  # what a model lists for a small tabular task
    {"name": "small data", "detail": "a few hundred rows: cross-validate, keep models simple",
     "component": "validation"},
    {"name": "correlated features", "detail": "many size measurements move together", "component": "features"},
    {"name": "mild class imbalance", "detail": "the target splits about 60/40", "component": "data"}]}


def program(approach: str, body: str, footer: bool = True) -> str:
    return f"# Approach: {approach}\n" + HEADER + body + (FOOTER if footer else "")


# The draft guesses the target's name and crashes with a KeyError: the bug a diagnosis must catch.
BUGGY_DRAFT = program(
    "logistic regression on all numeric features", '''from sklearn.linear_model import LogisticRegression

TARGET = "target"
y = train[TARGET]
''', footer=False)

PLAIN_LOGREG = program(
    "logistic regression on raw features, 5-fold CV", '''from sklearn.linear_model import LogisticRegression

TARGET = "benign"


def make_model():
    return LogisticRegression(max_iter=50)
''')

SCALED_LOGREG = program(
    "standardized features + logistic regression", '''from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TARGET = "benign"


def make_model():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
''')

SHALLOW_TREE = program(
    "depth-2 decision tree", '''from sklearn.tree import DecisionTreeClassifier

TARGET = "benign"


def make_model():
    return DecisionTreeClassifier(max_depth=2, random_state=0)
''')


def script(code: str) -> str:
    return f"Here is the complete script.\n\n```python\n{code}```\n"


def diagnosis(outcome: str, accept: bool, summary: str, problems: list[dict] | None = None, reason: str = "",
              aligned: bool = True, leakage: bool = False, hypothesis_verdict: str | None = None) -> dict:
    reply = {"outcome": outcome, "summary": summary, "problems": problems or [], "validation_aligned": aligned,
             "leakage": leakage, "accept": accept, "reason": reason}
    return reply if hypothesis_verdict is None else {**reply, "hypothesis_verdict": hypothesis_verdict}


def hypotheses(*items: tuple[str, str, str, int]) -> dict:
    """(change, component, step_size, impact) tuples -> a HypothesisSet reply."""
    return {"hypotheses": [{"change": c, "component": comp, "rationale": f"expected to help: {c}", "step_size": s,
                            "impact": i, "confidence": 4, "novelty": 3, "cost": 2} for c, comp, s, i in items]}


def breast_cancer_replies() -> list:
    """A 4-step run: buggy draft -> fixed -> improved -> a worse idea that is rejected."""
    return [
        script(BUGGY_DRAFT),
        diagnosis("bug", False, "The script crashed with KeyError: 'target' before training.",
                  [{"description": "The target column is named 'benign', not 'target'.",
                    "evidence": "KeyError: 'target'", "component": "data"}], "it crashed"),
        hypotheses(("Use the real target column 'benign' and finish the cross-validated pipeline", "data",
                    "minimal", 5),
                   ("Switch to gradient boosting", "model", "rewrite", 3)),
        script(PLAIN_LOGREG),
        diagnosis("ran", True, "Logistic regression ran; it stopped before converging (max_iter=50) on unscaled "
                  "features.", [{"description": "Unscaled features and few iterations", "evidence":
                                 "ConvergenceWarning", "component": "features"}], "first working solution"),
        hypotheses(("Standardize the features and let logistic regression converge", "features", "moderate", 4),
                   ("Add polynomial features", "features", "moderate", 2)),
        script(SCALED_LOGREG),
        diagnosis("ran", True, "Scaling let the model converge; AUC rose.", [], "beats the best"),
        hypotheses(("Try a shallow decision tree for interpretability", "model", "rewrite", 2)),
        script(SHALLOW_TREE),
        diagnosis("ran", False, "The depth-2 tree scores far below logistic regression.", [], "worse than best"),
    ]


GENERIC = '''# Approach: {approach}
import os
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

DATA_DIR = os.environ["GOME_DATA_DIR"]
train = pd.read_csv(os.path.join(DATA_DIR, "train.csv"))
test = pd.read_csv(os.path.join(DATA_DIR, "test.csv"))
TARGET = "{target}"
features = [c for c in train.select_dtypes("number").columns if c not in ("id", TARGET)]
X, X_test = train[features].fillna(train[features].median()), test[features].fillna(train[features].median())
y = train[TARGET]
regression = pd.api.types.is_float_dtype(y) and y.nunique() > 20
if regression:
    from sklearn.linear_model import Ridge as Model
    kwargs = {{"alpha": {strength}}}
else:
    from sklearn.linear_model import LogisticRegression as Model
    kwargs = {{"C": 1 / {strength}, "max_iter": 1000}}
tr, va = train_test_split(np.arange(len(train)), test_size=0.2, random_state=0)
model = Model(**kwargs).fit(X.iloc[tr], y.iloc[tr])
pd.DataFrame({{"id": train["id"].iloc[va], TARGET: model.predict(X.iloc[va])}}).to_csv("val_predictions.csv",
                                                                                     index=False)
model = Model(**kwargs).fit(X, y)
pd.DataFrame({{"id": test["id"], TARGET: model.predict(X_test)}}).to_csv("submission.csv", index=False)
'''


def generic_script(prompt: str) -> str:
    """A working script for any task scored on labels or values: the target is read from the prompt's data
    schema, as a model would; the second version (asked for after a gradient) regularizes less."""
    import re

    target = re.search(r"target column\(s\) \['([^']+)'\]", prompt).group(1)
    improving = "Change to make now" in prompt
    return script(GENERIC.format(approach="linear model on numeric features", target=target,
                                 strength=0.1 if improving else 10.0))
