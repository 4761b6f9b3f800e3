"""How typical a user's profile is under the joint RBM, and which of its ratings make it odd.

The RBM is a generative model of whole profiles, so it can say what a factorisation model cannot:

* **How atypical a profile is.** ``F(v)``, the free energy of a user's profile, is ``−log p(v)`` up to
  the constant ``log Z`` (:func:`~recsys_rbm.recommender.profiles.free_energy`): differences of ``F``
  are log-likelihood ratios. ``F`` grows with the number of ratings (each rating adds its own
  surprise), so it is compared with what the model's users *of the same length* have:
  :func:`atypicality` fits ``F ≈ α + β·n + γ·log n`` over the training users by least squares, and the
  spread of the residual ``|F − F̂(n)| ≈ δ + ε·n`` the same way (:class:`LengthFit`); the **anomaly
  score** is ``(F − F̂(n)) / spread(n)``, a z-score for the profile's length. It is unsupervised (no
  labels) and global (a cluster of odd profiles of one length shifts the fit a little; a window of
  neighbours by length would absorb it). ``benchmarks/shilling.py`` measures it against the raw
  ``F``, ``F / n`` and the mean leave-one-out surprise.
* **Why.** The most surprising ratings of a profile are those with the lowest
  ``log p(this item picked and rated so | the rest of the profile)``: exact, with the hidden units
  summed out (:func:`~recsys_rbm.recommender.profiles.state_log_probabilities`), and the sum of two
  parts, "would the rest of the profile pick this item" and "would it rate it so". It is the
  leave-one-out change of ``F`` normalised over the item's other states, so it explains the same
  quantity the score ranks by.

A profile the model was *trained on* can be learnt by it, so that an odd training profile may
score as typical; a profile held out and scored with :func:`profile_atypicality` is judged against
the training users (``tests/test_profiles.py`` checks the held-out case).

Everything here works on a :class:`~recsys_rbm.recommender.scorer.Scorer` over NumPy or torch
arrays and returns NumPy; torch is never imported. Ids are inner indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_rbm.errors import RecsysRBMError
from recsys_rbm.recommender.profiles import free_energy, state_log_probabilities, user_free_energy
from recsys_rbm.recommender.scorer import Scorer, check_ids, csr_rows


@dataclass(frozen=True)
class Atypicality:
    """Every training user's free energy and anomaly score (NumPy, inner ids); higher scores are odder."""

    users: np.ndarray  # (U,) inner ids of the users with training ratings
    n_ratings: np.ndarray  # (U,) their training ratings
    free_energy: np.ndarray  # (U,) F(v) of each training profile (nats, up to the constant log Z)
    expected: np.ndarray  # (U,) F̂(n): the free energy the fit expects for a profile of that length
    spread: np.ndarray  # (U,) the fitted typical |F − F̂(n)| at that length
    score: np.ndarray  # (U,) (F − F̂(n)) / spread(n)

    def ranking(self) -> np.ndarray:
        """Positions into the arrays, most atypical first (ties by inner id)."""
        return np.lexsort((self.users, -self.score))


@dataclass(frozen=True)
class Surprise:
    """One rating of a profile and how unexpected it is given the rest of the profile (natural logs)."""

    item: int  # inner item id
    level: int  # its rating level
    log_p: float  # log p(picked and rated at this level | rest); the sum of the two parts below
    log_p_pick: float  # log P(picked | rest) (0 for a ratings-only model: the rated set is given)
    log_p_rating: float  # log P(this level | picked, rest)


def _require_user_based(scorer: Scorer, what: str) -> None:
    if scorer.mode != "user":
        raise RecsysRBMError(
            f"{what} needs a user-based model (each user a case, so a user's profile is one visible vector); "
            "train one with --mode user (the joint model's default)"
        )


def _design(n_ratings: np.ndarray) -> np.ndarray:
    n = np.asarray(n_ratings, dtype=np.float64)
    return np.stack([np.ones_like(n), n, np.log(n)], 1)  # (U, 3): 1, n, log n


@dataclass(frozen=True)
class LengthFit:
    """What the model's users' free energy is at each profile length: ``F̂(n) = α + β·n + γ·log n`` and the
    typical deviation ``spread(n) = δ + ε·n``, both least squares over the training users."""

    coefficients: np.ndarray  # (3,) α, β, γ
    spread_coefficients: np.ndarray  # (2,) δ, ε
    floor: float  # the least spread: a tenth of the mean deviation, so a score never divides by ~0

    @classmethod
    def of(cls, n_ratings: np.ndarray, free_energy: np.ndarray) -> LengthFit:
        """Fit ``F`` (U,) on ``[1, n, log n]``, then ``|F − F̂(n)|`` on ``[1, n]``; every ``n`` ≥ 1."""
        design = _design(n_ratings)
        if design.shape[0] < design.shape[1] + 1:
            raise RecsysRBMError(
                f"scoring profiles against their length needs at least {design.shape[1] + 1} users with ratings, and "
                f"the model has {design.shape[0]}; train it on the ratings of more users"
            )
        coefficients = np.linalg.lstsq(design, free_energy, rcond=None)[0]
        deviation = np.abs(free_energy - design @ coefficients)
        spread_coefficients = np.linalg.lstsq(design[:, :2], deviation, rcond=None)[0]
        return cls(coefficients, spread_coefficients, float(0.1 * deviation.mean() + 1e-12))

    def expected(self, n_ratings: np.ndarray) -> np.ndarray:
        return _design(n_ratings) @ self.coefficients

    def spread(self, n_ratings: np.ndarray) -> np.ndarray:
        return np.maximum(_design(n_ratings)[:, :2] @ self.spread_coefficients, self.floor)

    def score(self, n_ratings: np.ndarray, free_energy: np.ndarray) -> np.ndarray:
        """The anomaly score ``(F − F̂(n)) / spread(n)``; (B,), (B,) -> (B,)."""
        return (free_energy - self.expected(n_ratings)) / self.spread(n_ratings)


def atypicality(scorer: Scorer) -> Atypicality:
    """Free energy and anomaly score of every training user with ratings (see the module docstring)."""
    _require_user_based(scorer, "scoring profiles")
    users = np.flatnonzero(scorer.user_counts > 0)
    n_ratings = scorer.user_counts[users]
    free = user_free_energy(scorer, users)
    fit = LengthFit.of(n_ratings, free)
    return Atypicality(
        users, n_ratings, free, fit.expected(n_ratings), fit.spread(n_ratings), fit.score(n_ratings, free)
    )


def profile_atypicality(
    scorer: Scorer, units: np.ndarray, levels: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Free energy and anomaly score of profiles the model was not trained on (e.g. new users), each against
    the length fit over the training users: ``(F (B,), score (B,))``; ``lengths`` (B,) cut the entries."""
    _require_user_based(scorer, "scoring profiles")
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 1).any():
        raise RecsysRBMError("a profile to score needs at least one rating")
    users = np.flatnonzero(scorer.user_counts > 0)
    fit = LengthFit.of(scorer.user_counts[users], user_free_energy(scorer, users))
    free = free_energy(scorer, units, levels, lengths)
    return free, fit.score(lengths, free)


def surprises(scorer: Scorer, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per training rating of ``users`` (B,): ``(log P(picked | rest), log P(level | picked, rest), owner)``.

    ``owner`` (E,) is each rating's position in ``users``; entries are in the users' CSR order
    (ascending item within a user). A ratings-only model gives ``log P(picked | rest) = 0``.
    """
    _require_user_based(scorer, "explaining profiles")
    users = check_ids(users, scorer.n_users, "user")
    rows, lengths = csr_rows(scorer.state.profile_indptr, users)
    levels = scorer.state.profile_levels[rows]
    table = state_log_probabilities(scorer, scorer.state.profile_items[rows], levels, lengths)  # (E, S [+ 1])
    owner = np.repeat(np.arange(users.shape[0]), lengths)
    entries = np.arange(levels.shape[0])
    if scorer.layout.interactions:
        picked = table[:, 1:]
        log_pick = np.logaddexp.reduce(picked, axis=1)  # log Σ_k p(picked at k | rest)
        return log_pick, picked[entries, levels] - log_pick, owner
    return np.zeros(levels.shape[0]), table[entries, levels], owner


def surprising_ratings(scorer: Scorer, user: int, n: int = 3) -> list[Surprise]:
    """The ``n`` ratings of a training user least expected given the rest of their profile, most surprising first."""
    items, levels = scorer.rated_items(user)
    log_pick, log_rating, _ = surprises(scorer, np.asarray([user]))
    total = log_pick + log_rating
    order = np.lexsort((items, total))[:n]
    return [
        Surprise(int(items[j]), int(levels[j]), float(total[j]), float(log_pick[j]), float(log_rating[j]))
        for j in order
    ]
