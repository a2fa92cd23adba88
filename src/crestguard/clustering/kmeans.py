"""Spherical (cosine) k-means over language centroids, the elbow rule for k, and silhouette per k.

Why spherical k-means and not ``sklearn.cluster.KMeans`` on normalized rows: for unit vectors,
``||x - c||^2 = 1 - 2 x.c + ||c||^2``; sklearn's centres are plain means whose norms differ per cluster, so
its assignment step is not "nearest centre by cosine". Spherical k-means keeps unit centres (the normalized
sum of the members), so each step maximizes the total cosine similarity and the objective is exactly the
cosine-distance inertia ``sum_i (1 - cos(x_i, c_{k(i)}))`` that the elbow rule reads.

Example:
    >>> x = l2_normalize(np.random.default_rng(0).normal(size=(40, 8)))
    >>> res = spherical_kmeans(x, 3, seed=0)
    >>> res.labels.shape, res.centers.shape
    ((40,), (3, 8))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crestguard.errors import CrestGuardError

#: The elbow rule, as written into every report.
ELBOW_RULE = (
    "max distance to the chord (kneedle): scale k and the cosine inertia of the k-means fits for "
    "k = 1..k_max to [0, 1] and take the k whose point lies farthest below the straight line from "
    "(1, inertia(1)) to (k_max, inertia(k_max))"
)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Scale every row of ``x`` to unit L2 norm.

    Raises:
        CrestGuardError: if a row is all zeros (it has no direction to cluster by).
    """
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise CrestGuardError(f"cannot L2-normalize: {int(np.sum(norms == 0))} row(s) are all zeros")
    return x / norms


@dataclass(frozen=True)
class KMeansResult:
    """One spherical k-means fit.

    Attributes:
        labels: cluster of each row, ``0..k-1``, numbered by first appearance (row 0 is in cluster 0).
        centers: unit centre of each cluster, ``(k, d)``.
        inertia: ``sum_i (1 - cos(x_i, centre))``.
    """

    labels: np.ndarray
    centers: np.ndarray
    inertia: float


def _kmeanspp(gram: np.ndarray, k: int, restarts: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds for every restart, ``(restarts, k)`` point indices.

    Cosine distance: each next seed is drawn with odds proportional to its distance to the nearest seed.
    """
    n = len(gram)
    seeds = np.empty((restarts, k), dtype=int)
    seeds[:, 0] = rng.integers(n, size=restarts)
    dist = 1.0 - gram[seeds[:, 0]]
    for j in range(1, k):
        cum = np.cumsum(np.clip(dist, 0.0, None), axis=1)
        draw = rng.random(restarts) * cum[:, -1]
        seeds[:, j] = np.minimum((cum <= draw[:, None]).sum(axis=1), n - 1)
        dist = np.minimum(dist, 1.0 - gram[seeds[:, j]])
    return seeds


def _stats(gram: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``m[r, i, b] = x_i . S_b`` and ``sq[r, b] = ||S_b||^2`` for labels ``(restarts, n)``."""
    h = np.eye(k)[labels]
    m = gram @ h  # (n, n) @ (restarts, n, k), batched
    return m, (h * m).sum(axis=1)


def _lloyd(gram: np.ndarray, seeds: np.ndarray, max_iter: int) -> np.ndarray:
    """Lloyd iterations for all restarts at once: assign to the most similar unit centre, re-centre.

    The centre of cluster b is ``S_b / ||S_b||`` (``S_b`` the sum of its points), so ``x_i . centre_b =
    m_ib / ||S_b||``: the fit needs only the Gram matrix ``G = X X^T`` (n x n), whatever the width of X.
    """
    restarts, k = seeds.shape
    sims = gram[seeds].transpose(0, 2, 1)  # (restarts, n, k): similarity to each seed
    labels = np.full((restarts, len(gram)), -1)
    for _ in range(max_iter):
        new = sims.argmax(axis=2)
        for r, j in zip(*np.nonzero(np.eye(k)[new].sum(axis=1) == 0)):
            # An emptied cluster takes the point worst served by its centre (from a cluster keeping a member).
            counts = np.bincount(new[r], minlength=k)
            served = np.where(counts[new[r]] > 1, sims[r, np.arange(len(gram)), new[r]], np.inf)
            new[r, int(np.argmin(served))] = j
        if np.array_equal(new, labels):
            break
        labels = new
        m, sq = _stats(gram, labels, k)
        sims = m / np.sqrt(np.clip(sq, 1e-12, None))[:, None, :]
    return labels


def _hartigan(gram: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Single-point moves between clusters while they lower the inertia (Hartigan), all restarts at once.

    With unit centres the inertia is ``n - sum_b ||S_b||``, so moving ``x_i`` from ``a`` to ``b`` helps when
    ``||S_a - x_i|| + ||S_b + x_i|| > ||S_a|| + ||S_b||``; every term follows from ``m`` and ``sq``
    (:func:`_stats`). Lloyd stops in many local optima on the nearly flat landscape of language centroids
    (cosines of 0.9 and more); these moves escape many of them. Each step makes every restart's best move.
    """
    restarts, n = labels.shape
    labels = labels.copy()
    m, sq = _stats(gram, labels, k)
    counts = np.eye(k, dtype=int)[labels].sum(axis=1)
    diag = np.diag(gram)
    active = np.arange(restarts)  # restarts that moved in the last step; the others have converged
    for _ in range(100 * n):  # every move lowers the inertia, so this ends; the bound guards float cycling
        lab, s_q, m_a = labels[active], sq[active], m[active]
        norms = np.sqrt(np.clip(s_q, 0.0, None))
        add = np.sqrt(np.clip(s_q[:, None, :] + 2 * m_a + diag[None, :, None], 0.0, None)) - norms[:, None, :]
        np.put_along_axis(add, lab[:, :, None], -np.inf, axis=2)
        own_sq = np.take_along_axis(s_q, lab, axis=1)
        removed = np.clip(
            own_sq - 2 * np.take_along_axis(m_a, lab[:, :, None], axis=2)[:, :, 0] + diag, 0.0, None
        )
        gain = add.max(axis=2) + np.sqrt(removed) - np.sqrt(np.clip(own_sq, 0.0, None))
        gain[np.take_along_axis(counts[active], lab, axis=1) == 1] = -np.inf
        i = gain.argmax(axis=1)
        local = np.flatnonzero(gain[np.arange(len(active)), i] > 1e-12)
        if not len(local):
            break
        movers, i = active[local], i[local]
        a, b = labels[movers, i], add[local, i].argmax(axis=1)
        sq[movers, b] += 2 * m[movers, i, b] + diag[i]
        sq[movers, a] = removed[local, i]
        m[movers, :, a] -= gram[i]
        m[movers, :, b] += gram[i]
        counts[movers, a] -= 1
        counts[movers, b] += 1
        labels[movers, i] = b
        active = movers
    return labels


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by first appearance so equal partitions give equal label arrays."""
    order = list(dict.fromkeys(labels.tolist()))
    remap = np.empty(len(order), dtype=int)
    remap[order] = np.arange(len(order))
    return remap[labels]


def spherical_kmeans(
    x: np.ndarray, k: int, seed: int = 0, n_init: int = 100, max_iter: int = 300
) -> KMeansResult:
    """Cluster the rows of ``x`` by cosine similarity; keep the best of ``n_init`` k-means++ restarts.

    Each restart runs Lloyd iterations, then Hartigan single-point moves until no move lowers the inertia; the
    restarts run together as arrays, so 100 of them cost about as much as a few run one by one.

    Args:
        x: ``(n, d)`` vectors; normalized here, so any scale is fine.
        k: number of clusters, ``1 <= k <= n``.
        seed: seeds the restarts; the same seed gives the same result.
        n_init: restarts; the one with the lowest inertia wins.
        max_iter: Lloyd iterations (they stop earlier when no assignment changes).

    Raises:
        CrestGuardError: if ``k`` is out of range.
    """
    x = l2_normalize(x)
    if not 1 <= k <= len(x):
        raise CrestGuardError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    gram = x @ x.T
    labels = _hartigan(
        gram, _lloyd(gram, _kmeanspp(gram, k, n_init, np.random.default_rng(seed)), max_iter), k
    )
    inertias = len(gram) - np.sqrt(np.clip(_stats(gram, labels, k)[1], 0.0, None)).sum(axis=1)
    best = _canonical(labels[int(np.argmin(inertias))])
    centers = l2_normalize(np.eye(k)[best].T @ x)
    return KMeansResult(best, centers, float(np.sum(1.0 - np.einsum("ij,ij->i", x, centers[best]))))


def elbow(ks: list[int], inertias: list[float]) -> tuple[int, list[float]]:
    """The k of the inertia curve's elbow by the max-distance-to-chord rule (:data:`ELBOW_RULE`).

    Args:
        ks: increasing k values, starting at 1 (or the smallest k tried).
        inertias: the inertia at each k.

    Returns:
        The chosen k and, per k, the scaled distance below the chord (``1 - k' - inertia'``; 0 at both ends).

    Raises:
        CrestGuardError: if fewer than 3 points are given or the curve is flat.
    """
    if len(ks) != len(inertias) or len(ks) < 3:
        raise CrestGuardError(f"the elbow rule needs at least 3 (k, inertia) points, got {len(ks)}")
    k = np.asarray(ks, dtype=float)
    y = np.asarray(inertias, dtype=float)
    if y[0] <= y[-1]:
        raise CrestGuardError(
            "the inertia curve does not decrease from the first to the last k: no elbow to find"
        )
    kx = (k - k[0]) / (k[-1] - k[0])
    iy = (y - y[-1]) / (y[0] - y[-1])
    gap = 1.0 - kx - iy
    return int(ks[int(np.argmax(gap))]), [float(g) for g in gap]


@dataclass(frozen=True)
class KSweep:
    """Fits for every k of a sweep and the elbow.

    Attributes:
        ks: ``1..k_max``.
        fits: the fit at each k.
        silhouettes: cosine silhouette per k (``None`` at k = 1 and k = n, where it is undefined).
        elbow_k: the k the elbow rule picks.
        gaps: the scaled distance below the chord per k.
    """

    ks: list[int]
    fits: list[KMeansResult]
    silhouettes: list[float | None]
    elbow_k: int
    gaps: list[float]

    def fit(self, k: int) -> KMeansResult:
        """The fit at ``k``."""
        return self.fits[self.ks.index(k)]


def sweep_k(x: np.ndarray, k_max: int, seed: int = 0, n_init: int = 100) -> KSweep:
    """Fit spherical k-means for k = 1..k_max, score silhouettes and apply the elbow rule.

    Raises:
        CrestGuardError: if ``k_max`` is below 3 or above the number of points.
    """
    from sklearn.metrics import silhouette_score

    x = l2_normalize(x)
    if not 3 <= k_max <= len(x):
        raise CrestGuardError(f"k_max must be between 3 and the number of languages ({len(x)}), got {k_max}")
    ks = list(range(1, k_max + 1))
    fits = [spherical_kmeans(x, k, seed=seed, n_init=n_init) for k in ks]
    sils = [
        float(silhouette_score(x, f.labels, metric="cosine")) if 2 <= k < len(x) else None
        for k, f in zip(ks, fits)
    ]
    k_best, gaps = elbow(ks, [f.inertia for f in fits])
    return KSweep(ks, fits, sils, k_best, gaps)
