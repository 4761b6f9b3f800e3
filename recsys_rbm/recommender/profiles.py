"""Whole user profiles under the joint RBM: how typical each one is, which ratings make it odd, and imagined ones.

The RBM is a generative model of whole profiles, so it can say what a factorisation model cannot:

* **How atypical a profile is.** ``F(v)``, the free energy of a user's profile, is ``−log p(v)`` up to
  the constant ``log Z`` (:meth:`Scorer.free_energy`): differences of ``F`` are log-likelihood
  ratios. ``F`` grows with the number of ratings (each rating adds its own surprise), so it is
  compared with what the model's users *of the same length* have: :func:`atypicality` fits
  ``F ≈ α + β·n + γ·log n`` over the training users by least squares, and the spread of the
  residual ``|F − F̂(n)| ≈ δ + ε·n`` the same way (:class:`LengthFit`); the **anomaly score** is
  ``(F − F̂(n)) / spread(n)``, a z-score for the profile's length. It is unsupervised (no labels)
  and global (a cluster of odd profiles of one length shifts the fit a little; a window of
  neighbours by length would absorb it). ``benchmarks/shilling.py`` measures it against the raw
  ``F``, ``F / n`` and the mean leave-one-out surprise.
* **Why.** The most surprising ratings of a profile are those with the lowest
  ``log p(this item picked and rated so | the rest of the profile)``: exact, with the hidden units
  summed out (:meth:`Scorer.state_log_probabilities`), and the sum of two parts, "would the rest of
  the profile pick this item" and "would it rate it so". It is the leave-one-out change of ``F``
  normalised over the item's other states, so it explains the same quantity the score ranks by.
* **Imagined profiles**: :func:`imagine` samples whole profiles with some items clamped, by block
  Gibbs sampling of the same distribution ``p(v) ∝ e^{−F(v)}`` (:meth:`Scorer.sample_profiles`):
  short chains from the clamped items (:data:`DEFAULT_STEPS`), because the long-run distribution
  of a contrastive-divergence-trained model is not the data's (measured; see the constant).

A profile the model was *trained on* can be learnt by it: in development, on tiny generated data
(80 users, 8 hidden units), a single odd profile in the training data came out as typical, while
the same profile held out and scored with :func:`profile_atypicality` scored far above every
training user (``tests/test_profiles.py`` checks the held-out case). On ml-100k, attack profiles
in the training data are still found (AUC ≥ 0.99 in every cell of ``benchmarks/shilling.py``).

Everything here works on a :class:`~recsys_rbm.recommender.scorer.Scorer` over NumPy or torch
arrays and returns NumPy; torch is never imported. Ids are inner indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_rbm.data.ids import describe_id
from recsys_rbm.errors import RecsysRBMError
from recsys_rbm.recommender.scorer import Scorer, check_ids, csr_rows

#: Gibbs steps of an imagined profile. Measured on ml-100k u1.base (``benchmarks/imagine_profiles.py``):
#: after 3 steps from the empty profile, 500 sampled profiles are closest to the real users (KS distance
#: 0.44 for the number of ratings, 0.20 for the mean rating, 0.50 for the movies' popularity); by 10–30
#: steps the chains settle in a mode of the CD-trained model that real users do not have (about 110
#: ratings of less popular movies, mean 3.15; KS 0.68, 0.67, 0.90 at 100 steps), with CD-10 training too.
DEFAULT_STEPS = 3


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
    free = scorer.user_free_energy(users)
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
    fit = LengthFit.of(scorer.user_counts[users], scorer.user_free_energy(users))
    free = scorer.free_energy(units, levels, lengths)
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
    table = scorer.state_log_probabilities(scorer.state.profile_items[rows], levels, lengths)  # (E, S [+ 1])
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


def imagine(
    scorer: Scorer,
    liked: np.ndarray,
    disliked: np.ndarray,
    n: int = 5,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> np.ndarray:
    """``n`` whole profiles sampled with the ``liked`` items clamped at the top rating and the ``disliked``
    at the lowest (inner ids), by ``steps`` block Gibbs steps; -> (n, n_items) levels, −1 where not picked.

    A joint user-based model only (:meth:`Scorer.sample_profiles` says why). An item both liked and
    disliked is an error.
    """
    liked = check_ids(liked, scorer.n_items, "item")
    disliked = check_ids(disliked, scorer.n_items, "item")
    both = np.intersect1d(liked, disliked)
    if both.size:
        raw = describe_id(scorer.state.item_ids.raw_ids[int(both[0])].item())
        raise RecsysRBMError(f"item {raw} is both liked and disliked; clamp each item once")
    if scorer.is_implicit and disliked.size:
        raise RecsysRBMError(
            "this model was trained on implicit data: it has no ratings, so nothing can be disliked; "
            "give liked items only"
        )
    units = np.concatenate([liked, disliked])
    states = np.concatenate([np.full(liked.shape[0], scorer.n_states), np.ones(disliked.shape[0], dtype=np.int64)])
    if np.unique(units).shape[0] != units.shape[0]:
        raise RecsysRBMError("an item is clamped twice; give each item once")
    return scorer.sample_profiles(units, states, n, steps, seed) - 1
