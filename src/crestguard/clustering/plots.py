"""Figures of a clustering run: the k curve, the centroid similarity heatmap, t-SNE of sentence embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(clusters: list[int]) -> dict[int, tuple]:
    plt = _plt()
    ids = sorted(set(clusters))
    cmap = plt.get_cmap("tab10" if len(ids) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(ids)}


def plot_k_curve(table: list[dict], chosen: int, path: Path) -> None:
    """Inertia with the elbow chord (top) and silhouette / ARI and NMI against the paper per k (bottom).

    Args:
        table: one dict per k with ``k``, ``inertia``, ``silhouette``, ``ari_paper``, ``nmi_paper``.
        chosen: the k to mark.
        path: PNG to write.
    """
    plt = _plt()
    ks = [r["k"] for r in table]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(ks, [r["inertia"] for r in table], "o-", label="cosine inertia")
    top.plot([ks[0], ks[-1]], [table[0]["inertia"], table[-1]["inertia"]], "--", color="grey", label="chord")
    top.axvline(chosen, color="red", lw=1, label=f"k = {chosen}")
    top.set_ylabel("sum of (1 - cos) to the centre")
    top.legend()
    for key, label in (
        ("silhouette", "silhouette (cosine)"),
        ("ari_paper", "ARI vs paper"),
        ("nmi_paper", "NMI vs paper"),
    ):
        pts = [(r["k"], r[key]) for r in table if r[key] is not None]
        bottom.plot(*zip(*pts), "o-", ms=3, label=label)
    bottom.axvline(chosen, color="red", lw=1)
    bottom.set_xlabel("k")
    bottom.set_xticks(ks)
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_heatmap(cosine: np.ndarray, langs: list[str], clusters: list[int], path: Path) -> None:
    """Centroid cosine similarities, languages ordered by cluster and, inside a cluster, by centrality.

    The colour scale spans the off-diagonal range (the diagonal is 1 and would wash out the rest).
    """
    plt = _plt()
    n = len(langs)
    cl = np.asarray(clusters)
    central = np.array([cosine[i, cl == cl[i]].mean() for i in range(n)])
    order = sorted(range(n), key=lambda i: (cl[i], -central[i]))
    m = cosine[np.ix_(order, order)]
    off = m[~np.eye(n, dtype=bool)]
    fig, ax = plt.subplots(figsize=(13, 12))
    im = ax.imshow(m, cmap="viridis", vmin=float(off.min()), vmax=float(off.max()))
    ax.set_xticks(range(n), [langs[i] for i in order], rotation=90, fontsize=6)
    ax.set_yticks(range(n), [langs[i] for i in order], fontsize=6)
    colors = _colors(list(cl))
    for tick, i in zip(ax.get_yticklabels(), order):
        tick.set_color(colors[cl[i]])
    for tick, i in zip(ax.get_xticklabels(), order):
        tick.set_color(colors[cl[i]])
    bounds = np.flatnonzero(np.diff(cl[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="white", lw=1)
        ax.axvline(b, color="white", lw=1)
    fig.colorbar(im, ax=ax, fraction=0.04, label="cosine of language centroids")
    ax.set_title("Language centroids: cosine similarity, ordered by cluster")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tsne_coordinates(vectors: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """t-SNE (cosine) of sentence embeddings, as they are and minus each sentence's mean over languages.

    A sentence-aligned encoder (mE5) puts the translations of one sentence together, so the raw map groups by
    sentence; subtracting, for every sentence, its mean vector over all languages leaves the language-specific
    part, which is what the clustering sees through the centroids.

    Args:
        vectors: ``(languages, sentences, hidden)``, already subsampled.

    Returns:
        ``{"raw": (L*n, 2), "residual": (L*n, 2)}`` in language-major order.
    """
    from sklearn.manifold import TSNE

    unit = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    views = {"raw": unit, "residual": unit - unit.mean(axis=0, keepdims=True)}
    return {
        name: TSNE(metric="cosine", init="pca", perplexity=perplexity, random_state=seed).fit_transform(
            v.reshape(-1, v.shape[-1])
        )
        for name, v in views.items()
    }


def plot_tsne(
    coords: dict[str, np.ndarray], langs: list[str], clusters: list[int], per_lang: int, path: Path
) -> None:
    """Two panels (raw, residual) of :func:`tsne_coordinates`, points coloured by their language's cluster."""
    plt = _plt()
    colors = _colors(clusters)
    lab = np.repeat(np.asarray(clusters), per_lang)
    fig, axes = plt.subplots(1, 2, figsize=(18, 9))
    titles = {
        "raw": "sentence embeddings (translations of one sentence sit together)",
        "residual": "minus each sentence's mean over languages (the language signal)",
    }
    for ax, (name, xy) in zip(axes, coords.items()):
        for c in sorted(set(clusters)):
            sel = lab == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=colors[c], label=f"cluster {c}", alpha=0.7)
        if name == "residual":
            for i, lang in enumerate(langs):
                med = np.median(xy[i * per_lang : (i + 1) * per_lang], axis=0)
                ax.annotate(lang, med, fontsize=7, ha="center", weight="bold")
        ax.set_title(f"t-SNE: {titles[name]}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(markerscale=4, fontsize=8, loc="best")
    fig.suptitle(f"{len(langs)} languages x {per_lang} sentences, coloured by cluster")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
