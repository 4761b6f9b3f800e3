"""Typed, validated configuration: defaults with a comment per field, loadable from TOML."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from recsys_rbm.errors import ConfigError
from recsys_rbm.io.limits import MAX_BATCH_SIZE, MAX_CD_STEPS, MAX_EPOCHS, MAX_SEED

T = TypeVar("T")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrainConfig:
    """How an RBM is trained with CD-k or PCD-k (one code path; ``persistent`` picks the chain)."""

    epochs: int = 20  # passes over the training data
    batch_size: int = 100  # cases per mini-batch; the gradient is the batch mean
    learning_rate: float = 0.05  # step on the batch-mean gradient
    lr_schedule: str = "constant"  # "constant", or "linear": decays to 0 over the run (as in Tieleman's PCD)
    cd_k: int = 1  # Gibbs steps in the negative phase (unless cd_schedule says otherwise)
    cd_schedule: tuple[tuple[int, int], ...] = ()  # (first epoch, k) pairs, CD-k from then on; () means cd_k throughout
    persistent: bool = False  # PCD: negative chains carry over between updates instead of restarting at the data
    n_chains: int = 0  # persistent chains; 0 means one per case of a batch
    initial_momentum: float = 0.5  # momentum for the first epochs, while the gradient is large
    final_momentum: float = 0.9  # momentum after momentum_switch_epoch
    momentum_switch_epoch: int = 5  # first epoch (0-based) that uses final_momentum
    weight_decay: float = 1e-4  # L2 penalty on the weights only, never the biases
    sparsity_target: float = 0.0  # desired mean hidden activation; 0 turns the sparsity penalty off
    sparsity_cost: float = 0.0  # strength of the sparsity penalty
    sparsity_decay: float = 0.95  # smoothing of the running estimate of each hidden unit's activation
    sample_visible: bool = True  # draw binary visible states in the negative phase (else use their means)
    centring: bool = False  # centred RBM (Melchior et al. 2016): the gradient taken about running means of v and h
    offset_rate: float = 0.01  # ν: each batch moves the centring offsets μ, λ this far towards its data means
    monitor_size: int = 5000  # cases used for the per-epoch reconstruction error and free-energy gap
    averaging: float = 0.0  # measure and keep parameters averaged over epochs: θ̄ ← a·θ̄ + (1 − a)·θ; 0 turns it off
    patience: int = 0  # stop after this many epochs without a better validation measure (0: never stop early)
    patience_updates: int = 0  # ... and never before this many updates in all
    max_parameter: float = 1e4  # a parameter beyond ± this means the run has diverged
    seed: int = 0  # the one seed of a run: initialisation, batching and sampling

    def __post_init__(self) -> None:
        _require(1 <= self.epochs <= MAX_EPOCHS, f"epochs must lie in 1..{MAX_EPOCHS:,}, got {self.epochs}")
        _require(
            1 <= self.batch_size <= MAX_BATCH_SIZE,
            f"batch_size must lie in 1..{MAX_BATCH_SIZE:,}, got {self.batch_size}",
        )
        _require(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            f"learning_rate must be positive and finite, got {self.learning_rate}",
        )
        _require(
            self.lr_schedule in ("constant", "linear"),
            f"lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}",
        )
        _require(1 <= self.cd_k <= MAX_CD_STEPS, f"cd_k must lie in 1..{MAX_CD_STEPS:,}, got {self.cd_k}")
        _require(self.n_chains >= 0, f"n_chains must be 0 (one per case) or more, got {self.n_chains}")
        for name in ("initial_momentum", "final_momentum"):
            value = getattr(self, name)
            _require(0 <= value < 1, f"{name} must lie in [0, 1), got {value}")
        _require(self.momentum_switch_epoch >= 0, "momentum_switch_epoch must be 0 or more")
        _require(self.weight_decay >= 0, f"weight_decay must be 0 or more, got {self.weight_decay}")
        _require(0 <= self.sparsity_target < 1, f"sparsity_target must lie in [0, 1), got {self.sparsity_target}")
        _require(self.sparsity_cost >= 0, f"sparsity_cost must be 0 or more, got {self.sparsity_cost}")
        _require(0 <= self.sparsity_decay < 1, f"sparsity_decay must lie in [0, 1), got {self.sparsity_decay}")
        _require(0 <= self.offset_rate <= 1, f"offset_rate must lie in [0, 1], got {self.offset_rate}")
        _require(self.monitor_size >= 1, f"monitor_size must be at least 1, got {self.monitor_size}")
        _require(0 <= self.averaging < 1, f"averaging must lie in [0, 1), got {self.averaging}")
        _require(
            0 <= self.patience <= MAX_EPOCHS, f"patience must be 0 (off) or at most {MAX_EPOCHS:,}, got {self.patience}"
        )
        _require(self.patience_updates >= 0, f"patience_updates must be 0 or more, got {self.patience_updates}")
        _require(self.max_parameter > 0, f"max_parameter must be positive, got {self.max_parameter}")
        _require(0 <= self.seed <= MAX_SEED, f"seed must lie in 0..2**63-1, got {self.seed}")
        object.__setattr__(self, "cd_schedule", parse_cd_schedule(self.cd_schedule))

    def momentum(self, epoch: int) -> float:
        return self.initial_momentum if epoch < self.momentum_switch_epoch else self.final_momentum

    def cd_steps(self, epoch: int) -> int:
        """``k`` of CD-k for a 0-based epoch: the last schedule entry starting at or before it, else ``cd_k``."""
        steps = self.cd_k
        for first_epoch, k in self.cd_schedule:
            if epoch >= first_epoch:
                steps = k
        return steps

    def learning_rate_at(self, epoch: int) -> float:
        if self.lr_schedule == "linear":
            return self.learning_rate * (1.0 - epoch / self.epochs)
        return self.learning_rate


def parse_cd_schedule(schedule: object) -> tuple[tuple[int, int], ...]:
    """A CD schedule as ``((first_epoch, k), ...)``: starts at epoch 0, epochs rising, 1 ≤ k ≤ 1000.

    An empty schedule is allowed (CD-k with the config's ``cd_k`` throughout); entries starting
    after the last epoch are allowed and never used.
    """
    try:
        pairs = tuple((a, b) for a, b in schedule)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        pairs = None
    if pairs is None or not all(_is_whole(a) and _is_whole(b) for a, b in pairs):
        raise ConfigError(
            f"cd_schedule must be a list of [first_epoch, k] pairs of whole numbers such as [[0, 1], [15, 3]], "
            f"got {schedule!r}"
        )
    pairs = tuple((int(a), int(b)) for a, b in pairs)
    if not pairs:
        return pairs
    _require(pairs[0][0] == 0, f"cd_schedule must start at epoch 0, got {list(pairs)}")
    _require(
        all(a < b for (a, _), (b, _) in itertools.pairwise(pairs)),
        f"cd_schedule epochs must rise strictly, got {list(pairs)}",
    )
    _require(
        all(1 <= k <= MAX_CD_STEPS for _, k in pairs),
        f"cd_schedule steps k must lie in 1..{MAX_CD_STEPS:,}, got {list(pairs)}",
    )
    _require(
        all(a <= MAX_EPOCHS for a, _ in pairs), f"cd_schedule epochs must be at most {MAX_EPOCHS:,}, got {list(pairs)}"
    )
    return pairs


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def current_names(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the fields ``cls`` has renamed (its ``renamed`` map, old -> new) under their new names;
    where both names are given, the new one's value is kept."""
    renamed: dict[str, str] = getattr(cls, "renamed", {})
    out = dict(values)
    for old, new in renamed.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def config_from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build a config dataclass from plain values, rejecting unknown keys and wrong types.

    A class may list fields it has renamed (``renamed = {"old": "new"}``): the old names, as files
    written before the change hold them, are read as the new ones.
    """
    values = current_names(cls, values)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} field(s): {', '.join(unknown)}; use the known ones: {', '.join(known)}"
        )
    converted = {}
    for name, value in values.items():
        default = getattr(cls, name, None)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{cls.__name__}.{name} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{cls.__name__}.{name} must be a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ConfigError(f"{cls.__name__}.{name} must be a whole number, got {value!r}")
            value = type(default)(value)
        converted[name] = value
    return cls(**converted)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable, non-UTF-8 or invalid file (or a pipe) is one ConfigError line."""
    from recsys_rbm.io.inputs import input_problem, read_regular_bytes

    problem = input_problem(path)
    if problem is not None and problem.kind == "missing":
        raise ConfigError(f"config file {path} does not exist; check the path, or leave out --config")
    data = read_regular_bytes(path, "config file", ConfigError)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {error.start + 1} is {data[error.start]:#04x}); "
            "save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"config file {path} is not valid TOML ({reason}); fix that line") from None


def config_table(path: str | Path, data: dict[str, Any], table: str, cls: type) -> dict[str, Any]:
    """The ``[table]`` of a config file's ``data``, refusing everything else in the file (one :class:`ConfigError`).

    A table of another name (a typo such as ``[recomender]``), a setting outside the table, and a
    file without the table would otherwise be ignored without a word, and the run would train on
    defaults; each is named, with the table and fields that are read.
    """
    import difflib

    known = ", ".join(f.name for f in fields(cls))
    reads = f"it reads the [{table}] table, whose fields are: {known}"
    loose = [name for name, value in data.items() if not isinstance(value, dict)]
    if loose:
        raise ConfigError(
            f"config file {path}: {', '.join(loose)} sit(s) outside any table; put them under a [{table}] line "
            f"({reads})"
        )
    others = [name for name in data if name != table]
    if others:
        near = difflib.get_close_matches(others[0], [table], n=1, cutoff=0.6)
        hint = f" (did you mean [{table}]?)" if near else ""
        raise ConfigError(
            f"config file {path} has a table this command does not read: [{'], ['.join(others)}]{hint}; rename or "
            f"remove it: {reads}"
        )
    if table not in data:
        raise ConfigError(
            f"config file {path} has no [{table}] table, so it sets nothing; put the settings under a [{table}] "
            f"line ({reads})"
        )
    return data[table]


def load_toml(path: str | Path, cls: type[T], table: str | None = None) -> T:
    """Read a config from a TOML file: the whole file, or its ``[table]`` (then nothing else may be in the file,
    see :func:`config_table`)."""
    data = read_toml(path)
    if table is not None:
        data = config_table(path, data, table, cls)
    return config_from_dict(cls, data)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON values (tuples become lists), as a checkpoint's metadata stores them."""
    return json.loads(json.dumps(dataclasses.asdict(config)))
