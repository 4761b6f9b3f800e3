"""How good is a model: exact and AIS estimates of log Z and log-likelihood, and cheap monitors."""

from recsys_rbm.evaluation.ais import (
    AISResult,
    ais_log_partition,
    base_log_partition,
    base_rate_rbm,
    default_betas,
)
from recsys_rbm.evaluation.exact import (
    binary_states,
    can_enumerate,
    log_likelihood,
    log_partition,
    mean_log_likelihood,
    visible_states,
)
from recsys_rbm.evaluation.monitors import (
    free_energy_gap,
    mean_free_energy,
    pseudo_log_likelihood,
    reconstruction_error,
)

__all__ = [
    "AISResult",
    "ais_log_partition",
    "base_log_partition",
    "base_rate_rbm",
    "binary_states",
    "can_enumerate",
    "default_betas",
    "free_energy_gap",
    "log_likelihood",
    "log_partition",
    "mean_free_energy",
    "mean_log_likelihood",
    "pseudo_log_likelihood",
    "reconstruction_error",
    "visible_states",
]
