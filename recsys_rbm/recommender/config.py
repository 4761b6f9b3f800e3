"""How the recommender RBM is built and trained: one frozen dataclass, validated on construction.

Two models share the code. The **joint** model (the default, and the ranker) gives each user one
Bernoulli "interacted" unit per item beside the softmax rating unit of each item they rated, so it
learns *which* items people choose as well as how they rate them. The **ratings** model is the
RBM of Salakhutdinov, Mnih & Hinton (2007): softmax rating units only, for rating accuracy. Each
has its own defaults (:data:`PRESETS`), chosen on validation data of ml-100k (5 % of u1.base held
out, never the test file); a field left at ``None`` takes its model's default.

The training fields are validated by the core's :class:`~recsys_rbm.config.TrainConfig`, which
:meth:`RecommenderConfig.train_config` builds: the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from recsys_rbm.config import TrainConfig, parse_cd_schedule
from recsys_rbm.errors import ConfigError
from recsys_rbm.limits import MAX_HIDDEN

MODELS = ("joint", "ratings")
MODES = ("user", "item")
GRADIENT_SCALES = ("cases", "raters")
DEVICES_HINT = "auto, cpu, cuda or cuda:N"

#: The defaults of each model. ``ratings`` reproduces the I-RBM measured in the README (u1–u5 RMSE
#: 0.908); ``joint`` was chosen by the mean validation NDCG@10 over ml-100k u1–u5 (5% of each base
#: file, never the test files) among 7 variants: 200 or 300 hidden units, averaging 0 or 0.9, weight
#: decay 3e-4, learning rate 0.02, batches of 50 (means 0.1788 to 0.1828; this one 0.1828).
PRESETS: dict[str, dict[str, Any]] = {
    "joint": {
        "mode": "user",  # a case is a user: fold-in of a new user works
        "n_hidden": 300,
        "conditional": False,  # the interaction block already feeds "which items were rated" to the hidden units
        "epochs": 200,
        "batch_size": 100,
        "learning_rate": 0.01,
        "averaging": 0.9,
        "patience": 15,
    },
    "ratings": {
        "mode": "item",  # a case is a movie (I-RBM): 0.91 RMSE on u1, against 0.96 user-based
        "n_hidden": 100,  # the paper's 100 (300 was no better on validation)
        "conditional": True,  # the paper's conditional RBM
        "epochs": 300,
        "batch_size": 300,
        "learning_rate": 0.05,
        "averaging": 0.9,
        "patience": 20,
    },
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class RecommenderConfig:
    """Settings of :class:`recsys_rbm.recommender.model.RBMRecommender`; ``None`` means "the model's default".

    How the ratings model's defaults were chosen (item-based unless noted; B = cases per batch;
    validation: 5 % of u1.base; u1.test shown as a check only):

    =========================================================  ===========  ===========
    variant                                                    validation   u1.test
    =========================================================  ===========  ===========
    paper-like: gradient / raters, lr 0.01, B 100, CD 1→9      0.939        0.953
    gradient / B ("cases"), lr 0.1, B 100                      0.923        0.933
    cases, lr 0.05, B 300                                      0.914        0.919
    cases, lr 0.05, B 300, 300 hidden units                    0.912        0.920
    cases, lr 0.05, B 300, conditional, CD-1                   0.911        0.913
    the same + parameter averaging 0.9 (the defaults)          0.910        0.912
    user-based, conditional, cases, lr 0.005, B 100            0.955        0.964
    =========================================================  ===========  ===========
    """

    model: str = "joint"  # "joint": interactions and ratings (ranks best); "ratings": ratings only (rates best)
    mode: str | None = None  # "user": each user is a case; "item": each item is a case
    n_hidden: int | None = None  # hidden units
    conditional: bool | None = None  # the paper's conditional term: "which units this case rated" feeds the hidden
    epochs: int | None = None  # most passes over the training cases; early stopping usually ends sooner
    batch_size: int | None = None  # cases per update
    learning_rate: float | None = None  # step per mini-batch on the batch-mean gradient
    momentum: float = 0.9  # the paper's momentum on the parameter updates
    weight_decay: float = 0.001  # the paper's L2 penalty on the weights (W and D), never on the biases
    weight_std: float = 0.01  # the paper's initial weights ~ N(0, 0.01²)
    cd_schedule: tuple[tuple[int, int], ...] = ((0, 1),)  # (first epoch, T) pairs, CD-T from then; paper: 1→3→5→9
    gradient_scale: str = "cases"  # "cases": gradient / cases in the batch; "raters": each unit's / its raters there
    averaging: float | None = None  # predict with parameters averaged over epochs: θ̄ ← a·θ̄ + (1 - a)·θ; 0: off
    patience: int | None = None  # stop after this many epochs without a better validation measure
    like_threshold: float | None = None  # "liked" means rating ≥ this; None: the first value ≥ 3/4 up the scale
    validation_users: int = 5000  # users ranked per epoch for the joint model's validation NDCG@10
    monitor_ratings: int = 20_000  # training ratings sampled (by case) for the per-epoch train RMSE
    seed: int = 0  # the one seed: initialisation, batch order and Gibbs sampling
    device: str = "cpu"  # where training runs: "cpu", "cuda", "cuda:N", or "auto" (CUDA when there is one)

    def __post_init__(self) -> None:
        _require(self.model in MODELS, f"model must be 'joint' or 'ratings', got {self.model!r}")
        for name, value in PRESETS[self.model].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        _require(self.mode in MODES, f"mode must be 'user' or 'item', got {self.mode!r}")
        for name in ("n_hidden", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            _require(_is_int(value), f"{name} must be a whole number, got {value!r}")
        _require(
            1 <= self.n_hidden <= MAX_HIDDEN,  # type: ignore[operator]
            f"n_hidden must lie in 1..{MAX_HIDDEN:,}, got {self.n_hidden}",
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

    def train_config(self) -> TrainConfig:
        """The core trainer's settings: constant momentum, decay on the weights, the CD-T schedule, early stopping."""
        return TrainConfig(
            epochs=self.epochs,  # type: ignore[arg-type]
            batch_size=self.batch_size,  # type: ignore[arg-type]
            learning_rate=self.learning_rate,  # type: ignore[arg-type]
            cd_schedule=self.cd_schedule,
            initial_momentum=self.momentum,
            final_momentum=self.momentum,
            weight_decay=self.weight_decay,
            averaging=self.averaging,  # type: ignore[arg-type]
            patience=self.patience,  # type: ignore[arg-type]
            seed=self.seed,
        )

    def cd_steps(self, epoch: int) -> int:
        """``T`` for a 0-based epoch: the last schedule entry whose first epoch is ≤ ``epoch``."""
        return self.train_config().cd_steps(epoch)

    def with_defaults_of(self, model: str) -> RecommenderConfig:
        """The same explicit settings for another model, its defaults filling the rest."""
        explicit = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PRESETS[self.model]}
        return replace(RecommenderConfig(model=model), **{**explicit, "model": model})


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
