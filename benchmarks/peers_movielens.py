"""Our RBMs, our baselines and the usual peers on ml-100k u1–u5, measured by one harness in one run.

Run:  RBM_REC_DATA=../shared/data python benchmarks/peers_movielens.py [--peers svd,svdpp,knn,baseline,als]
      [--folds u1,u2,u3,u4,u5] [--skip-rbm] [--rbm-epochs N] [--json results.json]

Peers come from scikit-surprise (SVD, SVD++, KNNBaseline, BaselineOnly) and implicit (ALS, 64
factors) when they are importable; this script installs nothing (``pip install scikit-surprise
implicit``). Each peer is wrapped in an adapter implementing our
:class:`~recsys_rbm.recommender.protocol.Recommender` protocol (public APIs only), so peers,
baselines and the RBM run through :func:`recsys_rbm.recommender.evaluation.evaluate` on the
same splits and are scored by the same metric code.

Data seen by each model: the canonical ``uN.base`` file, of which 5% (seeded) is held out as the
RBM's early-stopping set. Every model without early stopping trains on the whole base file
(``TrainOnValidationToo``), as the published peer figures do; ranking candidates exclude the whole
base file for every model; the ``uN.test`` file is never seen by any model.

Peer settings: surprise defaults (SVD and SVD++ seeded; SVD++ with ``cache_ratings=True``, which
only changes speed), KNNBaseline with item-based ``pearson_baseline`` similarity and ALS baselines,
BaselineOnly with surprise's default ALS baselines. Through this harness BaselineOnly gives
exactly what surprise's own ``PredefinedKFold`` loop on the u1–u5 files gives (0.9457 mean); the
issue's 0.943 is the SGD variant (``bsl_options={"method": "sgd"}``: 0.9431).

Our two RBMs: the joint model (interactions and ratings; the default, and the ranker) and the
ratings model (the I-RBM of Salakhutdinov, Mnih & Hinton; the rating predictor). EASE (Steck 2019)
chooses its λ on each fold's validation part (never the test file), then refits on the whole base
file.

Prints two side-by-side tables over the folds, mean ± sample std: rating accuracy (RMSE, MAE, mean
fit and predict seconds), and ranking at k = 10 (relevant = test rating ≥ 4, candidates = every
movie the user has not rated in ``uN.base``; NDCG, precision, recall, MAP, hit rate, coverage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np
from peers import ALL_PEERS, peer_factories

from recsys_rbm.recommender.baselines import EASE, BiasBaseline, GlobalMean, MostPopular
from recsys_rbm.recommender.evaluation import (
    EvaluationReport,
    ModelFactory,
    ProgressEvent,
    TrainOnValidationToo,
    evaluate,
)
from recsys_rbm.recommender.splits import FIVE_FOLDS, canonical_splits

RBM_JOINT, RBM_RATINGS = "RBM joint", "RBM ratings (I-RBM)"
RANKED = ("EASE", "ALS (implicit)", RBM_JOINT, RBM_RATINGS, "most popular", "user+item biases")  # on every fold
# Reference figures from the issues (scikit-surprise 1.1.5 on u1–u5; the rankers on u1 alone).
EXPECTED_RMSE = {"KNNBaseline": 0.920, "SVD++": 0.922, "SVD": 0.938, "BaselineOnly": 0.943}
EXPECTED_U1 = {"EASE": 0.445, "ALS (implicit)": 0.351, "most popular": 0.245}  # NDCG@10 on u1


def rbm_factory(model: str, epochs: int | None, seed: int) -> ModelFactory:
    """A fresh RBM of ``model`` ("joint" or "ratings") with its defaults, per split."""
    from recsys_rbm.recommender.config import RecommenderConfig
    from recsys_rbm.recommender.model import RBMRecommender

    config = RecommenderConfig(kind=model, seed=seed, epochs=epochs)
    return lambda: RBMRecommender(config)


def print_progress(event: ProgressEvent) -> None:
    where = f"[{event.split} {event.split_index + 1}/{event.n_splits}] {event.model}"
    if event.stage == "fit":
        print(f"{where}: fitting …", flush=True)
    elif event.stage == "done" and event.fold is not None:
        fold = event.fold
        accuracy = "" if fold.rmse is None else f"RMSE {fold.rmse:.4f}  MAE {fold.mae:.4f}  "
        ranking = "" if fold.ranking is None else f"NDCG@{fold.ranking.k} {fold.ranking.ndcg:.4f}  "
        ranking += "" if fold.ranking is None else f"coverage {fold.ranking.coverage:.3f}  "
        print(f"{where}: {accuracy}{ranking}fit {fold.fit_seconds:.1f} s, predict {fold.predict_seconds:.2f} s")


def _pm(summary: Any, digits: int = 4) -> str:
    return "—" if summary is None else f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f}"


def _pm_of(values: list[float]) -> str:
    """``mean ± sample std`` of per-fold values (std 0 for one fold)."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.4f} ± {spread:.4f}"


def render(report: EvaluationReport) -> str:
    """The two plain-text tables."""
    lines = []
    summary = report.summary()
    n_folds = len(report.splits)
    header = f"{'model':<20} {'RMSE (mean ± std)':>18} {'MAE (mean ± std)':>18} {'fit s':>8} {'predict s':>10}  issue"
    lines += [f"Rating accuracy on ml-100k {', '.join(s['name'] for s in report.splits)} ({n_folds} folds)", header]
    lines.append("-" * len(header))
    order = sorted(
        report.models, key=lambda m: (summary[m]["rmse"] is None, summary[m]["rmse"].mean if summary[m]["rmse"] else 0)
    )
    for model in order:
        s = summary[model]
        expected = f"{EXPECTED_RMSE[model]:.3f}" if model in EXPECTED_RMSE else ""
        lines.append(
            f"{model:<20} {_pm(s['rmse']):>18} {_pm(s['mae']):>18} "
            f"{s['fit_seconds'].mean:>8.2f} {s['predict_seconds'].mean:>10.3f}  {expected}"
        )
    ranked = [m for m in report.models if any(f.model == m and f.ranking is not None for f in report.folds)]
    if ranked:
        names = ", ".join(split["name"] for split in report.splits)
        lines += [
            "",
            f"Ranking on {names} at k = {report.k} (relevant: test rating ≥ {report.threshold:g}; every unrated "
            "movie ranked), mean ± std over folds",
        ]
        header = (
            f"{'model':<20} {'NDCG':>15} {'P':>15} {'R':>7} {'MAP':>7} {'HR':>7} {'cover':>7} {'rank s':>7}  issue u1"
        )
        lines += [header, "-" * len(header)]
        rows = []
        for model in ranked:
            results = [f.ranking for f in report.folds if f.model == model and f.ranking is not None]
            seconds = [f.rank_seconds for f in report.folds if f.model == model and f.rank_seconds is not None]
            rows.append((model, results, seconds))
        for model, results, seconds in sorted(rows, key=lambda row: -np.mean([r.ndcg for r in row[1]])):
            ndcg, precision = (_pm_of([getattr(r, name) for r in results]) for name in ("ndcg", "precision"))
            means = (np.mean([getattr(r, name) for r in results]) for name in ("recall", "map", "hit_rate", "coverage"))
            expected = f"{EXPECTED_U1[model]:.3f}" if model in EXPECTED_U1 else ""
            lines.append(
                f"{model:<20} {ndcg:>15} {precision:>15} "
                + " ".join(f"{m:>7.4f}" for m in means)
                + f" {np.mean(seconds):>7.2f}  {expected}"
            )
    facts = ", ".join(f"{s['name']}: {s['cold_test_ratings']}" for s in report.splits)
    lines += ["", f"cold test ratings (user or movie unseen in training), per fold: {facts}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder holding ml-100k/ (default: $RBM_REC_DATA, then data/)")
    parser.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma-separated subset of {','.join(ALL_PEERS)}")
    parser.add_argument("--folds", default=",".join(FIVE_FOLDS), help="canonical folds, comma-separated")
    parser.add_argument("--skip-rbm", action="store_true", help="leave our RBMs out")
    parser.add_argument("--skip-ease", action="store_true", help="leave EASE out")
    parser.add_argument("--rbm-epochs", type=int, default=None, help="cap the RBM's epochs (default: its config)")
    parser.add_argument("--seed", type=int, default=0, help="validation carve-out, peers' and RBM's seed")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the full report here (JSON)")
    args = parser.parse_args(argv)

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(ALL_PEERS)}")
    folds = tuple(f.strip() for f in args.folds.split(",") if f.strip())

    models: dict[str, ModelFactory] = {
        "global mean": lambda: TrainOnValidationToo(GlobalMean()),
        "user+item biases": lambda: TrainOnValidationToo(BiasBaseline()),
        "most popular": lambda: TrainOnValidationToo(MostPopular()),
    }
    factories, missing = peer_factories(peers, args.seed)
    for message in missing:
        print(message, flush=True)
    models.update(factories)
    if not args.skip_ease:
        models["EASE"] = EASE
    if not args.skip_rbm:
        models[RBM_JOINT] = rbm_factory("joint", args.rbm_epochs, args.seed)
        models[RBM_RATINGS] = rbm_factory("ratings", args.rbm_epochs, args.seed)

    started = time.perf_counter()
    splits = canonical_splits(folds, data_dir=args.data_dir, seed=args.seed, download=False)
    print(
        f"loaded {len(splits)} folds in {time.perf_counter() - started:.1f} s; models: {', '.join(models)}", flush=True
    )
    report = evaluate(
        models,
        splits,
        k=args.k,
        threshold=4.0,
        progress=print_progress,
        rank=[m for m in RANKED if m in models],
        notes={"benchmark": "peers_movielens", "seed": args.seed, "peers": peers, "cpu_count": os.cpu_count()},
    )
    print()
    print(render(report))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        print(f"report written to {report.to_json(args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
