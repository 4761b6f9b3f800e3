"""Shilling-attack detection on ml-100k: the joint RBM's profile anomaly score beside RDMA and DegSim, one run.

Run:  RBM_REC_DATA=../shared/data python benchmarks/shilling.py [--epochs 60] [--seed 0]
      [--attacks random,average,bandwagon] [--sizes 1,5,10] [--fillers 3,10] [--json results.json]

For every cell (attack type × attack size × filler size) generated push-attack profiles are added
to all 100,000 ratings of ml-100k (``u.data``); a joint RBM (the library's defaults, but a fixed
number of epochs, 60, and no validation hold-out: every rating of every profile is seen; 60 is
where early stopping on validation NDCG@10 ended, at epoch 61, for the same model on ``u.data``
without attacks) is trained on genuine + attack profiles, and every user is scored. Attackers are
the positives. One RBM is trained per cell.

Attack profiles (Lam & Riedl 2004; Mobasher et al. 2007), each a new user:

* the **target** movie rated at the top of the scale (a push attack). The target is fixed: the
  first movie by id with 20–50 ratings and a mean below 3 (Free Willy (1993), 33 ratings, mean 2.45);
* **filler** items, ``filler %`` of the 1,682 movies, drawn uniformly without replacement from the
  movies other than the target (and the selected ones), rated
  - *random* attack: ``N(μ, σ²)`` of all ratings (μ = 3.53, σ = 1.13),
  - *average* attack: ``N(μ_i, σ_i²)`` of the item's own ratings (σ of all ratings where an item has
    fewer than 2),
  - *bandwagon* attack: as the random attack, plus
* **selected** items (bandwagon only): the 3 most-rated movies, rated at the top;

each draw rounded to a whole star and clipped to 1–5. Attack size is the number of profiles as a
percentage of the 943 genuine users (1 % = 9, 5 % = 47, 10 % = 94).

Detectors, all unsupervised and given the same data (genuine + attack ratings):

* **RBM**: :func:`recsys_rbm.recommender.anomalies.atypicality`, the free energy of the profile as a
  z-score for its length (``(F − F̂(n)) / spread(n)``, both fitted over all users);
* **RDMA** (Chirita, Nejdl & Zamfir 2005): ``(1/n_u) Σ_{i ∈ I_u} |r_ui − r̄_i| / NR_i``, the rating
  deviation from mean agreement (``r̄_i`` and ``NR_i``: the item's mean and number of ratings);
* **DegSim** (same paper): the mean Pearson correlation with the user's k = 10 most correlated
  users, over co-rated items (users centred on their own means; 0 for a pair with none), as
  published. Weighting each correlation by ``min(co-rated, 50) / 50`` (Herlocker et al. 1999) was
  tried in development and made DegSim worse than chance (AUC 0.02–0.53 at 5 % attacks): attack
  fillers are drawn uniformly from the catalogue, so attackers share few items with anyone.

Measures: AUC (the probability that a random attacker scores above a random genuine user, ties
counting half) and precision at the number of attackers (the share of attackers among the that
many highest-scored users). The second table holds, from the same models, AUC of other ways of
normalising the free energy for length (raw ``F``, ``F / n``, the mean leave-one-out surprise
``−(1/n) Σ log p(v_i | v_−i)``) and, for each score, its Spearman correlation with the number of
ratings over the genuine users (a length-free score is near 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from recsys_rbm.data.ids import IdMap
from recsys_rbm.data.movielens import load_movielens
from recsys_rbm.data.ratings import Ratings
from recsys_rbm.recommender.anomalies import atypicality, surprises
from recsys_rbm.recommender.config import RecommenderConfig
from recsys_rbm.recommender.model import RBMRecommender

ATTACKS = ("random", "average", "bandwagon")
N_SELECTED = 3  # the bandwagon attack's popular items
DEGSIM_K = 10  # neighbours in DegSim
ATTACK_ID_START = 100_001  # raw ids of attack profiles (genuine ml-100k users are 1..943)


# --- attack profiles -------------------------------------------------------------------------------
def choose_target(ratings: Ratings) -> int:
    """The first movie (by inner id) with 20–50 ratings and a mean rating below 3."""
    counts = np.bincount(ratings.items, minlength=ratings.n_items)
    means = np.bincount(ratings.items, weights=ratings.values, minlength=ratings.n_items) / np.maximum(counts, 1)
    return int(np.flatnonzero((counts >= 20) & (counts <= 50) & (means < 3))[0])


def attack_profiles(
    kind: str, n_profiles: int, filler_fraction: float, ratings: Ratings, target: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_profiles`` push-attack profiles: ``(profile 0..n-1, item, level)`` triples (see the module docstring)."""
    values, items = ratings.values, ratings.items
    n_items, top = ratings.n_items, ratings.n_levels - 1
    counts = np.bincount(items, minlength=n_items)
    mean, std = values.mean(), values.std()
    item_mean = np.bincount(items, weights=values, minlength=n_items) / np.maximum(counts, 1)
    item_square = np.bincount(items, weights=values**2, minlength=n_items) / np.maximum(counts, 1)
    item_std = np.where(counts >= 2, np.sqrt(np.maximum(item_square - item_mean**2, 0.0)), std)
    selected = np.argsort(-counts, kind="stable")[:N_SELECTED] if kind == "bandwagon" else np.zeros(0, np.int64)
    candidates = np.setdiff1d(np.arange(n_items), np.append(selected, target))
    n_filler = round(filler_fraction * n_items)
    profiles, chosen, levels = [], [], []
    for profile in range(n_profiles):
        filler = rng.choice(candidates, n_filler, replace=False)
        if kind == "average":
            drawn = rng.normal(item_mean[filler], item_std[filler])
        else:
            drawn = rng.normal(mean, std, n_filler)
        stars = np.clip(np.rint(drawn), ratings.rating_values[0], ratings.rating_values[-1])
        filler_levels = np.searchsorted(ratings.rating_values, stars)
        pushed = np.append(selected, target)
        chosen.append(np.concatenate([filler, pushed]))
        levels.append(np.concatenate([filler_levels, np.full(pushed.shape[0], top)]))
        profiles.append(np.full(n_filler + pushed.shape[0], profile))
    return np.concatenate(profiles), np.concatenate(chosen), np.concatenate(levels)


def with_attack(ratings: Ratings, profiles: np.ndarray, items: np.ndarray, levels: np.ndarray) -> Ratings:
    """The genuine ratings plus the attack profiles as new users (raw ids from :data:`ATTACK_ID_START`)."""
    n_attack = int(profiles.max()) + 1 if profiles.size else 0
    raw = np.concatenate([ratings.user_ids.raw_ids, ATTACK_ID_START + np.arange(n_attack)])
    return Ratings(
        np.concatenate([ratings.users, ratings.n_users + profiles]),
        np.concatenate([ratings.items, items]),
        np.concatenate([ratings.levels, levels]),
        IdMap(raw, "user"),
        ratings.item_ids,
        ratings.rating_values,
    )


# --- detectors and measures --------------------------------------------------------------------------
def rdma(ratings: Ratings) -> np.ndarray:
    """Rating deviation from mean agreement per user; (n_users,)."""
    n_items, values = ratings.n_items, ratings.values
    counts = np.bincount(ratings.items, minlength=n_items)
    item_mean = np.bincount(ratings.items, weights=values, minlength=n_items) / np.maximum(counts, 1)
    deviation = np.abs(values - item_mean[ratings.items]) / counts[ratings.items]
    n_u = np.bincount(ratings.users, minlength=ratings.n_users)
    return np.bincount(ratings.users, weights=deviation, minlength=ratings.n_users) / np.maximum(n_u, 1)


def degsim(ratings: Ratings, k: int = DEGSIM_K) -> np.ndarray:
    """Mean Pearson correlation (over co-rated items) with the ``k`` most correlated users; (n_users,)."""
    n_users, n_items = ratings.n_users, ratings.n_items
    rated = np.zeros((n_users, n_items))
    rated[ratings.users, ratings.items] = 1.0
    user_mean = np.bincount(ratings.users, weights=ratings.values, minlength=n_users) / np.maximum(rated.sum(1), 1)
    centred = np.zeros((n_users, n_items))
    centred[ratings.users, ratings.items] = ratings.values - user_mean[ratings.users]
    numerator = centred @ centred.T
    squares = centred**2
    over_shared = squares @ rated.T  # [u, v]: Σ over items both rated of u's squared deviations
    correlation = numerator / np.sqrt(np.maximum(over_shared * over_shared.T, 1e-12))
    correlation[rated @ rated.T == 0] = 0.0
    np.fill_diagonal(correlation, -np.inf)
    return -np.sort(-correlation, axis=1)[:, :k].mean(1)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """``P(score of a positive > score of a negative)``, ties counting half (the Mann–Whitney statistic)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(scores.shape[0])
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.shape[0]]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_positives(scores: np.ndarray, positive: np.ndarray) -> float:
    """The share of positives among the ``#positives`` highest scores (ties by index)."""
    n = int(positive.sum())
    top = np.lexsort((np.arange(scores.shape[0]), -scores))[:n]
    return float(positive[top].mean())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


# --- one cell ---------------------------------------------------------------------------------------
def run_cell(
    genuine: Ratings, kind: str, size: float, filler: float, target: int, epochs: int, seed: int
) -> dict[str, object]:
    rng = np.random.default_rng([seed, ATTACKS.index(kind), round(size * 1000), round(filler * 1000)])
    n_attack = round(size * genuine.n_users)
    combined = with_attack(genuine, *attack_profiles(kind, n_attack, filler, genuine, target, rng))
    positive = np.arange(combined.n_users) >= genuine.n_users
    started = time.perf_counter()
    config = RecommenderConfig(kind="joint", epochs=epochs, seed=seed, device="cpu")
    model = RBMRecommender(config).fit(combined)
    fit_seconds = time.perf_counter() - started
    import torch

    with torch.no_grad():
        scored = atypicality(model.scorer)
        log_pick, log_rating, owner = surprises(model.scorer, scored.users)
    assert scored.users.shape[0] == combined.n_users  # every user has ratings
    mean_surprise = -np.bincount(owner, weights=log_pick + log_rating) / scored.n_ratings
    scores = {
        "RBM": scored.score,
        "RDMA": rdma(combined),
        "DegSim": degsim(combined),
        "F": scored.free_energy,
        "F/n": scored.free_energy / scored.n_ratings,
        "surprise": mean_surprise,
    }
    n_ratings = scored.n_ratings
    return {
        "attack": kind,
        "size": size,
        "filler": filler,
        "attackers": n_attack,
        "fit_s": fit_seconds,
        "auc": {name: auc(s, positive) for name, s in scores.items()},
        "precision": {name: precision_at_positives(s, positive) for name, s in scores.items()},
        "length_correlation": {name: spearman(s[~positive], n_ratings[~positive]) for name, s in scores.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="epochs of each RBM (fixed; no early stopping)")
    parser.add_argument("--seed", type=int, default=0, help="attack profiles and the RBMs")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--sizes", default="1,5,10", help="attack sizes, %% of genuine users")
    parser.add_argument("--fillers", default="3,10", help="filler sizes, %% of the movies")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    dataset = load_movielens("ml-100k")
    genuine = dataset.ratings
    target = choose_target(genuine)
    raw_target = genuine.item_ids.raw_ids[target]
    target_ratings = genuine.values[genuine.items == target]
    print(
        f"ml-100k: {len(genuine):,} ratings by {genuine.n_users} users of {genuine.n_items:,} movies; push target: "
        f"movie {raw_target}, {dataset.movies.title(raw_target)}, {target_ratings.shape[0]} ratings, mean "
        f"{target_ratings.mean():.2f}; joint RBM, {args.epochs} epochs, seed {args.seed}",
        flush=True,
    )
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown:
        print(f"error: unknown attack {unknown[0]!r}; use some of {', '.join(ATTACKS)}", file=sys.stderr)
        return 2
    sizes = [float(s) / 100 for s in args.sizes.split(",")]
    fillers = [float(f) / 100 for f in args.fillers.split(",")]
    results = []
    for kind in attacks:
        for size in sizes:
            for filler in fillers:
                cell = run_cell(genuine, kind, size, filler, target, args.epochs, args.seed)
                results.append(cell)
                print(
                    f"  {kind} {size:.0%} {filler:.0%}: {cell['attackers']} attackers, RBM fit {cell['fit_s']:.1f} s, "
                    f"AUC RBM {cell['auc']['RBM']:.3f} RDMA {cell['auc']['RDMA']:.3f} "
                    f"DegSim {cell['auc']['DegSim']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
    print_tables(results)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


def print_tables(results: list[dict]) -> None:
    detectors = ("RBM", "RDMA", "DegSim")
    print("\nShilling detection on ml-100k (push attacks; positives: attack profiles)")
    head = f"{'attack':<10}{'size':>5}{'filler':>7}{'n':>4}  " + "".join(f"{'AUC ' + d:>11}" for d in detectors)
    head += "  " + "".join(f"{'P@n ' + d:>11}" for d in detectors)
    print(head)
    for cell in results:
        row = f"{cell['attack']:<10}{cell['size']:>5.0%}{cell['filler']:>7.0%}{cell['attackers']:>4}  "
        row += "".join(f"{cell['auc'][d]:>11.3f}" for d in detectors)
        row += "  " + "".join(f"{cell['precision'][d]:>11.3f}" for d in detectors)
        print(row)
    variants = ("RBM", "F", "F/n", "surprise")
    print("\nNormalising the free energy for length, same models: AUC per cell; then the mean over the cells of")
    print("Spearman's ρ between the score and the number of ratings (genuine users), and of the AUC")
    print(f"{'attack':<10}{'size':>5}{'filler':>7}  " + "".join(f"{v:>10}" for v in variants))
    for cell in results:
        row = f"{cell['attack']:<10}{cell['size']:>5.0%}{cell['filler']:>7.0%}  "
        print(row + "".join(f"{cell['auc'][v]:>10.3f}" for v in variants))
    correlation = [np.mean([cell["length_correlation"][v] for cell in results]) for v in variants]
    print(f"{'ρ(score, n), genuine users':<24}" + "".join(f"{c:>10.3f}" for c in correlation))
    mean_auc = [np.mean([cell["auc"][v] for cell in results]) for v in variants]
    print(f"{'mean AUC':<24}" + "".join(f"{m:>10.3f}" for m in mean_auc))


if __name__ == "__main__":
    sys.exit(main())
