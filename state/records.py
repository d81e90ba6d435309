"""Pydantic records: what gome knows about a task, a run, and each experiment, validated where they enter.

Task and RunConfig are validated once, at prepare; Diagnosis, HypothesisSet and Gradient are the LLM's contracts
(structured output); Experiment is the journal's node (experiments/<id>/metrics.json). Graph state carries them
as plain dicts (see graph_state.py for their typed shapes): checkpoints stay small, portable and free of msgpack
allow-lists.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Direction = Literal["maximize", "minimize"]
RunStatus = Literal["ok", "error", "timeout", "oom", "killed"]
Component = Literal["data", "features", "model", "training", "validation", "ensembling", "efficiency"]
StepSize = Literal["minimal", "moderate", "rewrite"]
ScoreSource = Literal["harness", "self_reported"]
Mode = Literal["gradient", "tree", "auto"]
StepMode = Literal["gradient", "tree"]  # what one step is; auto chooses between them
GRADIENT_KINDS = ("update", "blend", "ensemble")  # steps that implement a gradient (a hypothesis under test)


class Settings(BaseModel):
    """A block of settings: an unknown key is refused (a typo such as `step` must not run the default 8 steps)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def checked(cls, data: Any, what: str = "config"):
        """The settings, or SettingsError naming each bad one (and, for a typo, the names that exist)."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise SettingsError(f"invalid {what}: " + "; ".join(_problem(cls, err) for err in e.errors())) from None


class SettingsError(ValueError):
    """Settings a run cannot start with: it is refused before anything runs."""


def _problem(model: type[BaseModel], err: dict) -> str:
    *parents, last = [str(p) for p in err["loc"]] or ["?"]
    if err["type"] != "extra_forbidden":
        return f"{'.'.join([*parents, last])}: {err['msg']}"
    for name in parents:  # the block the unknown key is in
        sub = model.model_fields[name].annotation if name in model.model_fields else None
        model = sub if isinstance(sub, type) and issubclass(sub, BaseModel) else model
    return f"{'.'.join([*parents, last])}: unknown setting (known: {', '.join(model.model_fields)})"


class Task(BaseModel):
    """A validated task folder. Paths are absolute; `data_dir` holds only public files."""

    model_config = ConfigDict(frozen=True)

    name: str
    data_dir: str
    description: str = ""  # kept out of graph state (see prepare); read from input/description.md
    metric: str
    direction: Direction
    id_column: str
    target_columns: list[str]
    submission_columns: list[str]  # non-id columns of the sample submission, in order
    train_file: str = "train.csv"
    test_file: str = "test.csv"
    sample_submission_file: str = "sample_submission.csv"
    submission_file: str = "submission.csv"
    positive_label: str | None = None  # binary probability metrics: which class the probability is for
    train_rows: int = 0  # counted when the task folder was validated
    test_rows: int = 0


class ModelSpec(Settings):
    """How to build the chat model. Secrets are never stored: api_key comes from the environment at build time."""

    model: str | None = Field(None, description='"provider:name", e.g. "openai:gpt-4.1-mini"; local: the embedded '
                                                 'model; default: $GOME_MODEL')
    base_url: str | None = Field(None, description="an OpenAI-compatible server")
    temperature: float = Field(0.2, ge=0, le=2, description="sampling temperature")
    timeout_s: float = Field(300.0, gt=0, description="limit of one LLM call")
    max_retries: int = Field(2, ge=0, description="retries of a failed LLM call")
    max_tokens: int | None = Field(8000, ge=1, description="tokens one reply may have")


class TreeConfig(Settings):
    """AIDE-style search over the solution tree, by scalar harness score only."""

    policy: Literal["greedy", "uct"] = Field("greedy", description="improve the best node, or the UCT choice")
    num_drafts: int = Field(3, ge=1, description="roots to draft before improving")
    debug_prob: float = Field(0.5, ge=0, le=1, description="chance to debug a buggy leaf when one can be")
    max_debug_depth: int = Field(3, ge=0, description="consecutive fixes tried on one failing line")
    uct_c: float = Field(1.0, ge=0, description="exploration weight of the UCT policy")


class AutoConfig(Settings):
    """When `auto` leaves a mode: it ran min_steps, and its recent steps stopped paying off."""

    start: StepMode = Field("gradient", description="the mode auto starts in")
    window: int = Field(4, ge=1, le=8, description="recent steps of the current mode that are judged")
    min_steps: int = Field(3, ge=1, description="steps a mode runs before it may be left")
    accept_low: float = Field(0.25, ge=0, le=1, description="gradient acceptance rate below which it stalls")
    stall: int = Field(3, ge=1, description="steps without a new best that count as a stall")
    spread_low: float = Field(0.005, ge=0, description="relative score spread under which the tree explores nothing")


class RepairConfig(Settings):
    """Implement, then judge: a script that fails is repaired inside its step before its idea is judged."""

    rounds: int = Field(3, ge=0, le=10, description="repairs of a failing script within one step")
    static_check: bool = Field(True, description="before a script runs: add the imports of names it uses "
                                                 "unimported, and resolve every import")
    debug_rows: int = Field(2000, ge=0, description="first run on this many rows (GOME_DEBUG=1) when train is "
                                                    "more than twice as big; 0: never")


class SelectConfig(Settings):
    top_k: int = Field(3, ge=1, description="candidates re-run at the end")
    reruns: int = Field(2, ge=0, description="extra seeds each candidate is run with")
    reserve: float = Field(0.15, ge=0, lt=1, description="share of the wall clock kept for selection")


# USD per million input / output tokens, and input tokens the provider served from its prompt cache (when it
# has its own rate). Example prices: set yours in config or with --price.
Price = tuple[float, float] | tuple[float, float, float]
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4.1": (2.0, 8.0, 0.5), "gpt-4.1-mini": (0.4, 1.6, 0.1), "gpt-4.1-nano": (0.1, 0.4, 0.025),
    "gpt-4o": (2.5, 10.0, 1.25), "gpt-4o-mini": (0.15, 0.6, 0.075), "o4-mini": (1.1, 4.4, 0.275),
}


def cost(price: Price, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
    """USD of calls at `price`: cached input tokens at the cached rate (the input rate when there is none)."""
    cached = min(cached_input_tokens, input_tokens)
    cached_rate = price[2] if len(price) > 2 else price[0]
    return ((input_tokens - cached) * price[0] + cached * cached_rate + output_tokens * price[1]) / 1e6


class RunConfig(Settings):
    mode: Mode = Field("gradient", description="gradient (Gome), tree (AIDE-style search) or auto (switches by "
                                               "what pays off)")
    traces: int = Field(1, ge=1, le=64, description="parallel traces sharing one success memory")
    steps: int = Field(8, ge=1, le=10_000, description="experiments (script runs) in the whole run")
    time_s: float = Field(3600.0, gt=0, description="wall-clock budget of the whole run")
    script_timeout_s: float = Field(1800.0, gt=0, description="wall-clock limit of one script run")
    threads: int = Field(2, ge=1, description="OMP/MKL threads given to a script")
    max_output_bytes: int = Field(64_000, ge=1024, description="stdout/stderr kept per run (head + tail)")
    memory_top_m: int = Field(5, ge=0, description="success-memory entries handed to the LLM")
    model: ModelSpec = Field(default_factory=ModelSpec, description="the chat model")
    seed: int = Field(0, description="seed of every split and model (GOME_SEED), and of the tree's choices")
    max_tokens: int | None = Field(None, ge=1, description="LLM tokens (input + output) for the whole run")
    max_dollars: float | None = Field(None, gt=0, description="LLM spend for the whole run, from `prices`")
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES),
                                     description="USD per million input, output (and cached input) tokens, by model")
    tree: TreeConfig = Field(default_factory=TreeConfig, description="tree search")
    auto: AutoConfig = Field(default_factory=AutoConfig, description="when auto switches modes")
    select: SelectConfig = Field(default_factory=SelectConfig, description="final selection")
    repair: RepairConfig = Field(default_factory=RepairConfig, description="repairs of failing scripts")
    late_stage: float = Field(0.7, ge=0, le=1, description="share of a trace's steps after which its gradient "
                                                           "steps blend the run's best candidates (1: never)")
    challenges: bool = Field(True, description="ask the model for the task's challenges at prepare")
    edits: bool = Field(True, description="small steps and repairs answer with search/replace edits against their "
                                          "base script, not the whole script")
    review: bool = Field(False, description="pause before each new script runs, for a person to approve it")

    def steps_for_trace(self, trace: int) -> int:
        base, extra = divmod(self.steps, self.traces)
        return base + (1 if trace < extra else 0)

    def start_mode(self) -> StepMode:
        return self.auto.start if self.mode == "auto" else self.mode

    def search_time(self) -> float:
        """Wall clock the traces may use: the rest is reserved for re-running candidates in select."""
        return self.time_s * (1 - self.select.reserve) if self.select.reruns else self.time_s

    def price_of(self, model: str | None) -> Price | None:
        return price_for(self.prices, model)


def price_for(prices: dict[str, Price], model: str | None) -> Price | None:
    """USD per million input and output (and cached input) tokens of `model` ("provider:name" or "name"), or None
    when unpriced."""
    return prices.get((model or "").split(":", 1)[-1])


class Problem(BaseModel):
    description: str = Field(max_length=600)
    evidence: str = Field("", max_length=600, description="a log line, number or code line that shows it")
    component: Component = "model"


class Diagnosis(BaseModel):
    """The gradient's raw material: what happened in the last run and what is wrong with it."""

    outcome: Literal["bug", "timeout", "oom", "ran"] = Field(
        description="bug: the script crashed or wrote no valid output; ran: it finished and wrote its files")
    summary: str = Field(max_length=800, description="two or three sentences on what happened")
    problems: list[Problem] = Field(default_factory=list, max_length=6)
    validation_aligned: bool = Field(
        True, description="the held-out predictions are scored the way the task metric scores the test set")
    leakage: bool = Field(False, description="validation rows or labels leak into training or features")
    accept: bool = Field(description="this run should replace the best solution so far")
    reason: str = Field("", max_length=600, description="why accept or reject")
    hypothesis_verdict: Literal["confirmed", "refuted", "untested"] = Field(
        "untested", description="did the change under test do what it promised: confirmed (it helped), refuted "
                                "(it ran and did not help), untested (its implementation failed)")


class Challenge(BaseModel):
    """Something about this task a solution must handle (imbalance, text columns, a skewed target...)."""

    name: str = Field(max_length=80, description="a few words, e.g. 'class imbalance'")
    detail: str = Field("", max_length=300, description="the evidence in the data and what to do about it")
    component: Component = "data"


class TaskChallenges(BaseModel):
    """What compute-gradient's proposals draw on: the task's own challenges, listed once at prepare."""

    challenges: list[Challenge] = Field(min_length=1, max_length=6)


class Hypothesis(BaseModel):
    change: str = Field(max_length=400, description="one focused, testable change to the script")
    component: Component = "model"
    rationale: str = Field("", max_length=400, description="one sentence: why it should help")
    step_size: StepSize = "moderate"
    impact: int = Field(3, ge=1, le=5)
    confidence: int = Field(3, ge=1, le=5)
    novelty: int = Field(3, ge=1, le=5)
    cost: int = Field(3, ge=1, le=5, description="runtime and risk; 5 is most expensive")

    def utility(self) -> int:
        return self.impact + self.confidence + self.novelty - self.cost


class HypothesisSet(BaseModel):
    """What compute-gradient asks the LLM for: a few candidate directions, scored."""

    hypotheses: list[Hypothesis] = Field(min_length=1, max_length=5)


class Gradient(BaseModel):
    """The chosen hypothesis: a direction and a step size."""

    hypothesis: Hypothesis
    alternatives: list[str] = Field(default_factory=list)
    source: Literal["llm", "fallback", "late-stage"] = "llm"
    dropped: list[str] = Field(default_factory=list, description="proposals that repeated a refuted change")
    blend: list[str] = Field(default_factory=list, description="late stage: the experiments to blend, best first")
    ensemble: bool = Field(False, description="late stage: average the best script's model with another kind")


class MemoryEntry(BaseModel):
    """An accepted hypothesis in the success memory, shared by every trace of a run."""

    change: str
    component: Component
    step_size: StepSize
    gain: float | None = Field(None, description="score improvement in the metric's better direction")
    trace: int
    step: int
    experiment: str
    created_at: float


class Experiment(BaseModel):
    """One executed step of a trace, the journal's node: the script that ran, how it did, what was decided.
    Written once, by checkpoint, to experiments/<id>/metrics.json."""

    id: str
    trace: int
    step: int
    parent: str | None = None
    status: RunStatus | Literal["no_script"]
    runtime_s: float = 0.0
    score: float | None = None
    score_source: ScoreSource | None = None
    val_error: str | None = None
    submission_valid: bool = False
    submission_error: str | None = None
    gradient: Gradient | None = None
    diagnosis: Diagnosis | None = None
    diagnosis_source: Literal["llm", "fallback"] | None = None
    accepted: bool = False
    decision: str = ""
    improved_best: bool = False
    mode: StepMode = "gradient"
    intent: str = "draft"  # draft, update (gradient), debug / improve (tree)
    hypothesis: str | None = None  # what the step tried: the gradient's change, or its intent
    verdict: Literal["confirmed", "refuted", "untested"] | None = None  # of the gradient's hypothesis
    attempts: int = 1  # script runs in this step: the first, then one per repair
    buggy: bool = False  # it failed to write valid, scored outputs (or, in tree mode, its review says so)
    switch: str | None = None  # why auto mode changed mode after this step
    finished_at: float = 0.0

    @property
    def working(self) -> bool:
        """It ran and left a valid submission with a score."""
        return self.status == "ok" and self.submission_valid and self.score is not None

    @property
    def vetoed(self) -> bool:
        """Its diagnosis found leakage or a validation that does not score like the test set: its validation
        score says nothing, however high (and a leaky script reproduces it on every seed)."""
        return self.diagnosis is not None and (self.diagnosis.leakage or not self.diagnosis.validation_aligned)
