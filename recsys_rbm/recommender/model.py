"""The recommender RBM: trained through the core trainer, scored through the one scorer.

:class:`RBMRecommender` is the library's recommender. ``fit`` builds the recommender's visible
layer from the core's blocks (:mod:`recsys_rbm.recommender.sparse`), hands the core
:class:`~recsys_rbm.train.trainer.Trainer` a :class:`~recsys_rbm.recommender.objective.RecommenderObjective`
(sparse statistics of batches of cases) and keeps the best epoch by validation: NDCG@10 for the
joint model, RMSE for the ratings model. Every prediction then goes through a
:class:`~recsys_rbm.recommender.scorer.Scorer` over torch tensors, the same code the torch-free
command line runs over NumPy arrays. ``save`` writes the scorer's state (one place names the
tensors: :mod:`recsys_rbm.recommender.state`).

Its public methods take and return the data's own ids (integers or text, as the ratings had
them) with titles where known: :meth:`RBMRecommender.predict`, :meth:`~RBMRecommender.recommend`,
:meth:`~RBMRecommender.recommend_new_user`, :meth:`~RBMRecommender.similar` and
:meth:`~RBMRecommender.explain`. Inner indices (tensor rows) stay behind ``model.scorer`` and the
evaluation harness's two methods ``predict_indices`` and ``score_items``.

Example::

    model = RBMRecommender().fit("ratings.csv")          # a path, or a pandas or polars DataFrame
    model.predict(["alice"], ["sku-17"])                 # expected ratings
    model.recommend("alice", n=5)                        # [Recommendation(item=..., title=..., score=...)]
    model.recommend_new_user({"sku-17": 5, "sku-3": 2})  # fold-in, no retraining
    model.save("shop.safetensors")
    RBMRecommender.load("shop.safetensors").similar("sku-17")

Conditional RBM (``config.conditional``): the rated-set vector of a case is the set of units it
rated **in the training ratings passed to** :meth:`fit`, never test or validation ratings, nor
which test items exist; a fold-in sees exactly what a training user saw. The joint model's
interaction block plays the same part (it feeds "which items were rated" to the hidden units)
and is modelled too.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import torch

from recsys_rbm.data.fingerprint import ratings_fingerprint
from recsys_rbm.data.ids import IdMap, describe_id
from recsys_rbm.data.movies import Movies
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.errors import CheckpointError, DataError, RecsysRBMError, UnknownItemsWarning
from recsys_rbm.io.checkpoint import load_checkpoint, save_checkpoint
from recsys_rbm.rbm.model import RBM
from recsys_rbm.recommender import explain as explanations
from recsys_rbm.recommender import meanfield as mf
from recsys_rbm.recommender.config import RecommenderConfig, like_threshold
from recsys_rbm.recommender.metrics import RankingAccumulator
from recsys_rbm.recommender.objective import DIVERGENCE_MIN_RATINGS, RecommenderObjective
from recsys_rbm.recommender.profiles import DEFAULT_STEPS
from recsys_rbm.recommender.results import Anomaly, Reason, ScoredItem, TopItems
from recsys_rbm.recommender.scorer import Predictions, Scorer, csr_rows, top_n
from recsys_rbm.recommender.sparse import CaseMatrix, RecommenderRBM, visible_layer
from recsys_rbm.recommender.state import HELD_OUT, TRAINED, VALIDATION, Layout, ModelState, ProfileArrays, to_tensors
from recsys_rbm.runtime import make_generator, resolve_device
from recsys_rbm.train.config import config_from_dict, config_to_dict
from recsys_rbm.train.trainer import EpochRecord, Trainer

if TYPE_CHECKING:
    from recsys_rbm.train.distributed import Parallel

ProgressCallback = Callable[[EpochRecord], None]
VALIDATION_K = 10  # the joint model's early stopping watches NDCG@10
VALIDATION_FRACTION = 0.05  # held out for early stopping when fit() is given no validation ratings


class RBMRecommender:
    """RBM collaborative filtering implementing the :class:`~recsys_rbm.recommender.protocol.Recommender` protocol.

    Settings are keywords, the fields of :class:`~recsys_rbm.recommender.config.RecommenderConfig`
    (``RBMRecommender(hidden=200, epochs=50)``; ``kind="ratings"`` for the rater), or a whole
    config object; anything left out takes the model's default.
    """

    def __init__(self, config: RecommenderConfig | None = None, **settings: Any) -> None:
        if config is None or settings:
            given = {} if config is None else config_to_dict(config)
            config = config_from_dict(RecommenderConfig, {**given, **settings})
        self._requested = config  # as given: the batch size's default is resolved anew by each fit
        self.config = config
        self.device = resolve_device(self.config.device)
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.best_measure: float | None = None  # the validation measure at the best epoch
        self.fit_seconds: float | None = None
        self.fingerprint: str | None = None
        self.metadata: dict[str, Any] = {}  # extra metadata read back by load (e.g. item titles)
        self.scorer: Scorer | None = None
        self.item_table: Movies | None = None  # titles and genres by raw item id, when given
        self._train: Ratings | None = None

    @property
    def name(self) -> str:
        config = self.config
        if config.kind == "joint":
            return f"joint RBM ({config.mode}-based)"
        base = "U-RBM" if config.mode == "user" else "I-RBM"
        return f"{base} (conditional)" if config.conditional else base

    @property
    def validation_measure(self) -> str:
        """What early stopping watches: ``validation_ndcg`` (joint model) or ``validation_rmse`` (ratings model)."""
        return "validation_ndcg" if self.config.kind == "joint" else "validation_rmse"

    @property
    def best_validation_rmse(self) -> float | None:
        """The validation RMSE of the kept epoch, when the data has ratings."""
        record = self.best_record
        return None if record is None else record.measures.get("validation_rmse")

    @property
    def best_record(self) -> EpochRecord | None:
        if self.best_epoch is None or not self.history:
            return None
        return self.history[min(self.best_epoch, len(self.history)) - 1]

    @property
    def n_users(self) -> int:
        return self._require_fitted().n_users

    @property
    def n_items(self) -> int:
        return self._require_fitted().n_items

    @property
    def n_levels(self) -> int:
        return self._require_fitted().n_levels

    @property
    def rating_values(self) -> np.ndarray:
        return self._require_fitted().rating_values

    @property
    def _user_ids(self) -> IdMap:
        return self._require_fitted().state.user_ids

    @property
    def _item_ids(self) -> IdMap:
        return self._require_fitted().state.item_ids

    # --- fitting ----------------------------------------------------------------------------------
    def fit(
        self,
        train: Ratings | Any,
        validation: Ratings | None = None,
        *,
        validation_fraction: float = VALIDATION_FRACTION,
        progress: bool | ProgressCallback = True,
        items: Any = None,
        parallel: Parallel | None = None,
    ) -> Self:
        """Train on ``train``, keep the epoch that does best on validation and stop early.

        ``train`` is :class:`~recsys_rbm.data.ratings.Ratings`, or a ratings table: a CSV, TSV or
        Parquet path, or a pandas or polars DataFrame, read by
        :func:`~recsys_rbm.data.tables.read_ratings_table` (columns recognised by name).
        Validation ratings (same id space) drive early stopping: ``validation`` when given, else a
        seeded random ``validation_fraction`` of ``train`` (5%; 0 trains on everything for
        ``config.epochs`` epochs, without early stopping). They never train the model, but once it
        is trained they join the users' profiles: every list is conditioned on them and recommends
        none of their items. ``items`` (a Movies table, or a path or DataFrame of ids and titles)
        gives results their titles. ``history`` gets one :class:`~recsys_rbm.train.trainer.EpochRecord`
        per epoch. ``progress``: ``True`` shows a progress bar on a terminal (nothing when stderr is
        not one), ``False`` shows nothing, a function is called with each epoch's record.

        With ``parallel`` (see :func:`recsys_rbm.train.distributed.process_group`), this process trains on
        its share of every batch and the gradients are summed over the processes: every process
        ends with the model one process would train (``config.device`` should be ``parallel.device``).
        """
        if not isinstance(train, Ratings):
            from recsys_rbm.data.tables import read_ratings_table

            train = read_ratings_table(train).ratings
        requested = self._requested
        config = self.config = requested.for_data(train.n_users if requested.mode == "user" else train.n_items)
        if validation is None:
            from recsys_rbm.recommender.splits import carve_validation

            train, validation = carve_validation(train, validation_fraction, config.seed)
        if items is not None:
            self.item_table = _items_table(items, train)
        _check_ratings(train, "training", config.kind)
        if validation is not None and len(validation) > 0:
            _check_same_space(train, validation)
        else:
            validation = None
        started = time.perf_counter()
        self._train, self.fingerprint = train, ratings_fingerprint(train)
        trained = _profile_arrays((train, TRAINED))
        layout = _layout(train, config)
        cases, units = (train.users, train.items) if config.mode == "user" else (train.items, train.users)
        n_cases = train.n_users if config.mode == "user" else train.n_items
        matrix = CaseMatrix.from_arrays(cases, units, train.levels, n_cases, self.device)
        generator = make_generator(config.seed)
        model = self._initial_model(layout, train, generator)
        measure, baseline = self._measurements(model, train, validation, generator, trained)
        objective = RecommenderObjective(
            model, matrix, config, measure, None if validation is None else self.validation_measure, baseline
        )
        all_reduce = None
        if parallel is not None:
            from recsys_rbm.recommender.distributed import CaseSharding
            from recsys_rbm.train.distributed import data_parallel

            objective, all_reduce = data_parallel(objective, parallel, CaseSharding())
        trainer = Trainer(objective, config.train_config(), generator, all_reduce)

        report, display = _progress_reporter(progress, config.epochs, self.validation_measure)  # type: ignore[arg-type]

        def on_epoch(trainer: Trainer, record: EpochRecord) -> None:  # the model can be saved from ``progress``
            self.history, self.best_epoch, self.best_measure = trainer.history, trainer.best_epoch, trainer.best_measure
            if report is not None:
                report(record)

        with display:
            trainer.fit(on_epoch_end=on_epoch)
        self.history = trainer.history
        self.best_epoch = trainer.best_epoch if validation is not None else len(trainer.history)
        self.best_measure = trainer.best_measure
        known = [(train, TRAINED)] + ([] if validation is None else [(validation, VALIDATION)])
        self.scorer = self._scorer_of(model, _profile_arrays(*known))  # lists are conditioned on all that is known
        self.fit_seconds = time.perf_counter() - started
        return self

    def _initial_model(self, layout: Layout, train: Ratings, generator: torch.Generator) -> RecommenderRBM:
        """``W ~ N(0, σ²)``, ``c = 0``, ``D = 0``; visible biases from the base rates: each unit's share of
        cases for the interaction block, its smoothed level frequencies for the rating block."""
        config = self.config
        units = train.items if config.mode == "user" else train.users
        n_cases = train.n_users if config.mode == "user" else train.n_items
        k = train.n_levels
        means = []
        if layout.interactions:
            means.append(np.bincount(units, minlength=layout.n_units) / max(n_cases, 1))
        if layout.ratings:
            counts = np.bincount(units * k + train.levels, minlength=layout.n_units * k).reshape(-1, k)
            counts = counts.astype(np.float64)
            means.append(mf.smoothed_distribution(counts, mf.global_distribution(counts)).reshape(-1))
        rbm = RBM.initialise(
            visible_layer(layout),
            config.hidden,  # type: ignore[arg-type]
            generator,
            weight_std=config.weight_std,
            visible_mean=torch.from_numpy(np.concatenate(means)),
            device=self.device,
        )
        conditional = None
        if config.conditional:
            conditional = torch.zeros(layout.n_units, config.hidden, device=self.device)  # type: ignore[arg-type]
        return RecommenderRBM(rbm, conditional)

    def _measurements(
        self,
        model: RecommenderRBM,
        train: Ratings,
        validation: Ratings | None,
        generator: torch.Generator,
        trained: ProfileArrays,
    ) -> tuple[Callable[[], dict[str, float | None]], float | None]:
        """The per-epoch measurement and the global mean's validation RMSE (the divergence baseline).

        While training, profiles hold the training ratings alone: validation ratings are what is predicted.
        """
        config = self.config
        explicit = not train.is_implicit
        monitor = _monitor_sample(train, config, generator) if explicit else None
        ranking = None
        if validation is not None and config.kind == "joint":
            ranking = _ranking_sample(train, validation, config, trained)
        baseline = None
        if explicit and validation is not None and len(validation) >= DIVERGENCE_MIN_RATINGS:
            baseline = float(np.sqrt(np.mean((validation.values - train.values.mean()) ** 2)))

        def measure() -> dict[str, float | None]:
            scorer = self.scorer = self._scorer_of(model, trained)  # current for this epoch's callbacks (and saves)
            measures: dict[str, float | None] = {}
            if monitor is not None:
                measures["train_rmse"] = _rmse(scorer, monitor)
            if explicit and validation is not None:
                measures["validation_rmse"] = _rmse(scorer, validation)
            if ranking is not None:
                measures["validation_ndcg"] = ranking(scorer)
            return measures

        return measure, baseline

    def _scorer_of(self, model: RecommenderRBM, arrays: ProfileArrays) -> Scorer:
        """A scorer over ``model``'s parameters (the live tensors, not copies) and the profiles ``arrays``."""
        train, config = self._train, self.config
        assert train is not None
        parameters = model.parameters()
        state = ModelState(
            model=config.kind,
            mode=config.mode,  # type: ignore[arg-type]
            layout=model.layout,
            weights=parameters["weights"],
            visible_bias=parameters["visible_bias"],
            hidden_bias=parameters["hidden_bias"],
            conditional=parameters.get("conditional_weights"),
            rating_values=np.asarray(train.rating_values, dtype=np.float64),
            profile_indptr=arrays.indptr,
            profile_items=arrays.items,
            profile_levels=arrays.levels,
            profile_parts=arrays.parts,
            item_level_counts=arrays.item_level_counts,
            user_ids=train.user_ids,
            item_ids=train.item_ids,
        )
        scorer = Scorer(state, torch, {"config": config_to_dict(config), **self.metadata})
        if config.mode == "item":
            with torch.no_grad():
                state.case_input = scorer.inputs_of_profiles(*arrays.by_item())
        return scorer

    def add_to_profiles(self, ratings: Ratings) -> Self:
        """Put ratings held out to measure the model (a test set, same id space) into the users' profiles.

        They never trained the model; from now on each user's list is conditioned on them too and
        recommends none of their items. ``info`` and the checkpoint count them as held out.
        """
        scorer = self._require_fitted()
        if self._train is not None:
            _check_same_space(self._train, ratings)
        state = scorer.state
        entries = np.repeat(np.arange(state.n_users), np.diff(state.profile_indptr))
        arrays = ProfileArrays.of(
            np.concatenate([entries, ratings.users]),
            np.concatenate([state.profile_items, ratings.items]),
            np.concatenate([state.profile_levels, ratings.levels]),
            np.concatenate([state.profile_parts, np.full(len(ratings), HELD_OUT)]),
            (state.n_users, state.n_items, scorer.n_levels),
        )
        with torch.no_grad():
            self.scorer = scorer.with_profiles(arrays)
        return self

    # --- the public API: the data's own ids ---------------------------------------------------------
    @property
    def users(self) -> np.ndarray:
        """The raw ids of the users the model knows (each with a profile)."""
        return self._user_ids.raw_ids

    @property
    def items(self) -> np.ndarray:
        """The raw ids of the items the model knows."""
        return self._item_ids.raw_ids

    def title(self, item: Any) -> str | None:
        """An item's title (raw id), where the item table given to :meth:`fit` (or saved) has one."""
        if self.item_table is None or not bool(self.item_table.contains([item])[0]):
            return None
        return str(self.item_table.title(item))

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Expected ratings for (user, item) pairs of raw ids (scalars or sequences of equal length); (N,).

        Unknown ids are a one-line :class:`~recsys_rbm.errors.UnknownIdError`; pairs of a known user
        and an item without ratings get the documented fallback distribution.
        """
        inner_users, inner_items = self._inner_pairs(users, items)
        with torch.no_grad():
            return self._require_fitted().predict(inner_users, inner_items)

    def recommend(
        self,
        users: Any,
        n: int = 10,
        *,
        filter_rated: bool = True,
        items: Any = None,
        exclude: Any = None,
        min_ratings: int = 1,
        score: str = mf.SCORES[0],
    ) -> tuple[np.ndarray, np.ndarray] | TopItems:
        """The ``n`` best items for one known user (a raw id) or many (a sequence of them), best first.

        One user gives ``(items, scores)``, two arrays; several give :class:`TopItems`, one list each.
        ``filter_rated`` leaves out every item in the user's profile (the ratings that trained the
        model and those held out from it); ``items`` limits the candidates to those raw ids (unknown
        ones are left out with an :class:`~recsys_rbm.errors.UnknownItemsWarning`); ``exclude``
        never recommends these (unknown ones are ignored); items with fewer than ``min_ratings``
        ratings are never recommended. ``score`` is the ranking score (``p_liked``, the default,
        ``p_interacted``, ``p_high`` or ``expected``). :meth:`describe` says what a score is made of.
        """
        scorer = self._require_fitted()
        one = _is_one_id(users)
        raw_users = [users] if one else list(np.asarray(users, dtype=object).reshape(-1))
        inner = self._user_ids.to_inner(np.asarray(raw_users))
        allowed = self._candidates(items, exclude, min_ratings)
        with torch.no_grad():
            ids, scores = scorer.recommend(inner, n, exclude_rated=filter_rated, score=score, allowed=allowed)
        keep = ids >= 0
        lists = [self.items[ids[row][keep[row]]] for row in range(ids.shape[0])]
        values = [scores[row][keep[row]] for row in range(ids.shape[0])]
        if one:
            return lists[0], values[0]
        return TopItems([_plain_id(user) for user in raw_users], lists, values)

    def recommend_new_user(
        self,
        ratings: Any,
        n: int = 10,
        *,
        items: Any = None,
        exclude: Any = None,
        min_ratings: int = 1,
        score: str = mf.SCORES[0],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items for a new user from their ratings, by fold-in (no retraining; user-based models):
        ``(items, scores)``, best first, none of the rated items among them.

        ``ratings`` maps raw item ids to ratings on the model's scale (a dict, or (item, rating)
        pairs); for a model trained on implicit data, a sequence of item ids is enough. Items the
        model does not know are left out with an :class:`~recsys_rbm.errors.UnknownItemsWarning`.
        ``items``, ``exclude``, ``min_ratings`` and ``score`` as in :meth:`recommend`.
        """
        scorer = self._require_fitted()
        units, levels = self._profile(ratings)
        allowed = self._candidates(items, exclude, min_ratings)
        allowed[units] = False
        with torch.no_grad():
            predictions = scorer.fold_in(units, levels)
        ids, scores = top_n(np.where(allowed, scorer.scores(predictions, score)[0], -np.inf)[None, :], n)
        keep = ids[0] >= 0
        return self.items[ids[0][keep]], scores[0][keep]

    def describe(self, user: Any, items: Any, *, score: str = mf.SCORES[0]) -> list[ScoredItem]:
        """What each of ``items`` (raw ids) scores for a known ``user`` and what the score is made of: P(picks
        it), P(likes it | picks it), the expected rating, and ``because``, the user's own items that raise it most
        (user-based models; leave-one-out effects through the hidden units, as :meth:`explain`)."""
        scorer = self._require_fitted()
        inner = int(self._user_ids.to_inner([user])[0])
        units, levels = scorer.rated_items(inner)
        with torch.no_grad():
            predictions = scorer.predictions([inner])
        return self._scored(predictions, units, levels, self._item_ids.to_inner(_id_list(items)), score)

    def describe_new_user(self, ratings: Any, items: Any, *, score: str = mf.SCORES[0]) -> list[ScoredItem]:
        """:meth:`describe` for a new user given by their ratings (as :meth:`recommend_new_user` takes them)."""
        scorer = self._require_fitted()
        units, levels = self._profile(ratings)
        with torch.no_grad():
            predictions = scorer.fold_in(units, levels)
        return self._scored(predictions, units, levels, self._item_ids.to_inner(_id_list(items)), score)

    def similar_items(self, item: Any, n: int = 10, *, min_ratings: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items closest to ``item`` (raw id) by the cosine of their learned vectors:
        ``(items, similarities)``, closest first. Items with fewer than ``min_ratings`` ratings are left
        out (default: 20, or the median item's count on a table where that is fewer; as ``rbm-rec similar``)."""
        scorer = self._require_fitted()
        if min_ratings is None:
            min_ratings = explanations.similar_min_ratings(scorer)
        inner = int(self._item_ids.to_inner([item])[0])
        ids, cosines = explanations.similar_items(scorer, inner, self.n_items)
        keep = (ids >= 0) & (scorer.item_counts[np.maximum(ids, 0)] >= min_ratings)
        return self.items[ids[keep][:n]], cosines[keep][:n]

    def explain(self, user: Any, item: Any, n: int = 5, *, score: str = mf.SCORES[0]) -> list[Reason]:
        """Which of ``user``'s own ratings push ``item``'s score up or down most (raw ids), strongest first.

        Each :class:`Reason` carries the effect ``log s(profile) − log s(profile without that rating)``
        through the hidden units (see :func:`~recsys_rbm.recommender.explain.explain`); positive effects raise the item.
        """
        scorer = self._require_fitted()
        inner_user = int(self._user_ids.to_inner([user])[0])
        target = int(self._item_ids.to_inner([item])[0])
        units, levels = scorer.rated_items(inner_user)
        if units.size == 0:
            return []
        with torch.no_grad():
            effects = explanations.explain(scorer, units, levels, [target], score)[0]
        order = np.argsort(-np.abs(effects), kind="stable")[:n]
        return [
            Reason(
                self._raw_item(units[j]),
                self._title(units[j]),
                float(scorer.rating_values[levels[j]]),
                float(effects[j]),
            )
            for j in order
        ]

    def anomalies(self, n: int = 10, reasons: int = 3) -> list[Anomaly]:
        """The ``n`` training users whose profiles are least typical under the model, most atypical first,
        each with its ``reasons`` least likely ratings given the rest of the profile (user-based models)."""
        from recsys_rbm.recommender.anomalies import atypicality, surprising_ratings

        scorer = self._require_fitted()
        with torch.no_grad():
            scored = atypicality(scorer)
            out = []
            for position in scored.ranking()[:n].tolist():
                user = int(scored.users[position])
                why = surprising_ratings(scorer, user, reasons) if reasons else []
                out.append(
                    Anomaly(
                        self._user_ids.raw_ids[user].item(),
                        float(scored.score[position]),
                        int(scored.n_ratings[position]),
                        float(scored.free_energy[position]),
                        tuple(
                            Reason(
                                self._raw_item(s.item),
                                self._title(s.item),
                                float(scorer.rating_values[s.level]),
                                s.log_p,
                            )
                            for s in why
                        ),
                    )
                )
        return out

    def imagine(
        self, likes: Any = (), dislikes: Any = (), n: int = 5, steps: int = DEFAULT_STEPS, seed: int = 0
    ) -> list[list[tuple[Any, float]]]:
        """``n`` whole profiles sampled by block Gibbs sampling with the ``likes`` (raw item ids) held at the top
        rating and the ``dislikes`` at the lowest: each a list of ``(raw item id, rating)``, best-rated first.

        Needs the joint user-based model (see :func:`~recsys_rbm.recommender.profiles.sample_profiles`); ``seed``
        makes it reproducible; ``steps`` defaults to :data:`~recsys_rbm.recommender.profiles.DEFAULT_STEPS` (why: see
        there).
        """
        from recsys_rbm.recommender.profiles import imagine

        scorer = self._require_fitted()
        liked = self._item_ids.to_inner(list(likes)) if len(likes) else np.zeros(0, dtype=np.int64)
        disliked = self._item_ids.to_inner(list(dislikes)) if len(dislikes) else np.zeros(0, dtype=np.int64)
        with torch.no_grad():
            levels = imagine(scorer, liked, disliked, n=n, steps=steps, seed=seed)
        profiles = []
        for row in levels:
            picked = np.flatnonzero(row >= 0)
            picked = picked[np.lexsort((picked, -row[picked]))]
            profiles.append([(self._raw_item(i), float(scorer.rating_values[row[i]])) for i in picked])
        return profiles

    def _candidates(self, items: Any, exclude: Any, min_ratings: int) -> np.ndarray:
        """(n_items,) bool: the items a list may hold (``items`` and ``exclude`` are raw ids, or None)."""
        scorer = self._require_fitted()
        allowed = scorer.item_counts >= min_ratings
        if items is not None:
            wanted = _id_list(items)
            known = self._item_ids.contains(wanted)
            _warn_unknown(wanted, known, "asked-for candidate")
            chosen = np.zeros_like(allowed)
            chosen[self._item_ids.to_inner(wanted[known])] = True
            allowed &= chosen
        if exclude is not None:
            left_out = _id_list(exclude)
            allowed[self._item_ids.to_inner(left_out[self._item_ids.contains(left_out)])] = False
        return allowed

    def _scored(
        self, predictions: Predictions, units: np.ndarray, levels: np.ndarray, targets: np.ndarray, score: str
    ) -> list[ScoredItem]:
        """``targets``' scores and their parts from one row of ``predictions``, with the profile's reasons."""
        scorer = self._require_fitted()
        parts = scorer.parts(predictions, targets, score)
        reasons: list[tuple[Any, ...]] = [() for _ in targets]
        if scorer.mode == "user" and units.size and targets.size:
            with torch.no_grad():
                effects = explanations.explain(scorer, units, levels, targets, score)  # (T, M)
            for row, item_effects in enumerate(effects):
                order = np.argsort(-item_effects, kind="stable")[:2]
                reasons[row] = tuple(self._raw_item(units[j]) for j in order if item_effects[j] > 0)
        return [
            ScoredItem(
                self._raw_item(item),
                self._title(item),
                float(parts.score[row]),
                float(parts.p_interacted[row]),
                None if parts.p_like is None else float(parts.p_like[row]),
                None if parts.expected is None else float(parts.expected[row]),
                reasons[row],
            )
            for row, item in enumerate(targets.tolist())
        ]

    def _profile(self, ratings: Any) -> tuple[np.ndarray, np.ndarray]:
        """A new user's ratings (raw item id -> rating) as inner ids and levels, checked against the scale; items
        the model does not know are left out with a warning."""
        scorer = self._require_fitted()
        if isinstance(ratings, dict):
            pairs = list(ratings.items())
        else:
            pairs = [(entry, None) if not isinstance(entry, (tuple, list)) else tuple(entry) for entry in ratings]
        items = [item for item, _ in pairs]
        if scorer.is_implicit:
            values = np.ones(len(pairs))
        else:
            if any(len(pair) != 2 or pair[1] is None for pair in pairs):
                raise DataError("a new user's ratings are (item, rating) pairs, or a dict of item -> rating")
            values = np.asarray([float(value) for _, value in pairs], dtype=np.float64)
        wanted = _id_list(items)
        known = self._item_ids.contains(wanted) if len(wanted) else np.zeros(0, dtype=bool)
        _warn_unknown(wanted, known, "rated")
        units = self._item_ids.to_inner(wanted[known]) if known.any() else np.zeros(0, dtype=np.int64)
        values = values[known]
        scale = self._train.scale if self._train is not None else None
        from recsys_rbm.data.scale import RatingScale

        scale = scale or RatingScale(tuple(scorer.rating_values.tolist()))
        levels, on_scale = scale.levels(values)
        if not on_scale.all():
            bad = values[~on_scale][0]
            raise DataError(
                f"rating {bad:g} is off the model's scale ({', '.join(f'{v:g}' for v in scorer.rating_values)}); "
                "use one of those values"
            )
        return np.asarray(units, dtype=np.int64), levels

    def _inner_pairs(self, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        users, items = np.atleast_1d(np.asarray(users)), np.atleast_1d(np.asarray(items))
        if users.shape != items.shape:
            raise DataError(f"users and items must pair up, got {users.shape[0]} users and {items.shape[0]} items")
        return self._user_ids.to_inner(users), self._item_ids.to_inner(items)

    def _raw_item(self, inner: Any) -> Any:
        return self._item_ids.raw_ids[int(inner)].item()

    def _title(self, inner: Any) -> str | None:
        return self.title(self._item_ids.raw_ids[int(inner)])

    # --- the evaluation harness's interface and inference on inner indices --------------------------
    def predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Expected ratings ``Σ_k P(r = k)·value_k`` on the data's scale for inner indices; (N,), (N,) -> (N,).

        A model of implicit data predicts no ratings: NaN for every pair, as the evaluation harness
        expects of a ranker (:meth:`predict` says so in one line instead).
        """
        scorer = self._require_fitted()
        if scorer.is_implicit:
            return np.full(np.asarray(users).shape, np.nan)
        with torch.no_grad():
            return scorer.predict(users, items)

    def score_items(self, users: np.ndarray, score: str = mf.SCORES[0]) -> np.ndarray:
        """Ranking score of every item per user, higher is better (see ``meanfield.ranking_score``); (B,) -> (B, I)."""
        with torch.no_grad():
            return self._require_fitted().score_items(users, score)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path, extra_metadata: dict[str, Any] | None = None) -> Path:
        """Write the checkpoint (tensors named by :mod:`recsys_rbm.recommender.state`); scoring needs nothing else.

        The metadata records the config, seed, history, best epoch and validation measure, the
        training fingerprint, and ``extra_metadata`` (e.g. ``{"dataset": ..., "movies": ...}``).
        """
        scorer = self._require_fitted()
        tensors, own = to_tensors(scorer.state, torch.from_numpy)
        tensors = {name: t.detach() for name, t in tensors.items()}
        own |= {
            "config": config_to_dict(self.config),
            "name": self.name,
            "seed": self.config.seed,
            "like_threshold": scorer.threshold,
            "training_fingerprint": self.fingerprint,
            "best_epoch": self.best_epoch,
            "validation_measure": self.validation_measure,
            "best_validation": self.best_measure,
            "best_validation_rmse": self.best_validation_rmse,
            "fit_seconds": self.fit_seconds,
            "history": [record.as_dict() for record in self.history],
        }
        if self.item_table is not None and "movies" not in (extra_metadata or {}):
            own["movies"] = self.item_table.to_dict()
        clash = sorted(set(own) & set(extra_metadata or {}))
        if clash:
            raise RecsysRBMError(f"extra_metadata may not override the model's own fields: {', '.join(clash)}")
        return save_checkpoint(path, tensors, {**(extra_metadata or {}), **own})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> RBMRecommender:
        """Rebuild a saved model (no training data needed); any problem is a one-line CheckpointError."""
        tensors, metadata = load_checkpoint(path, expected_kind=None, device=device)
        scorer = Scorer.from_checkpoint(tensors, metadata, torch, lambda t: t.cpu().numpy(), path)
        stored = metadata.get("config")
        if stored is None:  # written before settings were stored: the model's own facts
            config = RecommenderConfig(kind=scorer.state.model, mode=scorer.mode, device=device)
        else:
            try:
                config = config_from_dict(RecommenderConfig, {**stored, "device": device})
            except (RecsysRBMError, TypeError, ValueError) as error:
                raise CheckpointError(
                    f"{path}: its stored settings do not validate ({error}); it was written by another version or "
                    "edited: retrain it"
                ) from None
        model = cls(config)
        model.scorer = scorer
        model.metadata = metadata
        model.history = [
            EpochRecord.from_dict(record) for record in metadata.get("history", []) if "measures" in record
        ]
        model.best_epoch = metadata.get("best_epoch")
        model.best_measure = metadata.get("best_validation")
        model.fit_seconds = metadata.get("fit_seconds")
        model.fingerprint = metadata.get("training_fingerprint")
        if metadata.get("movies") is not None:
            try:
                model.item_table = Movies.from_dict(metadata["movies"])
            except (KeyError, TypeError, ValueError, IndexError) as error:
                raise CheckpointError(f"{path}: the item table is corrupt ({error}); retrain it") from None
        return model

    def _require_fitted(self) -> Scorer:
        if self.scorer is None:
            raise RecsysRBMError("the model is not trained yet: call fit() or load() first")
        return self.scorer


# --- helpers ------------------------------------------------------------------------------------
def _progress_reporter(
    progress: bool | ProgressCallback, epochs: int, measure: str
) -> tuple[ProgressCallback | None, Any]:
    """What ``fit(progress=...)`` calls after each epoch, and the display to hold open while it trains."""
    import contextlib

    if callable(progress):
        return progress, contextlib.nullcontext()
    if not progress or not sys.stderr.isatty():
        return None, contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    display = Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(stderr=True),
        transient=True,
    )
    task = display.add_task("epochs", total=epochs, note="")
    words = "validation NDCG@10" if measure == "validation_ndcg" else "validation RMSE"

    def report(record: EpochRecord) -> None:
        value = record.measures.get(measure)
        note = "" if value is None else f"{words} {value:.4f}" + ("  best" if record.is_best else "")
        display.update(task, completed=record.epoch, note=note)

    return report, display


def _is_one_id(value: Any) -> bool:
    """Whether ``value`` is one raw id (a number or a string), not a sequence of them."""
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return isinstance(value, (str, bytes, int, float, np.generic))


def _plain_id(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _id_list(values: Any) -> np.ndarray:
    """Raw ids as a 1-D array (one id, or a sequence, array or Series of them)."""
    if _is_one_id(values):
        values = [values]
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values).reshape(-1)


def _warn_unknown(ids: np.ndarray, known: np.ndarray, what: str) -> None:
    """One :class:`UnknownItemsWarning` naming the items the model does not know (the first five)."""
    if known.all():
        return
    unknown = [describe_id(_plain_id(value)) for value in ids[~known].tolist()]
    shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    warnings.warn(
        f"left out {len(unknown)} {what} item(s) the model does not know: {shown}", UnknownItemsWarning, stacklevel=3
    )


def _items_table(items: Any, train: Ratings) -> Movies:
    """Titles (and genres) by raw item id: a :class:`Movies` as given, or read from a path or DataFrame."""
    if isinstance(items, Movies):
        return items
    from recsys_rbm.data.tables import read_items_table

    return read_items_table(items, like=train.item_ids)


def _profile_arrays(*parts: tuple[Ratings, int]) -> ProfileArrays:
    """The profiles made of rating sets of one id space, each with the part it plays (``TRAINED`` …)."""
    first = parts[0][0]
    return ProfileArrays.of(
        np.concatenate([ratings.users for ratings, _ in parts]),
        np.concatenate([ratings.items for ratings, _ in parts]),
        np.concatenate([ratings.levels for ratings, _ in parts]),
        np.concatenate([np.full(len(ratings), part) for ratings, part in parts]),
        (first.n_users, first.n_items, first.n_levels),
    )


def _layout(train: Ratings, config: RecommenderConfig) -> Layout:
    n_units = train.n_items if config.mode == "user" else train.n_users
    n_levels = 0 if train.is_implicit else train.n_levels
    return Layout(n_units, n_levels, interactions=config.kind == "joint")


def _check_ratings(ratings: Ratings, what: str, model: str) -> None:
    if len(ratings) == 0:
        raise DataError(f"the {what} ratings are empty")
    if ratings.levels.min() < 0 or ratings.levels.max() >= ratings.n_levels:
        raise DataError(f"the {what} rating levels fall outside 0..{ratings.n_levels - 1}")
    if model == "ratings" and ratings.n_levels < 2:
        raise DataError(
            f"the {what} ratings use {ratings.n_levels} rating value(s): the ratings model needs at least 2; "
            "train the joint model (model='joint', --model joint), which learns from interactions alone"
        )


def _check_same_space(train: Ratings, other: Ratings) -> None:
    same = (
        np.array_equal(train.user_ids.raw_ids, other.user_ids.raw_ids)
        and np.array_equal(train.item_ids.raw_ids, other.item_ids.raw_ids)
        and np.array_equal(train.rating_values, other.rating_values)
    )
    if not same:
        raise DataError("validation ratings must share the training ratings' id maps and rating scale")


def _monitor_sample(train: Ratings, config: RecommenderConfig, generator: torch.Generator) -> Ratings:
    """A fixed sample of whole training cases with about ``monitor_ratings`` ratings in all."""
    case_of = train.users if config.mode == "user" else train.items
    n_cases = train.n_users if config.mode == "user" else train.n_items
    if len(train) <= config.monitor_ratings:
        return train
    chosen = torch.rand(n_cases, generator=generator).numpy() < config.monitor_ratings / len(train)
    return train.subset(chosen[case_of])


def _rmse(scorer: Scorer, ratings: Ratings) -> float:
    if len(ratings) == 0:
        return float("nan")
    with torch.no_grad():
        predicted = scorer.predict(ratings.users, ratings.items)
    return float(np.sqrt(np.mean((predicted - ratings.values) ** 2)))


def _ranking_sample(
    train: Ratings, validation: Ratings, config: RecommenderConfig, arrays: ProfileArrays
) -> Callable[[Scorer], float]:
    """NDCG@10 on validation: each sampled user's liked validation items are relevant, training items never candidates.

    At most ``config.validation_users`` users with a liked validation item are ranked (a seeded
    sample, fixed for the run). The top lists come from ``torch.topk`` (ties in its order), an order of
    magnitude faster than NumPy's ``argpartition`` over a large catalogue.
    """
    threshold = like_threshold(train.rating_values, config.like_threshold)
    liked = validation.values >= threshold
    users = np.unique(validation.users[liked])
    if users.shape[0] > config.validation_users:
        users = np.sort(np.random.default_rng(config.seed).choice(users, config.validation_users, replace=False))
    accumulator_args = (VALIDATION_K, train.n_items, validation.users[liked], validation.items[liked])
    rows, lengths = csr_rows(arrays.indptr, users)
    seen_owner, seen_items = np.repeat(np.arange(users.shape[0]), lengths), arrays.items[rows]

    def ndcg(scorer: Scorer) -> float:
        accumulator = RankingAccumulator(*accumulator_args)
        step = max(1, (1 << 22) // max(train.n_items, 1))
        with torch.no_grad():
            for start in range(0, users.shape[0], step):
                batch = users[start : start + step]
                scores = scorer.score_items(batch)
                lo, hi = np.searchsorted(seen_owner, [start, start + step])
                scores[seen_owner[lo:hi] - start, seen_items[lo:hi]] = -np.inf
                best, items = torch.topk(torch.from_numpy(scores), min(VALIDATION_K, train.n_items), dim=1)
                accumulator.add_top(batch, items.numpy(), (best > -np.inf).numpy())
        return float(accumulator.result().ndcg)

    return ndcg
