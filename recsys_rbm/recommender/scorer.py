"""Mean-field inference of a trained recommender, once, on NumPy or torch arrays.

A :class:`Scorer` is built from a :class:`~recsys_rbm.recommender.state.ModelState` (the
checkpoint's tensor dict) and an array namespace ``xp``: the torch model scores through it with
torch tensors on its device, and ``rbm-rec recommend`` through it with NumPy arrays read by
``safetensors.numpy`` (so that the command starts without importing torch; this module never
imports it). It gives each case's hidden state, every item's ``P(interacted)`` and rating
distribution for a user or for a new user's ratings (fold-in), ranking scores and top-N lists,
and pair predictions for evaluation. The formulas are :mod:`recsys_rbm.recommender.meanfield`'s.

Built on it, each a module of functions that take a scorer: whole profiles (free energy,
leave-one-out conditionals, sampling) in :mod:`~recsys_rbm.recommender.profiles`, anomaly scores
in :mod:`~recsys_rbm.recommender.anomalies`, explanations and similar items in
:mod:`~recsys_rbm.recommender.explain`. All ids here are inner indices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from recsys_rbm.errors import CheckpointError, DataError, RecsysRBMError
from recsys_rbm.io.checkpoint_files import read_verified
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.config import like_threshold
from recsys_rbm.recommender.state import KIND, LEGACY_KINDS, ModelState, ProfileArrays, from_tensors

CATALOGUE_BUDGET = 1 << 24  # (user, item, level) probabilities per dense catalogue product
PAIR_BUDGET = 1 << 22  # (pair, level, hidden) products per chunk of pair predictions


@dataclass(frozen=True)
class Predictions:
    """Every item's predictions for ``B`` users (NumPy): what ranking, tables and JSON are made from."""

    p_interacted: np.ndarray  # (B, n_items) P(the user picks the item): the model's, or the popularity prior
    distribution: np.ndarray | None  # (B, n_items, K) P(r = k), with fallbacks; None for implicit data
    interaction_model: bool  # whether p_interacted comes from the model (else the popularity prior)


@dataclass(frozen=True)
class Ranked:
    """One user's top items, best first, with what each score is made of (NumPy, inner ids)."""

    items: np.ndarray  # (n,) inner item ids
    score: np.ndarray  # (n,) the ranking score
    p_interacted: np.ndarray  # (n,) P(the user picks the item): the model's, or the popularity prior
    p_like: np.ndarray | None  # (n,) P(rating ≥ threshold | picked); None for implicit data
    expected: np.ndarray | None  # (n,) the expected rating; None for implicit data


class Scorer:
    """Inference over a :class:`ModelState`; see the module docstring."""

    def __init__(self, state: ModelState, xp: ModuleType, metadata: dict[str, Any] | None = None) -> None:
        self.state, self.xp = state, xp
        self.metadata = metadata or {}
        self.layout = state.layout
        self.mode = state.mode
        self.rating_values = state.rating_values
        self.n_levels = int(state.rating_values.shape[0])
        configured = (self.metadata.get("config") or {}).get("like_threshold")
        self.threshold = like_threshold(self.rating_values, configured)
        k = self.n_levels
        self.user_counts = np.diff(state.profile_indptr)  # (n_users,) profile ratings per user
        item_level_counts = state.item_level_counts.astype(np.float64)
        self.item_counts = item_level_counts.sum(1)  # (n_items,)
        self.user_known, self.item_known = self.user_counts > 0, self.item_counts > 0
        users = np.repeat(np.arange(state.n_users), self.user_counts)
        user_level_counts = np.bincount(users * k + state.profile_levels, minlength=state.n_users * k)
        self.global_distribution = mf.global_distribution(item_level_counts)  # (K,)
        self.item_distribution = mf.smoothed_distribution(item_level_counts, self.global_distribution)
        self.user_distribution = mf.smoothed_distribution(
            user_level_counts.reshape(state.n_users, k).astype(np.float64), self.global_distribution
        )

    # --- construction from a checkpoint ---------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        """Read and verify a checkpoint with NumPy (no torch); any problem is a one-line :class:`CheckpointError`."""
        from safetensors.numpy import load_file

        tensors, metadata = read_verified(path, None, load_file)
        return cls.from_checkpoint(tensors, metadata, np, np.asarray, path)

    @classmethod
    def from_checkpoint(
        cls, tensors: dict[str, Any], metadata: dict[str, Any], xp: ModuleType, to_numpy: Any, path: Any = "the model"
    ) -> Scorer:
        """A scorer over a checkpoint's arrays, checked for kind and consistency."""
        kind = metadata.get("kind")
        if kind != KIND and kind not in LEGACY_KINDS:
            raise CheckpointError(
                f"{path} holds a {kind!r} model, but a {KIND!r} model is needed here; give a model saved by "
                "'rbm-rec train movielens' or 'rbm-rec train ratings'"
            )
        try:
            state = from_tensors(tensors, metadata, to_numpy, xp)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise CheckpointError(f"{path} is not a valid recommender model ({error}); retrain it") from None
        return cls(state, xp, metadata)

    def with_profiles(self, arrays: ProfileArrays) -> Scorer:
        """The same parameters over other profiles (e.g. with a test set put back); item-based models'
        hidden states are recomputed from them."""
        state = replace(
            self.state,
            profile_indptr=arrays.indptr,
            profile_items=arrays.items,
            profile_levels=arrays.levels,
            profile_parts=arrays.parts,
            item_level_counts=arrays.item_level_counts,
        )
        scorer = Scorer(state, self.xp, self.metadata)
        if state.case_input is not None:
            state.case_input = scorer.inputs_of_profiles(*arrays.by_item())
        return scorer

    # --- sizes and the profiles -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Users the model knows, each with a profile (possibly empty)."""
        return self.state.n_users

    @property
    def n_items(self) -> int:
        """Items the model knows."""
        return self.state.n_items

    @property
    def is_implicit(self) -> bool:
        """Whether the model was trained on implicit data (no rating block: it predicts no ratings)."""
        return not self.layout.ratings

    def rated_items(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """A user's profile, every rating the model was given for them: ``(item inner ids, levels)``."""
        user = int(check_ids([user], self.n_users, "user")[0])
        lo, hi = self.state.profile_indptr[user], self.state.profile_indptr[user + 1]
        return self.state.profile_items[lo:hi], self.state.profile_levels[lo:hi]

    def to_xp(self, array: np.ndarray) -> Any:
        """A NumPy array in this scorer's namespace (a torch tensor on the parameters' device, or itself)."""
        if self.xp is np:
            return array
        return self.xp.from_numpy(np.ascontiguousarray(array)).to(self.state.weights.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        """An array of this scorer's namespace as NumPy (copied off the device where it is torch)."""
        if self.xp is np:
            return np.asarray(array)
        return array.detach().to("cpu").numpy()

    # --- hidden states ----------------------------------------------------------------------------
    def profile_hidden(self, units: np.ndarray, levels: np.ndarray, lengths: np.ndarray) -> Any:
        """``p̂`` of ``B`` profiles, each a segment of (unit, level) entries of ``lengths`` (B,); -> (B, H) in ``xp``.

        ``p̂ = sigmoid(c + Σ W_x[unit] + Σ W_r[unit, level] + Σ D[unit])`` over each profile's entries.
        """
        return mf.sigmoid(self.profile_input(units, levels, lengths), self.xp)

    def profile_input(self, units: np.ndarray, levels: np.ndarray, lengths: np.ndarray) -> Any:
        """The hidden input ``c + Σ W_x[unit] + Σ W_r[unit, level] + Σ D[unit]`` of each profile; (B, H) in ``xp``."""
        state, layout, xp = self.state, self.layout, self.xp
        units_x, lengths_x = self.to_xp(units.astype(np.int64)), self.to_xp(lengths.astype(np.int64))
        total = 0.0
        if layout.interactions:
            total = total + mf.segment_sum(state.weights, units_x, lengths_x, xp)
        if layout.ratings:
            rows = self.to_xp((layout.rating_offset + units * layout.n_levels + levels).astype(np.int64))
            total = total + mf.segment_sum(state.weights, rows, lengths_x, xp)
        if state.conditional is not None:
            total = total + mf.segment_sum(state.conditional, units_x, lengths_x, xp)
        if isinstance(total, float):
            total = xp.zeros((lengths.shape[0], state.n_hidden), dtype=state.weights.dtype)
        return total + state.hidden_bias

    def user_hidden(self, users: np.ndarray) -> Any:
        """User-based models: the mean-field hidden state of known users from their whole profiles; (B, H)."""
        rows, lengths = csr_rows(self.state.profile_indptr, users)
        return self.profile_hidden(self.state.profile_items[rows], self.state.profile_levels[rows], lengths)

    def inputs_of_profiles(
        self, indptr: np.ndarray, units: np.ndarray, levels: np.ndarray, chunk_entries: int = 1 << 20
    ) -> Any:
        """The hidden input ``c + Σ W`` of every row of a CSR of profiles (e.g. all items of an item-based
        model); (rows, H).

        Rows are taken in chunks of about ``chunk_entries`` entries, so memory stays bounded.
        """
        parts, first, n_rows = [], 0, indptr.shape[0] - 1
        while first < n_rows:
            last = int(np.searchsorted(indptr, indptr[first] + chunk_entries, side="right")) - 1
            last = min(max(last, first + 1), n_rows)
            lo, hi = indptr[first], indptr[last]
            parts.append(self.profile_input(units[lo:hi], levels[lo:hi], np.diff(indptr[first : last + 1])))
            first = last
        if not parts:
            return self.xp.zeros((0, self.state.n_hidden), dtype=self.state.weights.dtype)
        return parts[0] if len(parts) == 1 else self.xp.concatenate(parts)

    # --- predictions of every item for some users -----------------------------------------------
    def predictions(self, users: Any) -> Predictions:
        """Every item's ``P(interacted)`` and rating distribution for known users ``users`` (B,)."""
        users = check_ids(users, self.n_users, "user")
        p_x, logits = self._catalogue(users)
        return self._predictions_of(p_x, logits, self.user_known[users], self.user_distribution[users], users.shape[0])

    def fold_in(self, items: Any, levels: Any) -> Predictions:
        """Every item's predictions for a new user from their ratings, without retraining (user-based models).

        The user's hidden state is ``p̂`` of their ratings exactly as for a training user; item-based
        models learn weights per training user and cannot take a new one.
        """
        if self.mode != "user":
            raise RecsysRBMError(
                "fold-in of a new user needs a user-based model (an item-based RBM learns weights per "
                "training user); train one with mode='user' (--mode user)"
            )
        items, levels = check_ratings_of_new_user(items, levels, self.n_items, self.n_levels)
        hidden = self.profile_hidden(items, levels, np.asarray([items.shape[0]]))
        known = np.asarray([items.shape[0] > 0])
        user_distribution = mf.smoothed_distribution(
            np.bincount(levels, minlength=self.n_levels).astype(np.float64), self.global_distribution
        )[None, :]
        p_x, logits = self._catalogue_of_hidden(hidden)
        return self._predictions_of(p_x, logits, known, user_distribution, 1)

    def _catalogue(self, users: np.ndarray) -> tuple[Any, Any]:
        """Every item's ``P(interacted)`` (B, G) and rating logits (B, G, K) for known users, in ``xp``
        (``None`` for a block the model lacks), before any fallback."""
        if self.mode == "user":
            return self._catalogue_of_hidden(self.user_hidden(users))
        # Item-based: every item is a case with hidden state p̂_i; each user is a unit with its own rows.
        state, layout, xp = self.state, self.layout, self.xp
        item_hidden = state.case_hidden  # (n_items, H)
        p_x = logits = None
        if layout.interactions:
            users_x = self.to_xp(users.astype(np.int64))
            p_x = mf.interaction_probability(item_hidden, state.weights[users_x], state.visible_bias[users_x], xp).T
        if layout.ratings:
            k = layout.n_levels
            rows = self.to_xp((layout.rating_offset + users[:, None] * k + np.arange(k)).reshape(-1).astype(np.int64))
            item_logits = mf.rating_logits(item_hidden, state.weights[rows], state.visible_bias[rows], k, xp)
            logits = xp.moveaxis(item_logits, 1, 0)  # (n_items, B, K) -> (B, n_items, K)
        return p_x, logits

    def _catalogue_of_hidden(self, hidden: Any) -> tuple[Any, Any]:
        """User-based: :meth:`_catalogue` from users' hidden states (B, H)."""
        state, layout, xp = self.state, self.layout, self.xp
        p_x = logits = None
        if layout.interactions:
            rows = slice(0, layout.n_units)
            p_x = mf.interaction_probability(hidden, state.weights[rows], state.visible_bias[rows], xp)
        if layout.ratings:
            rows = slice(layout.rating_offset, layout.rating_offset + layout.n_units * layout.n_levels)
            logits = mf.rating_logits(hidden, state.weights[rows], state.visible_bias[rows], layout.n_levels, xp)
        return p_x, logits

    def _predictions_of(
        self, p_x: Any, logits: Any, user_known: np.ndarray, user_distribution: np.ndarray, n: int
    ) -> Predictions:
        """:class:`Predictions` (NumPy, float64) from :meth:`_catalogue`'s arrays, with the fallbacks."""
        p_interacted = None if p_x is None else self.to_numpy(p_x).astype(np.float64)
        distribution = None
        if logits is not None:
            distribution = self._with_fallbacks(
                self.to_numpy(mf.softmax(logits, self.xp)),
                user_known,
                user_distribution,
                self.item_distribution,
                self.global_distribution,
            )
        return self._predictions(p_interacted, distribution, n)

    def _predictions(self, p_interacted: np.ndarray | None, distribution: np.ndarray | None, n: int) -> Predictions:
        model = p_interacted is not None
        if p_interacted is None:
            p_interacted = np.broadcast_to(mf.popularity_prior(self.item_counts), (n, self.n_items))
        return Predictions(p_interacted, distribution, model)

    def _with_fallbacks(
        self,
        values: np.ndarray,
        user_known: np.ndarray,
        user_values: np.ndarray,
        item_values: np.ndarray,
        global_value: Any,
    ) -> np.ndarray:
        """Rows of users or items without any rating get what the smoothed empirical distributions give.

        ``values`` (B, n_items, ...) is the model's (a distribution, or a quantity of it such as
        ``P(r ≥ t)``); ``user_values`` (B, ...), ``item_values`` (n_items, ...) and ``global_value``
        are the same quantity of the fallback distributions. Only the affected rows and columns are
        touched (the codes of :func:`meanfield.fallback_codes`): an unseen item gets the user's, an
        unseen user the item's, both unseen the global one.
        """
        values = values.astype(np.float64)
        unseen_items = np.flatnonzero(~self.item_known)
        if unseen_items.size:
            values[:, unseen_items] = user_values[:, None]
        unseen_users = np.flatnonzero(~user_known)
        if unseen_users.size:
            values[unseen_users] = item_values[None]
            if unseen_items.size:
                values[np.ix_(unseen_users, unseen_items)] = global_value
        return values

    # --- ranking ----------------------------------------------------------------------------------
    def scores(self, predictions: Predictions, score: str = mf.SCORES[0]) -> np.ndarray:
        """The ranking score of every item in ``predictions``; (B, n_items), higher is better."""
        check_score(score)
        return np.array(
            mf.ranking_score(
                score, predictions.p_interacted, predictions.distribution, self.rating_values, self.threshold
            ),
            dtype=np.float64,
        )

    def score_items(self, users: Any, score: str = mf.SCORES[0]) -> np.ndarray:
        """Ranking scores of every item for known users, in batches that bound memory; (B,) -> (B, n_items).

        Only what ``score`` needs is computed, in the parameters' precision: ``P(r ≥ t)`` straight
        from the logits (:func:`meanfield.probability_at_least_of_logits`), no rating distribution
        for ``p_interacted``. The numbers are :meth:`scores`' to float32 rounding.
        """
        check_score(score)
        users = check_ids(users, self.n_users, "user")
        out = np.empty((users.shape[0], self.n_items), dtype=np.float64)
        step = max(1, CATALOGUE_BUDGET // (self.n_items * max(self.n_levels, 1)))
        for start in range(0, users.shape[0], step):
            out[start : start + step] = self._ranking_scores(users[start : start + step], score)
        return out

    def _ranking_scores(self, users: np.ndarray, score: str) -> np.ndarray:
        """:meth:`score_items` for one batch of users."""
        if score == "expected" or not self.layout.ratings:
            return self.scores(self.predictions(users), score)
        p_x, logits = self._catalogue(users)
        p_interacted = (
            np.broadcast_to(mf.popularity_prior(self.item_counts), (users.shape[0], self.n_items))
            if p_x is None
            else self.to_numpy(p_x).astype(np.float64)
        )
        if score == "p_interacted":
            return np.array(p_interacted, dtype=np.float64)
        values, threshold = self.rating_values, self.threshold
        p_high = self._with_fallbacks(
            self.to_numpy(mf.probability_at_least_of_logits(logits, values, threshold, self.xp)),
            self.user_known[users],
            mf.probability_at_least(self.user_distribution[users], values, threshold),
            mf.probability_at_least(self.item_distribution, values, threshold),
            float(mf.probability_at_least(self.global_distribution, values, threshold)),
        )
        return p_high if score == "p_high" else p_interacted * p_high

    def recommend(
        self,
        users: Any,
        n: int = 10,
        exclude_rated: bool = True,
        min_ratings: int = 0,
        score: str = mf.SCORES[0],
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items per known user, best first: ``(inner ids (B, n), scores (B, n))``.

        ``exclude_rated`` drops every item in each user's profile; items with fewer than ``min_ratings``
        ratings in the profiles, and items where ``allowed`` (n_items,) bool is False, are never
        recommended. Where fewer than ``n`` candidates remain, rows end in id -1, score -inf.
        """
        users = check_ids(users, self.n_users, "user")
        scores = self.score_items(users, score)
        if exclude_rated:
            rows, lengths = csr_rows(self.state.profile_indptr, users)
            scores[np.repeat(np.arange(users.shape[0]), lengths), self.state.profile_items[rows]] = -np.inf
        scores[:, self.item_counts < min_ratings] = -np.inf
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        return top_n(scores, n)

    def top(
        self,
        predictions: Predictions,
        row: int = 0,
        exclude: Any = (),
        n: int = 10,
        min_ratings: int = 0,
        score: str = mf.SCORES[0],
    ) -> Ranked:
        """The best ``n`` items of one row of ``predictions``, leaving out ``exclude`` (inner ids) and items
        with fewer than ``min_ratings`` ratings in the profiles; each with its score and the parts it is made of."""
        one_row = _one_row(predictions, row)
        scores = self.scores(one_row, score)[0]
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        scores[self.item_counts < min_ratings] = -np.inf
        ids, best = top_n(scores[None, :], n)
        keep = best[0] > -np.inf
        return self.parts(one_row, ids[0][keep], score)

    def parts(self, predictions: Predictions, items: np.ndarray, score: str = mf.SCORES[0]) -> Ranked:
        """The scores of ``items`` (inner ids, in this order) in the first row of ``predictions`` and what each
        is made of: P(picked), P(rating ≥ threshold | picked), the expected rating."""
        items = check_ids(items, self.n_items, "item")
        one_row = _one_row(predictions, 0)
        distribution = None if one_row.distribution is None else one_row.distribution[0, items]
        return Ranked(
            items,
            self.scores(one_row, score)[0, items],
            np.asarray(one_row.p_interacted[0, items], dtype=np.float64),
            None if distribution is None else mf.probability_at_least(distribution, self.rating_values, self.threshold),
            None if distribution is None else mf.expected_rating(distribution, self.rating_values),
        )

    # --- pair predictions -------------------------------------------------------------------------
    def predict_distribution(self, users: Any, items: Any) -> np.ndarray:
        """``P(r = k)`` for each (user, item) pair, with fallbacks; (N,), (N,) -> (N, K)."""
        users, items = self._check_pairs(users, items)
        if not self.layout.ratings:
            raise RecsysRBMError("this model was trained on implicit data: it predicts no ratings")
        codes = mf.fallback_codes(self.user_known[users], self.item_known[items])
        out = np.empty((users.shape[0], self.n_levels), dtype=np.float64)
        model = codes == mf.MODEL
        if model.any():
            cases, units = (users, items) if self.mode == "user" else (items, users)
            out[model] = self._model_pairs(cases[model], units[model])
        if not model.all():
            rest = ~model
            out[rest] = mf.apply_fallbacks(
                out[rest],
                codes[rest],
                self.user_distribution[users[rest]],
                self.item_distribution[items[rest]],
                self.global_distribution,
                np,
            )
        return out

    def _model_pairs(self, cases: np.ndarray, units: np.ndarray) -> np.ndarray:
        """``softmax_k(b[g, k] + W_r[g, k]·p̂_c)`` for (case, unit) pairs; -> (N, K), in chunks.

        Two routes to the same numbers: with many pairs per case, each case's full row of logits
        ``b + p̂_c W_rᵀ`` is one dense product and the pairs are read from it; with few, each pair
        gathers its own ``K`` weight rows. The cheaper one (by multiply-adds) is taken.
        """
        state, layout, xp = self.state, self.layout, self.xp
        k, width = layout.n_levels, layout.n_units * layout.n_levels
        unique_cases, inverse = np.unique(cases, return_inverse=True)
        if self.mode == "user":
            hidden = self.user_hidden(unique_cases)
        else:
            hidden = state.case_hidden[self.to_xp(unique_cases.astype(np.int64))]
        out = np.empty((cases.shape[0], k), dtype=np.float64)
        rating_rows = slice(layout.rating_offset, layout.rating_offset + width)
        if unique_cases.shape[0] * width < cases.shape[0] * k:  # dense rows are cheaper than gathers
            order = np.argsort(inverse, kind="stable")
            step = max(1, PAIR_BUDGET // max(width, 1))
            bounds = np.searchsorted(inverse[order], np.arange(0, unique_cases.shape[0] + step, step))
            for chunk, start in enumerate(range(0, unique_cases.shape[0], step)):
                rows = order[bounds[chunk] : bounds[chunk + 1]]
                logits = hidden[start : start + step] @ state.weights[rating_rows].T + state.visible_bias[rating_rows]
                logits = self.to_numpy(logits).reshape(-1, layout.n_units, k)
                out[rows] = mf.softmax(logits[inverse[rows] - start, units[rows]], np)
            return out
        step = max(1, PAIR_BUDGET // (k * state.n_hidden))
        for start in range(0, cases.shape[0], step):
            chunk = slice(start, start + step)
            rows = self.to_xp((layout.rating_offset + units[chunk, None] * k + np.arange(k)).astype(np.int64))
            pair_hidden = hidden[self.to_xp(inverse[chunk].astype(np.int64))]  # (n, H)
            logits = xp.einsum("nh,nkh->nk", pair_hidden, state.weights[rows]) + state.visible_bias[rows]
            out[chunk] = self.to_numpy(mf.softmax(logits, xp))
        return out

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Expected ratings ``Σ_k P(r = k)·value_k``; (N,), (N,) -> (N,)."""
        return mf.expected_rating(self.predict_distribution(users, items), self.rating_values)

    def probability_at_least(self, users: Any, items: Any, threshold: float | None = None) -> np.ndarray:
        """``P(r ≥ threshold)`` for each pair (the model's like threshold by default); -> (N,)."""
        limit = self.threshold if threshold is None else threshold
        return mf.probability_at_least(self.predict_distribution(users, items), self.rating_values, limit)

    def fallback(self, users: Any, items: Any) -> np.ndarray:
        """Per pair, which rating prediction it gets: an index into :data:`meanfield.FALLBACK_NAMES`."""
        users, items = self._check_pairs(users, items)
        return mf.fallback_codes(self.user_known[users], self.item_known[items])

    def _check_pairs(self, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) pairs as two aligned int64 arrays of inner ids, else a one-line :class:`DataError`."""
        users = check_ids(users, self.n_users, "user")
        items = check_ids(items, self.n_items, "item")
        if users.shape != items.shape:
            raise DataError(f"users and items must pair up, got {users.shape[0]} users and {items.shape[0]} items")
        return users, items


# --- checks and top-N, shared by every caller -------------------------------------------------------
def _one_row(predictions: Predictions, row: int) -> Predictions:
    """The predictions of one of their users, as a one-row :class:`Predictions`."""
    distribution = None if predictions.distribution is None else predictions.distribution[row : row + 1]
    return Predictions(predictions.p_interacted[row : row + 1], distribution, predictions.interaction_model)


def csr_rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entry positions of the given CSR rows, concatenated, and each row's length: ``(positions, lengths)``."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    offsets = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    return starts[owner] + np.arange(owner.shape[0]) - offsets[owner], lengths


def check_score(score: str) -> str:
    """``score`` if it names a ranking score (:data:`meanfield.SCORES`), else a one-line :class:`RecsysRBMError`."""
    if score not in mf.SCORES:
        raise RecsysRBMError(f"unknown ranking score {score!r}; use one of {', '.join(mf.SCORES)}")
    return score


def check_ids(ids: Any, n: int, kind: str) -> np.ndarray:
    """Inner indices as int64 (M,), each in ``0..n-1``, else a one-line :class:`DataError`."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size and ids.dtype.kind not in "iu":
        raise DataError(f"{kind} indices must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = int(ids[(ids < 0) | (ids >= n)][0])
        raise DataError(f"{kind} inner index {bad} is out of range 0..{n - 1}")
    return ids


def check_ratings_of_new_user(items: Any, levels: Any, n_items: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ratings as (item inner ids, levels) int64 (M,) each, else a one-line :class:`DataError`."""
    items = check_ids(items, n_items, "item")
    levels = np.asarray(levels).reshape(-1)
    if levels.size and levels.dtype.kind not in "iu":
        raise DataError(f"rating levels must be integers, got dtype {levels.dtype}")
    levels = levels.astype(np.int64)
    if levels.shape != items.shape:
        raise DataError(f"a fold-in needs one level per item, got {items.shape[0]} items, {levels.shape[0]} levels")
    if levels.size and (levels.min() < 0 or levels.max() >= n_levels):
        raise DataError(f"rating levels must lie in 0..{n_levels - 1}, got {levels.min()}..{levels.max()}")
    if np.unique(items).shape[0] != items.shape[0]:
        raise DataError("a fold-in takes each item once; the ratings name an item twice")
    return items, levels


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` columns of each row, descending (ties by ascending id): ``(ids (B, n), scores (B, n))``.

    ``n`` is capped at the number of columns; entries scored -inf (filtered) come back as id -1.
    """
    n = max(0, min(int(n), scores.shape[1]))
    if n == 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64), np.empty((scores.shape[0], 0))
    if n < scores.shape[1]:
        candidates = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        candidates = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    ids = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    best = np.take_along_axis(candidate_scores, order, axis=1)
    ids[np.isneginf(best)] = -1
    return ids, best
