"""How the recommender RBM is built and trained: one frozen dataclass, validated on construction.

Two models share the code. The **joint** model (the default, and the ranker) gives each user one
Bernoulli "interacted" unit per item beside the softmax rating unit of each item they rated, so it
learns *which* items people choose as well as how they rate them. The **ratings** model is the
RBM of Salakhutdinov, Mnih & Hinton (2007): softmax rating units only, for rating accuracy. Each
has its own defaults (:data:`PRESETS`), chosen on validation data only; a field left at ``None``
takes its model's default (the batch size's depends on the table's size: :meth:`RecommenderConfig.for_data`).

The training fields are validated by the core's :class:`~recsys_rbm.train.config.TrainConfig`, which
:meth:`RecommenderConfig.train_config` builds: the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from recsys_rbm.errors import ConfigError
from recsys_rbm.io.limits import MAX_HIDDEN
from recsys_rbm.train.config import TrainConfig, parse_cd_schedule

KINDS = ("joint", "ratings")
MODES = ("user", "item")
GRADIENT_SCALES = ("cases", "raters")
DEVICES_HINT = "auto, cpu, cuda or cuda:N"
MIN_BATCHES = 5  # a default batch is made smaller where an epoch would have fewer batches than this

#: The defaults of each model, chosen on the validation parts of several datasets, never on test
#: ratings (docs/recommender.md lists the variants tried and what they scored).
PRESETS: dict[str, dict[str, Any]] = {
    "joint": {
        "mode": "user",  # a case is a user: fold-in of a new user works
        "hidden": 300,
        "conditional": False,  # the interaction block already feeds "which items were rated" to the hidden units
        "epochs": 200,
        "batch_size": 100,  # at most; see MIN_BATCHES
        "learning_rate": 0.03,
        "averaging": 0.9,
        "patience": 15,
    },
    "ratings": {
        "mode": "item",  # a case is an item (I-RBM): the better rater on validation
        "hidden": 100,  # the paper's 100
        "conditional": True,  # the paper's conditional RBM
        "epochs": 300,
        "batch_size": 300,  # at most; see MIN_BATCHES
        "learning_rate": 0.05,
        "averaging": 0.9,
        "patience": 20,
    },
}
RESOLVED_LATER = ("batch_size",)  # presets that depend on the data's shape: see RecommenderConfig.for_data


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class RecommenderConfig:
    """Settings of :class:`recsys_rbm.recommender.model.RBMRecommender`; ``None`` means "the model's default".

    The default batch shrinks on small tables so that an epoch has at least :data:`MIN_BATCHES`
    batches (a table of 300 items would otherwise give the item-based model one update an epoch),
    and early stopping waits ``patience`` epochs without improvement but never ends training before
    ``patience_updates`` updates, because a small table's validation measure sits on a plateau for
    its first hundred-odd updates.
    """

    renamed: ClassVar[dict[str, str]] = {"model": "kind", "n_hidden": "hidden"}  # names used before 0.3

    kind: str = "joint"  # "joint": interactions and ratings (ranks best); "ratings": ratings only (rates best)
    mode: str | None = None  # "user": each user is a case; "item": each item is a case
    hidden: int | None = None  # hidden units
    conditional: bool | None = None  # the paper's conditional term: "which units this case rated" feeds the hidden
    epochs: int | None = None  # most passes over the training cases; early stopping usually ends sooner
    batch_size: int | None = None  # cases per update; default: the model's, smaller where an epoch has few cases
    learning_rate: float | None = None  # step per mini-batch on the batch-mean gradient
    momentum: float = 0.9  # the paper's momentum on the parameter updates
    weight_decay: float = 0.001  # the paper's L2 penalty on the weights (W and D), never on the biases
    weight_std: float = 0.01  # the paper's initial weights ~ N(0, 0.01²)
    cd_schedule: tuple[tuple[int, int], ...] = ((0, 1),)  # (first epoch, T) pairs, CD-T from then; paper: 1→3→5→9
    gradient_scale: str = "cases"  # "cases": gradient / cases in the batch; "raters": each unit's / its raters there
    averaging: float | None = None  # predict with parameters averaged over epochs: θ̄ ← a·θ̄ + (1 - a)·θ; 0: off
    patience: int | None = None  # stop after this many epochs without a better validation measure …
    patience_updates: int = 200  # … and never before this many updates in all
    like_threshold: float | None = None  # "liked" means rating ≥ this; None: the first value ≥ 3/4 up the scale
    validation_users: int = 5000  # users ranked per epoch for the joint model's validation NDCG@10
    monitor_ratings: int = 20_000  # training ratings sampled (by case) for the per-epoch train RMSE
    seed: int = 0  # the one seed: initialisation, batch order and Gibbs sampling
    device: str = "cpu"  # where training runs: "cpu", "cuda", "cuda:N", or "auto" (CUDA when there is one)

    def __post_init__(self) -> None:
        _require(self.kind in KINDS, f"kind must be 'joint' or 'ratings', got {self.kind!r}")
        for name, value in PRESETS[self.kind].items():
            if getattr(self, name) is None and name not in RESOLVED_LATER:
                object.__setattr__(self, name, value)
        _require(self.mode in MODES, f"mode must be 'user' or 'item', got {self.mode!r}")
        for name in ("hidden", "epochs", "patience"):
            value = getattr(self, name)
            _require(_is_int(value), f"{name} must be a whole number, got {value!r}")
        _require(
            self.batch_size is None or _is_int(self.batch_size),
            f"batch_size must be a whole number, got {self.batch_size!r}",
        )
        _require(
            1 <= self.hidden <= MAX_HIDDEN,  # type: ignore[operator]
            f"hidden must lie in 1..{MAX_HIDDEN:,}, got {self.hidden}",
        )
        _require(isinstance(self.conditional, bool), f"conditional must be true or false, got {self.conditional!r}")
        _require(self.weight_std > 0, f"weight_std must be positive, got {self.weight_std}")
        _require(
            self.gradient_scale in GRADIENT_SCALES,
            f"gradient_scale must be 'cases' or 'raters', got {self.gradient_scale!r}",
        )
        _require(_is_int(self.patience) and self.patience >= 1, f"patience must be at least 1, got {self.patience}")
        _require(
            self.like_threshold is None or isinstance(self.like_threshold, (int, float)),
            f"like_threshold must be a number, got {self.like_threshold!r}",
        )
        for name in ("validation_users", "monitor_ratings"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1, f"{name} must be at least 1, got {value!r}")
        _require(
            isinstance(self.device, str)
            and (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")),
            f"device must be one of {DEVICES_HINT}, got {self.device!r}",
        )
        object.__setattr__(self, "cd_schedule", parse_cd_schedule(self.cd_schedule))
        _require(bool(self.cd_schedule), "cd_schedule needs at least one [first_epoch, T] pair")
        self.train_config()  # the training fields are validated where the trainer defines them

    def for_data(self, n_cases: int) -> RecommenderConfig:
        """These settings for a table of ``n_cases`` training cases (users, or items for an item-based model):
        a default batch is the model's, made smaller so that an epoch has at least :data:`MIN_BATCHES` batches.
        Settings given explicitly are kept as they are."""
        if self.batch_size is not None:
            return self
        preset = int(PRESETS[self.kind]["batch_size"])
        return replace(self, batch_size=max(1, min(preset, -(-n_cases // MIN_BATCHES))))

    def train_config(self) -> TrainConfig:
        """The core trainer's settings: constant momentum, decay on the weights, the CD-T schedule, early stopping."""
        return TrainConfig(
            epochs=self.epochs,  # type: ignore[arg-type]
            batch_size=self.batch_size or int(PRESETS[self.kind]["batch_size"]),
            learning_rate=self.learning_rate,  # type: ignore[arg-type]
            cd_schedule=self.cd_schedule,
            initial_momentum=self.momentum,
            final_momentum=self.momentum,
            weight_decay=self.weight_decay,
            averaging=self.averaging,  # type: ignore[arg-type]
            patience=self.patience,  # type: ignore[arg-type]
            patience_updates=self.patience_updates,
            seed=self.seed,
        )

    def cd_steps(self, epoch: int) -> int:
        """``T`` for a 0-based epoch: the last schedule entry whose first epoch is ≤ ``epoch``."""
        return self.train_config().cd_steps(epoch)

    def with_defaults_of(self, kind: str) -> RecommenderConfig:
        """The same explicit settings for another model, its defaults filling the rest."""
        explicit = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PRESETS[self.kind]}
        return replace(RecommenderConfig(kind=kind), **{**explicit, "kind": kind})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def like_threshold(rating_values: Any, configured: float | None = None) -> float:
    """The rating from which an item counts as liked: ``configured``, else the first value at least
    three quarters of the way up the scale (4 on 1–5, 4 on 0.5–5, 8 on 1–10); 1 for implicit data."""
    values = [float(v) for v in rating_values]
    if configured is not None:
        return float(configured)
    if len(values) <= 1:
        return values[0] if values else 1.0
    target = values[0] + 0.75 * (values[-1] - values[0])
    return next(v for v in values if v >= target - 1e-9)
