"""The MNIST course exercise as library functions: data, training, evaluation, figures.

*Train an RBM on MNIST; show Gibbs samples from p(v, h) as images and 100 of the feature vectors
W[:, j] as grey-scale tiles; try with fewer features.*

- :data:`EXERCISE_TRAIN_CONFIG`: how the exercise trains unless told otherwise (PCD-1, see there).
- :func:`load_binarized_mnist`: the 60,000 training images split into the first 50,000 for
  training and the last 10,000 for validation (the free-energy-gap monitor), plus the 10,000 test
  images, all binarized the same way (stochastically from the run's seed, or at 0.5).
- :func:`train_mnist_rbm`: CD-k/PCD-k training that saves a checkpoint after every epoch.
- :func:`train_or_load`: reuse a finished checkpoint trained with the same settings and data.
- :func:`evaluate_mnist_rbm`: test reconstruction error and test log-likelihood, exact (by
  enumerating the hidden layer) up to 25 hidden units, AIS with ±3σ bounds beyond.
- :func:`sample_diversity`: which digits 1,000 Gibbs chains from test digits end on after 1,000
  steps, labelled by a logistic regression trained on the training labels (:mod:`recsys_rbm.exercise.diversity`).
- :func:`run_mnist_figures`: all of the above for several hidden sizes, plus the figures.

Nothing here prints: progress goes to the callbacks of :class:`ExerciseProgress`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from recsys_rbm.data.download import ProgressCallback
from recsys_rbm.data.mnist import MnistFiles, binarize, describe_binarization, load_mnist
from recsys_rbm.errors import CheckpointError, ConfigError, DataError, OutputError
from recsys_rbm.evaluation.ais import ais_log_partition, default_betas
from recsys_rbm.evaluation.exact import log_partition
from recsys_rbm.evaluation.monitors import mean_free_energy, reconstruction_error
from recsys_rbm.exercise.diversity import DigitClassifier, DiversityReport, chain_diversity, fit_digit_classifier
from recsys_rbm.exercise.figures import (
    ComparisonEntry,
    comparison_figure,
    diversity_figure,
    filters_figure,
    samples_figure,
    save_png,
    training_curves_figure,
)
from recsys_rbm.io.checkpoint import load_rbm, save_rbm, tensor_path
from recsys_rbm.io.limits import MAX_HIDDEN
from recsys_rbm.io.outputs import OVERWRITE_FLAG, RunOutput, check_new_output
from recsys_rbm.io.resources import check_memory, rbm_training_bytes
from recsys_rbm.rbm.gibbs import sample_snapshots
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import UniformStream
from recsys_rbm.rbm.units import BernoulliUnits
from recsys_rbm.runtime import make_generator
from recsys_rbm.train.config import TrainConfig, config_from_dict, config_to_dict
from recsys_rbm.train.dense import DenseObjective
from recsys_rbm.train.trainer import EpochRecord, Trainer

if TYPE_CHECKING:
    from recsys_rbm.train.distributed import Parallel

KIND = "mnist-rbm"
VALIDATION_FRACTION = 6  # the last 1/6 of the training images (10,000 of 60,000) validate
EXACT_MAX_HIDDEN = 25  # up to this many hidden units the test log-likelihood is exact

# How the exercise trains unless told otherwise: a centred RBM (Melchior, Fischer & Wiskott 2016; offsets at running
# means of the data, rate 0.01) trained by PCD-1 with 100 persistent chains, batches of 100, the learning rate 0.2
# decaying linearly to 0 (per epoch) over 200 epochs, no momentum, weight decay 1e-3. Measured by the research
# behind it (500 hidden units, 50,000 images): -85.5 nats (AIS, S&M's schedule), and chains from test digits that
# visit all ten digits, the commonest at 20-24%. Plain PCD-1 (lr 0.05, 100 epochs) reached -88.6 nats with chains
# that collapse (35% on one digit); 20 epochs of it left -97 nats and chains that nearly all end on a "7". With CD-1
# the model puts a large mode on the blank image; with momentum 0.9 PCD outruns its persistent chains.
EXERCISE_TRAIN_CONFIG = TrainConfig(
    epochs=200,
    batch_size=100,
    learning_rate=0.2,
    lr_schedule="linear",
    cd_k=1,
    persistent=True,
    n_chains=100,
    initial_momentum=0.0,
    final_momentum=0.0,
    weight_decay=1e-3,
    centring=True,
    offset_rate=0.01,
)


# --- data -------------------------------------------------------------------------------------


@dataclass
class MnistData:
    """Binarized MNIST, ready for training: every tensor is ``(N, 784)`` float32 of 0s and 1s."""

    train: torch.Tensor  # the first 5/6 of the training set (50,000 images)
    validation: torch.Tensor  # the last 1/6 of the training set (10,000 images)
    test: torch.Tensor  # the test set (10,000 images)
    test_labels: torch.Tensor  # (N_test,) digits
    train_labels: torch.Tensor  # (N_train,) digits of the training images (for the sample-diversity classifier)
    binarization: str  # "stochastic" or "threshold"
    seed: int  # the seed the stochastic binarization was drawn from
    fingerprint: dict[str, str]  # MD5 of each of the four files' decompressed content
    training_seed: int  # drawn from the same generator: initialisation, batches and sampling

    @property
    def description(self) -> str:
        """How the images were binarized, as every figure and table states it."""
        return describe_binarization(self.binarization, self.seed if self.binarization == "stochastic" else None)

    @property
    def split_description(self) -> str:
        """Which images train and validate a model: what every MNIST checkpoint records. The test images are named
        only by :attr:`test_description`, where a test figure is printed beside it (``mnist-figures``)."""
        n_train, n_validation = self.train.shape[0], self.validation.shape[0]
        return f"trained on the first {n_train:,} training images, validated on the last {n_validation:,}"

    @property
    def test_description(self) -> str:
        return f"tested on the {self.test.shape[0]:,} test images"

    def to(self, device: torch.device | str) -> MnistData:
        """The same data with the image tensors on ``device``."""
        return dataclasses.replace(
            self, train=self.train.to(device), validation=self.validation.to(device), test=self.test.to(device)
        )

    def first(self, n_train: int) -> MnistData:
        """The same data with only the first ``n_train`` training images (and their labels): a quick run."""
        return dataclasses.replace(self, train=self.train[:n_train], train_labels=self.train_labels[:n_train])


def load_binarized_mnist(
    data_dir: str | Path | None = None,
    binarization: str = "stochastic",
    seed: int = 0,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
    files: MnistFiles | None = None,
) -> MnistData:
    """Load, verify and binarize MNIST; split the training images 5/6 train, 1/6 validation.

    One generator seeded with ``seed`` first draws the seed used for training (so the data's and
    the model's randomness come from the one seed without sharing a stream), then binarizes the
    training and test images (the stochastic binarization is drawn once, not per epoch).
    """
    describe_binarization(binarization)  # validates the name before anything is read
    train = load_mnist(data_dir, "train", download, progress, files=files)
    test = load_mnist(data_dir, "test", download, progress, files=files)
    n_validation = train.images.shape[0] // VALIDATION_FRACTION
    if n_validation < 1 or len(test) < 1:
        raise DataError(f"MNIST has too few images to split ({len(train)} training, {len(test)} test)")
    generator = make_generator(seed)
    training_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    train_images = binarize(train.images, binarization, generator)
    test_images = binarize(test.images, binarization, generator)
    n_train = train_images.shape[0] - n_validation
    return MnistData(
        train=train_images[:n_train],
        validation=train_images[n_train:],
        test=test_images,
        test_labels=test.labels,
        train_labels=train.labels[:n_train],
        binarization=binarization,
        seed=seed,
        fingerprint={**train.md5, **test.md5},
        training_seed=training_seed,
    )


# --- training ---------------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """A trained (or reloaded) MNIST RBM with its per-epoch history."""

    rbm: RBM
    history: list[EpochRecord]
    checkpoint: Path | None
    reused: bool = False  # loaded from a matching checkpoint instead of trained


def checkpoint_metadata(data: MnistData, n_hidden: int, config: TrainConfig, trainer: Trainer) -> dict[str, Any]:
    """What an MNIST checkpoint records, enough to decide whether it can be reused."""
    return {
        "kind": KIND,
        "n_hidden": n_hidden,
        "train_config": config_to_dict(config),
        "seed": config.seed,
        "epoch": trainer.epoch,
        "complete": trainer.epoch >= config.epochs,
        "metrics": [m.as_dict() for m in trainer.history],
        "binarization": data.binarization,
        "binarization_seed": data.seed,
        "data": {
            "dataset": "MNIST",
            "fingerprint_md5": data.fingerprint,
            "split": data.split_description,
        },
    }


def train_mnist_rbm(
    data: MnistData,
    n_hidden: int,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    on_epoch_end: Callable[[Trainer, EpochRecord], None] | None = None,
    on_batch_end: Callable[[int, int], None] | None = None,
    parallel: Parallel | None = None,
) -> TrainedModel:
    """Train a Bernoulli RBM with ``n_hidden`` hidden units on ``data.train``.

    The free-energy gap is measured against ``data.validation``. With ``checkpoint`` the model is
    saved atomically after every epoch, so an interrupted run keeps its last finished epoch; the
    file's extra tensors are the objective's state (a centred RBM's offsets ``offsets.*``, the
    persistent chains ``chain.*``: see :meth:`~recsys_rbm.train.dense.DenseObjective.state_dict`).
    ``config.seed`` must equal ``data.seed`` (the one seed of the run). With ``parallel`` (see
    :func:`recsys_rbm.train.distributed.process_group`) this process trains on its share of every batch
    (and of the persistent chains) and the gradients are summed over the processes; pass
    ``checkpoint`` on rank 0 only.
    """
    check_hidden_sizes([n_hidden])
    if config.seed != data.seed:
        raise ConfigError(f"the training seed {config.seed} differs from the data's seed {data.seed}")
    device = torch.device(device)
    train, validation = data.train.to(device), data.validation.to(device)
    generator = make_generator(data.training_seed, device)
    init_generator = make_generator(data.training_seed)  # initialisation is drawn on the CPU: device-independent
    rbm = RBM.initialise(BernoulliUnits(train.shape[1]), n_hidden, init_generator, visible_mean=train.mean(0)).to(
        device
    )
    objective, all_reduce = DenseObjective(rbm, train, config, validation), None
    if parallel is not None:
        from recsys_rbm.train.distributed import DenseSharding, data_parallel

        objective, all_reduce = data_parallel(objective, parallel, DenseSharding())
    trainer = Trainer(objective, config, generator, all_reduce)
    saved: Path | None = None

    def after_epoch(trainer: Trainer, record: EpochRecord) -> None:
        nonlocal saved
        if checkpoint is not None:  # with a centred RBM's offsets and the chains (rank 0's share, in parallel)
            metadata = checkpoint_metadata(data, n_hidden, config, trainer)
            saved = save_rbm(checkpoint, rbm, metadata, objective.state_dict())
        if on_epoch_end is not None:
            on_epoch_end(trainer, record)

    history = trainer.fit(on_epoch_end=after_epoch, on_batch_end=on_batch_end)
    return TrainedModel(rbm, list(history), saved)


def check_training_memory(data: MnistData, n_hidden: int, config: TrainConfig) -> None:
    """Refuse, with the numbers, a model whose training cannot fit in the memory left."""
    check_memory(
        rbm_training_bytes(data.train.shape[1], n_hidden, config.batch_size, config.monitor_size, data.train.shape[0]),
        f"training an RBM with {n_hidden:,} hidden units",
        "use fewer hidden units or a smaller batch size",
    )


def matching_checkpoint(path: str | Path, data: MnistData, n_hidden: int, config: TrainConfig) -> bool:
    """Whether ``path`` holds a finished model trained with exactly these settings on this data."""
    if not tensor_path(path).exists():
        return False
    try:
        _, metadata, _ = load_rbm(path, expected_kind=KIND)
    except CheckpointError:
        return False
    return (
        metadata.get("complete") is True
        and _history(metadata) is not None
        and metadata.get("n_hidden") == n_hidden
        and _saved_config(metadata) == config
        and metadata.get("binarization") == data.binarization
        and metadata.get("binarization_seed") == data.seed
        and metadata.get("data", {}).get("fingerprint_md5") == data.fingerprint
    )


def _saved_config(metadata: dict[str, Any]) -> TrainConfig | None:
    """The training config a checkpoint records (JSON turned back into the dataclass), or ``None``."""
    try:
        return config_from_dict(TrainConfig, metadata["train_config"])
    except (KeyError, TypeError, ConfigError):
        return None


def load_trained(checkpoint: str | Path, device: torch.device | str = "cpu") -> TrainedModel:
    """Reload an MNIST model and its per-epoch history from a checkpoint."""
    rbm, metadata, _ = load_rbm(checkpoint, expected_kind=KIND, device=device)
    history = _history(metadata)
    if history is None:
        raise CheckpointError(f"{tensor_path(checkpoint)} has no readable training history; retrain it")
    return TrainedModel(rbm, history, tensor_path(checkpoint), reused=True)


def _history(metadata: dict[str, Any]) -> list[EpochRecord] | None:
    """The per-epoch metrics a checkpoint records, or ``None`` if they are missing or of another version."""
    try:
        return [EpochRecord.from_dict(m) for m in metadata["metrics"]]
    except (KeyError, TypeError):
        return None


def train_or_load(
    data: MnistData,
    n_hidden: int,
    config: TrainConfig,
    checkpoint: str | Path,
    device: torch.device | str = "cpu",
    retrain: bool = False,
    on_epoch_end: Callable[[Trainer, EpochRecord], None] | None = None,
    on_batch_end: Callable[[int, int], None] | None = None,
) -> TrainedModel:
    """Reload ``checkpoint`` if it is a finished model with the same settings, seed, binarization
    and data (unless ``retrain``); otherwise train and save it there."""
    if not retrain and matching_checkpoint(checkpoint, data, n_hidden, config):
        return load_trained(checkpoint, device)
    return train_mnist_rbm(data, n_hidden, config, device, checkpoint, on_epoch_end, on_batch_end)


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationSettings:
    """How the test log-likelihood is measured when the hidden layer is too large to enumerate."""

    ais_runs: int = 100  # independent AIS runs (S&M 2008 used 100)
    ais_temperatures: int = 14_500  # intermediate distributions (S&M 2008's schedule)
    exact_max_hidden: int = EXACT_MAX_HIDDEN  # enumerate the 2^H hidden states up to this H

    def __post_init__(self) -> None:
        if self.ais_runs < 2:
            raise ConfigError(f"AIS needs at least 2 runs to give bounds, got {self.ais_runs}")
        if self.ais_temperatures < 3:
            raise ConfigError(f"AIS needs at least 3 intermediate temperatures, got {self.ais_temperatures}")


@dataclass
class ModelReport:
    """How good one MNIST model is on the test set (all in nats or squared error per image)."""

    n_hidden: int
    epochs: int
    test_reconstruction_error: float  # mean over test images of Σ_i (v_i − E[v_i | p(h|v)])²
    test_log_likelihood: float  # mean over test images of log p(v) = −F(v) − log Z
    log_z: float
    method: str  # "exact" or "AIS"
    log_likelihood_bounds: tuple[float, float] | None = None  # AIS: from log Z's ±3σ bounds
    ais_runs: int | None = None
    ais_temperatures: int | None = None
    free_energy_gap: float | None = None  # last epoch's validation − training free energy
    seconds: float = 0.0  # time the evaluation took

    @property
    def method_description(self) -> str:
        if self.method == "exact":
            return f"exact (2^{self.n_hidden} hidden states)"
        return f"AIS, {self.ais_runs} runs × {self.ais_temperatures:,} temperatures"


def evaluate_mnist_rbm(
    rbm: RBM,
    data: MnistData,
    settings: EvaluationSettings | None = None,
    epochs: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ModelReport:
    """Test reconstruction error and mean test log-likelihood.

    ``log Z`` is exact up to ``settings.exact_max_hidden`` hidden units, else an AIS estimate
    from the training data's base-rate model; its ±3σ bounds become bounds on the
    log-likelihood (``log p = −F − log Z`` falls as ``log Z`` rises). The AIS generator is seeded
    from the data's training seed, so reports are reproducible.
    """
    settings = settings or EvaluationSettings()
    started = time.perf_counter()
    test = data.test.to(rbm.device, rbm.dtype)
    error = reconstruction_error(rbm, test)
    minus_free_energy = -mean_free_energy(rbm, test)
    if rbm.n_hidden <= settings.exact_max_hidden:
        log_z = log_partition(rbm, max_units=settings.exact_max_hidden)
        ll = minus_free_energy - log_z
        return ModelReport(rbm.n_hidden, epochs, error, ll, log_z, "exact", seconds=time.perf_counter() - started)
    generator = make_generator(data.training_seed + 1, rbm.device)
    result = ais_log_partition(
        rbm,
        generator,
        visible_mean=data.train.mean(0).to(rbm.device),
        n_runs=settings.ais_runs,
        betas=default_betas(settings.ais_temperatures),
        progress=progress,
    )
    lower = minus_free_energy - result.upper
    upper = minus_free_energy - result.lower if math.isfinite(result.lower) else math.inf
    return ModelReport(
        rbm.n_hidden,
        epochs,
        error,
        minus_free_energy - result.log_z,
        result.log_z,
        "AIS",
        (lower, upper),
        settings.ais_runs,
        settings.ais_temperatures,
        seconds=time.perf_counter() - started,
    )


# --- the whole exercise -----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSettings:
    """The samples figure: ``n_chains`` chains from random test digits, a row every ``every`` steps."""

    n_chains: int = 20
    n_rows: int = 10  # rows of samples below the row of starting digits
    every: int = 1_000  # Gibbs steps between rows (as in the Theano tutorial)

    def __post_init__(self) -> None:
        for name in ("n_chains", "n_rows", "every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} of the samples figure must be at least 1, got {getattr(self, name)}")


def gibbs_samples(rbm: RBM, data: MnistData, settings: SampleSettings | None = None) -> torch.Tensor:
    """Chains started at randomly chosen test digits; ``(n_rows + 1, n_chains, 784)`` visible means.

    The digits and the chains are drawn from generators seeded by the data's training seed, so
    every model of a comparison starts from the same digits.
    """
    settings = settings or SampleSettings()
    chooser = make_generator(data.training_seed + 2)
    rows = torch.randperm(data.test.shape[0], generator=chooser)[: settings.n_chains]
    start = data.test[rows].to(rbm.device, rbm.dtype)
    generator = make_generator(data.training_seed + 3, rbm.device)
    with torch.no_grad():
        return sample_snapshots(rbm, start, settings.n_rows, settings.every, generator).cpu()


@dataclass(frozen=True)
class DiversitySettings:
    """The sample-diversity measure: ``n_chains`` chains from random test digits, labelled after ``steps`` steps."""

    n_chains: int = 1_000
    steps: int = 1_000

    def __post_init__(self) -> None:
        for name in ("n_chains", "steps"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} of the sample-diversity measure must be at least 1, got {value}")


def digit_classifier(data: MnistData) -> tuple[DigitClassifier, float]:
    """The labeller of chain states, fitted to the training images and labels, and its test accuracy."""
    classifier = fit_digit_classifier(data.train.cpu(), data.train_labels)
    return classifier, classifier.accuracy(data.test.cpu(), data.test_labels)


def sample_diversity(
    rbm: RBM, data: MnistData, classifier: DigitClassifier, settings: DiversitySettings | None = None
) -> DiversityReport:
    """Which digits ``settings.n_chains`` Gibbs chains from random test digits end on after ``settings.steps`` steps.

    The start digits (drawn with replacement when there are more chains than test images) and the chains are
    seeded by the data's training seed, so every model of a comparison starts from the same digits.
    """
    settings = settings or DiversitySettings()
    chooser = make_generator(data.training_seed + 4)
    n_test = data.test.shape[0]
    rows = torch.randperm(n_test, generator=chooser)[: settings.n_chains]
    if settings.n_chains > n_test:
        rows = torch.randint(0, n_test, (settings.n_chains,), generator=chooser)
    start = data.test[rows].to(rbm.device, rbm.dtype)
    random = UniformStream(data.training_seed + 5, rbm.device, rbm.dtype)
    return chain_diversity(rbm, start, classifier, settings.steps, random)


class ExerciseProgress:
    """Callbacks through which :func:`run_mnist_figures` reports progress (all optional no-ops)."""

    def model_started(self, n_hidden: int, reused: bool) -> None: ...

    def batch_done(self, n_hidden: int, batch: int, n_batches: int) -> None: ...

    def epoch_done(self, n_hidden: int, metrics: EpochRecord, epochs: int) -> None: ...

    def evaluation_started(self, n_hidden: int, method: str) -> None: ...

    def ais_step(self, n_hidden: int, done: int, total: int) -> None: ...

    def sampling_started(self, n_hidden: int) -> None: ...

    def classifier_started(self) -> None: ...

    def diversity_started(self, n_hidden: int, n_chains: int, steps: int) -> None: ...


@dataclass
class ModelOutcome:
    """One hidden size of the exercise: the model, its report and its figures."""

    model: TrainedModel
    report: ModelReport
    snapshots: torch.Tensor  # (n_rows + 1, n_chains, 784) the samples figure's visible means
    diversity: DiversityReport  # which digits the chains end on
    figures: list[Path] = field(default_factory=list)

    @property
    def training_seconds(self) -> float:
        """The training run's time: the sum of its epochs' (as recorded, also for a reused checkpoint)."""
        return sum(record.seconds for record in self.model.history)


@dataclass
class ExerciseResult:
    """Everything :func:`run_mnist_figures` produced."""

    outcomes: list[ModelOutcome]
    figures: list[Path]  # every PNG written, per model first, then the shared ones
    binarization: str  # the description stated in every figure
    split: str
    classifier_accuracy: float  # the sample-diversity classifier's accuracy on the test images


def checkpoint_name(n_hidden: int, config: TrainConfig, binarization: str) -> str:
    """File name of the exercise's checkpoint for one model, e.g. ``mnist-h500-stochastic-e20-s0.safetensors``."""
    return f"mnist-h{n_hidden}-{binarization}-e{config.epochs}-s{config.seed}.safetensors"


def check_hidden_sizes(hidden_sizes: Sequence[int]) -> None:
    """At least one size, each at least 1, none repeated; else a :class:`ConfigError`."""
    if not hidden_sizes:
        raise ConfigError("give at least one hidden size")
    for n_hidden in hidden_sizes:
        if not 1 <= n_hidden <= MAX_HIDDEN:
            raise ConfigError(f"the number of hidden units must lie in 1..{MAX_HIDDEN:,}, got {n_hidden}")
    if len(set(hidden_sizes)) != len(hidden_sizes):
        raise ConfigError(f"hidden sizes repeat: {', '.join(map(str, hidden_sizes))}")


def run_mnist_figures(
    data: MnistData,
    hidden_sizes: Sequence[int],
    config: TrainConfig,
    output_dir: str | Path,
    checkpoint_dir: str | Path,
    device: torch.device | str = "cpu",
    *,
    retrain: bool = False,
    overwrite: bool = False,
    evaluation: EvaluationSettings | None = None,
    samples: SampleSettings | None = None,
    diversity: DiversitySettings | None = None,
    progress: ExerciseProgress | None = None,
) -> ExerciseResult:
    """Train (or reuse) one model per hidden size, evaluate it, and write the figures.

    Writes to ``output_dir``: ``mnist-filters-h<H>.png`` and ``mnist-samples-h<H>.png`` per size,
    ``mnist-fewer-features.png`` (all sizes side by side), ``mnist-sample-diversity.png`` (the digits
    each model's chains end on: :func:`sample_diversity`) and ``mnist-training-curves.png``.
    Checkpoints go to ``checkpoint_dir`` (see :func:`checkpoint_name`) and are reused when they
    match the settings, seed, binarization and data, unless ``retrain``.

    Nothing that exists is replaced unless ``overwrite``: every figure and every checkpoint to be
    trained is checked (and the checkpoints locked, see :class:`~recsys_rbm.io.outputs.RunOutput`)
    before the first model trains. Each model trains into a file of its own and is moved into
    place when it is finished.
    """
    check_hidden_sizes(hidden_sizes)
    progress = progress or ExerciseProgress()
    samples = samples or SampleSettings()
    diversity = diversity or DiversitySettings()
    output_dir, checkpoint_dir = Path(output_dir), Path(checkpoint_dir)
    check_figure_outputs(output_dir, hidden_sizes, overwrite)
    described = data.description
    outcomes: list[ModelOutcome] = []
    classifier: tuple[DigitClassifier, float] | None = None
    with contextlib.ExitStack() as claims:
        runs: dict[int, RunOutput] = {}  # the checkpoints to train, claimed before any training
        for n_hidden in hidden_sizes:
            path = checkpoint_dir / checkpoint_name(n_hidden, config, data.binarization)
            if not retrain and matching_checkpoint(path, data, n_hidden, config):
                continue
            if path.exists() and not overwrite:
                why = "--retrain would replace it" if retrain else "it was trained with other settings or is unfinished"
                raise OutputError(
                    f"{path} exists and {why}; pass {OVERWRITE_FLAG} to replace it, or choose another --checkpoint-dir"
                )
            check_training_memory(data, n_hidden, config)
            runs[n_hidden] = claims.enter_context(RunOutput(path, overwrite=overwrite, option="--checkpoint-dir"))
        for n_hidden in hidden_sizes:
            run = runs.get(n_hidden)
            progress.model_started(n_hidden, run is None)
            if run is None:
                model = load_trained(checkpoint_dir / checkpoint_name(n_hidden, config, data.binarization), device)
            else:
                model = train_mnist_rbm(
                    data,
                    n_hidden,
                    config,
                    device,
                    run.partial,
                    on_epoch_end=lambda _trainer, metrics, h=n_hidden: progress.epoch_done(h, metrics, config.epochs),
                    on_batch_end=lambda batch, total, h=n_hidden: progress.batch_done(h, batch, total),
                )
                model.checkpoint = run.commit()
            if classifier is None:
                progress.classifier_started()
                classifier = digit_classifier(data)
            outcomes.append(
                _evaluated(model, data, evaluation, samples, (classifier[0], diversity), output_dir, progress)
            )
    entries = [
        ComparisonEntry(
            o.model.rbm, o.snapshots, f"test log p(v) {o.report.test_log_likelihood:.1f} nats ({o.report.method})"
        )
        for o in outcomes
    ]
    comparison = save_png(comparison_figure(entries, samples.every, described), output_dir / "mnist-fewer-features.png")
    shares = save_png(
        diversity_figure({f"{o.report.n_hidden} hidden": o.diversity for o in outcomes}, described),
        output_dir / "mnist-sample-diversity.png",
    )
    curves = save_png(
        training_curves_figure({f"{o.report.n_hidden} hidden": o.model.history for o in outcomes}, described),
        output_dir / "mnist-training-curves.png",
    )
    figures = [path for o in outcomes for path in o.figures] + [comparison, shares, curves]
    assert classifier is not None  # there is at least one model
    split = f"{data.split_description}, {data.test_description}"  # the exercise's table gives the test figures
    return ExerciseResult(outcomes, figures, described, split, classifier[1])


def _evaluated(
    model: TrainedModel,
    data: MnistData,
    evaluation: EvaluationSettings | None,
    samples: SampleSettings,
    diversity: tuple[DigitClassifier, DiversitySettings],
    output_dir: Path,
    progress: ExerciseProgress,
) -> ModelOutcome:
    """One model's test report, Gibbs samples, sample diversity and two figures."""
    n_hidden = model.rbm.n_hidden
    method = "exact" if n_hidden <= (evaluation or EvaluationSettings()).exact_max_hidden else "AIS"
    progress.evaluation_started(n_hidden, method)
    report = evaluate_mnist_rbm(
        model.rbm,
        data,
        evaluation,
        epochs=len(model.history),
        progress=lambda done, total: progress.ais_step(n_hidden, done, total),
    )
    report.free_energy_gap = model.history[-1].measures.get("free_energy_gap") if model.history else None
    progress.sampling_started(n_hidden)
    snapshots = gibbs_samples(model.rbm, data, samples)
    classifier, settings = diversity
    progress.diversity_started(n_hidden, settings.n_chains, settings.steps)
    shares = sample_diversity(model.rbm, data, classifier, settings)
    described = data.description
    filters_path = save_png(filters_figure(model.rbm, described), output_dir / f"mnist-filters-h{n_hidden}.png")
    samples_path = save_png(
        samples_figure(snapshots, samples.every, described, n_hidden), output_dir / f"mnist-samples-h{n_hidden}.png"
    )
    return ModelOutcome(model, report, snapshots, shares, [filters_path, samples_path])


def figure_paths(output_dir: str | Path, hidden_sizes: Sequence[int]) -> list[Path]:
    """Every PNG :func:`run_mnist_figures` writes for these sizes."""
    output_dir = Path(output_dir)
    per_model = [output_dir / f"mnist-{kind}-h{n}.png" for n in hidden_sizes for kind in ("filters", "samples")]
    shared = ("mnist-fewer-features.png", "mnist-sample-diversity.png", "mnist-training-curves.png")
    return [*per_model, *(output_dir / name for name in shared)]


def check_figure_outputs(output_dir: str | Path, hidden_sizes: Sequence[int], overwrite: bool) -> None:
    """Before any work: every figure can be written, and none exists unless ``overwrite``."""
    for path in figure_paths(output_dir, hidden_sizes):
        check_new_output(path, overwrite, "--output", "figures")
