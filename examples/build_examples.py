"""Rebuild the example tasks from data that ships inside scikit-learn (fixed seed: same files every time).

    python examples/build_examples.py

Each task folder holds public/ (what the agent sees), private/answers.csv (hidden test labels) and task.toml.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent
SEED = 0


def write_task(name: str, frame: pd.DataFrame, target: str, description: str, toml: str, stratify: bool,
               sample_value: float) -> None:
    rng = np.random.default_rng(SEED)
    frame = frame.copy()
    frame.insert(0, "id", rng.permutation(len(frame)) + 10_000)  # ids carry no order information
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED,
                                   stratify=frame[target] if stratify else None)
    public, private = HERE / name / "public", HERE / name / "private"
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=[target]).to_csv(public / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], target: sample_value}).to_csv(public / "sample_submission.csv", index=False)
    test[["id", target]].to_csv(private / "answers.csv", index=False)
    (public / "description.md").write_text(textwrap.dedent(description).strip() + "\n")
    (HERE / name / "task.toml").write_text(textwrap.dedent(toml).strip() + "\n")


def main() -> None:
    bc = load_breast_cancer(as_frame=True)
    frame = bc.frame.rename(columns={"target": "benign"})
    write_task("breast-cancer", frame, "benign", """
        # Breast cancer diagnosis

        Each row describes a breast mass from a digitized image of a fine needle aspirate: 30 real-valued
        features (mean, standard error and worst value of radius, texture, perimeter, area, smoothness,
        compactness, concavity, concave points, symmetry and fractal dimension of the cell nuclei).

        Predict the probability that the mass is benign (`benign` = 1) rather than malignant (0).

        ## Evaluation
        Submissions are scored by the area under the ROC curve between the predicted probability and the
        observed label.

        ## Submission
        A CSV with a header and one row per id of test.csv: `id,benign`, where benign is a probability.
        """, """
        [task]
        name = "breast-cancer"
        metric = "roc_auc"
        direction = "maximize"
        id_column = "id"
        target_columns = ["benign"]
        positive_label = "1"
        submission_file = "submission.csv"
        """, stratify=True, sample_value=0.5)

    db = load_diabetes(as_frame=True, scaled=False)
    frame = db.frame.rename(columns={"target": "progression"})
    write_task("diabetes", frame, "progression", """
        # Diabetes progression

        Ten baseline variables (age, sex, body mass index, average blood pressure and six blood serum
        measurements s1-s6) were obtained for 442 diabetes patients. Predict `progression`, a quantitative
        measure of disease progression one year after baseline.

        ## Evaluation
        Root mean squared error between predicted and observed progression.

        ## Submission
        A CSV with a header and one row per id of test.csv: `id,progression`.
        """, """
        [task]
        name = "diabetes"
        metric = "rmse"
        direction = "minimize"
        id_column = "id"
        target_columns = ["progression"]
        submission_file = "submission.csv"
        """, stratify=False, sample_value=150.0)


if __name__ == "__main__":
    main()
