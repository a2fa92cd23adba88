"""How stable a clustering is: across k-means seeds and across disjoint halves of the corpus's sentences."""

from __future__ import annotations

import numpy as np

from crestguard.clustering.embed import centroids
from crestguard.clustering.kmeans import elbow, spherical_kmeans


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def seed_stability(x: np.ndarray, k: int, labels: np.ndarray, seeds: list[int], n_init: int) -> dict:
    """ARI between ``labels`` and the fits with other seeds (same k, same restarts).

    Returns:
        ``{"seeds", "ari", "mean", "min"}`` (ARI per seed, rounded to 4 decimals).
    """
    aris = [_ari(labels, spherical_kmeans(x, k, seed=s, n_init=n_init).labels) for s in seeds]
    return {
        "seeds": seeds,
        "ari": [round(a, 4) for a in aris],
        "mean": round(float(np.mean(aris)), 4),
        "min": round(min(aris), 4),
    }


def split_half_stability(
    vectors: np.ndarray,
    k: int,
    labels: np.ndarray,
    k_max: int,
    splits: int,
    seed: int,
    n_init: int,
    sweep_n_init: int = 10,
) -> dict:
    """Cluster the centroids of two disjoint random halves of the sentences, ``splits`` times.

    For each split, reports ARI(half A, half B) and ARI(each half, the full clustering) at the same k, and the
    k that the elbow rule picks on each half.

    Args:
        vectors: ``(languages, sentences, hidden)`` sentence embeddings.
        k: the k of the full clustering.
        labels: the full clustering.
        k_max: the sweep's upper k, for the elbow on each half.
        splits: how many random halvings.
        seed: seeds the halvings and the fits.
        n_init: k-means restarts of the fits at ``k``.
        sweep_n_init: restarts per k of each half's elbow sweep (the elbow barely moves with more).
    """
    rng = np.random.default_rng(seed)
    n = vectors.shape[1]
    rows = []
    for _ in range(splits):
        perm = rng.permutation(n)
        halves = [np.sort(perm[: n // 2]), np.sort(perm[n // 2 : 2 * (n // 2)])]
        fits, elbows = [], []
        for idx in halves:
            c = centroids(vectors[:, idx])
            fits.append(spherical_kmeans(c, k, seed=seed, n_init=n_init).labels)
            ks = list(range(1, k_max + 1))
            elbows.append(
                elbow(ks, [spherical_kmeans(c, j, seed=seed, n_init=sweep_n_init).inertia for j in ks])[0]
            )
        rows.append(
            {
                "ari_halves": _ari(*fits),
                "ari_a_full": _ari(fits[0], labels),
                "ari_b_full": _ari(fits[1], labels),
                "elbow_k": elbows,
            }
        )
    between = [r["ari_halves"] for r in rows]
    to_full = [v for r in rows for v in (r["ari_a_full"], r["ari_b_full"])]
    return {
        "splits": splits,
        "sentences_per_half": n // 2,
        "elbow_sweep_restarts": sweep_n_init,
        "ari_between_halves": {"mean": round(float(np.mean(between)), 4), "min": round(min(between), 4)},
        "ari_half_vs_full": {"mean": round(float(np.mean(to_full)), 4), "min": round(min(to_full), 4)},
        "elbow_k_per_half": [r["elbow_k"] for r in rows],
    }
