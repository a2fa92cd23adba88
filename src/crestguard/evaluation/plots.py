"""PNG plots of one result: per-language bars, a cluster heatmap, a reliability diagram and the trade-off curve
(recall on the unsafe sets against FPR on real user prompts; several results on one plot with :func:`tradeoff`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crestguard.evaluation.harness import NO_CLUSTER


def _pyplot():
    from crestguard.errors import require

    mpl = require("matplotlib", "eval", "plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cluster_colors(clusters) -> dict:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    palette = [cmap(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]  # tab10 without its grey, kept for "no cluster"
    return {c: ("#bbbbbb" if c in (None, NO_CLUSTER) else palette[(int(c) - 1) % len(palette)])
            for c in sorted(clusters, key=lambda c: (c in (None, NO_CLUSTER), str(c)))}


def _cluster_name(c) -> str:
    return "no cluster" if c in (None, NO_CLUSTER) else f"cluster {c}"


def per_language(res: dict[str, Any], path: Path) -> Path:
    """Two panels: balanced F1 (languages with both classes) and FPR (languages with benign items)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    rows = sorted(res["languages"], key=lambda r: (r["cluster"] is None, r["cluster"] or 0, r["lang"]))
    colors = _cluster_colors({r["cluster"] for r in rows})
    panels = [("f1_balanced", "balanced F1 (%)"), ("fpr", "false-positive rate on benign items (%)")]
    widths = [max(1, sum(r["metrics"][m] is not None for r in rows)) for m, _ in panels]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.12 * max(widths) + 2), 8))
    for ax, (metric, label) in zip(axes, panels):
        sel = [r for r in rows if r["metrics"][metric] is not None]
        x = np.arange(len(sel))
        bars = ax.bar(x, [100 * r["metrics"][metric] for r in sel], color=[colors[r["cluster"]] for r in sel])
        for bar, r in zip(bars, sel):
            if r["domain"] == "OOD":
                bar.set_hatch("///")
                bar.set_edgecolor("white")
        ax.set_xticks(x, [r["lang"] for r in sel], rotation=90, fontsize=6 if len(sel) > 60 else 8)
        ax.set_ylabel(label)
        ax.set_xlim(-1, max(len(sel), 1))
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colors[c], label=_cluster_name(c)) for c in colors]
    handles.append(Patch(facecolor="#cccccc", hatch="///", edgecolor="white", label="out-of-domain"))
    fig.suptitle(f"{res['model']['name']} on {res['suite']['name']}: per language", y=0.99, fontsize=10)
    fig.legend(handles=handles, ncol=len(handles), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.96),
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cluster_heatmap(res: dict[str, Any], path: Path) -> Path:
    """Recall on unsafe items and FPR on benign items, cluster (rows) by set (columns), annotated."""
    plt = _pyplot()
    clusters = res["clusters"]
    names = [s["name"] for s in res["sets"] if s["per_language"]]
    panels = [(m, t, [n for n in names if any(c["by_set"].get(n, {}).get(m) is not None for c in clusters)])
              for m, t in (("recall", "recall on unsafe items (%)"), ("fpr", "FPR on benign items (%)"))]
    panels = [p for p in panels if p[2]]
    if not panels:  # nothing defined per cluster: draw an empty, labelled figure
        panels = [("fpr", "no per-language sets", [])]
    ratios = [max(2, len(p[2])) for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 + 0.9 * sum(ratios), 1.5 + 0.45 * len(clusters)),
                             squeeze=False, gridspec_kw={"width_ratios": ratios})
    for ax, (metric, title, cols) in zip(axes[0], panels):
        grid = np.array([[np.nan if c["by_set"].get(n, {}).get(metric) is None else 100 * c["by_set"][n][metric]
                          for n in cols] for c in clusters]).reshape(len(clusters), len(cols))
        cmap = "RdYlGn" if metric == "recall" else "RdYlGn_r"
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "—" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(clusters)), [_cluster_name(c["cluster"]) for c in clusters], fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{res['model']['name']}: by cluster", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability(res: dict[str, Any], path: Path) -> Path:
    """Observed unsafe fraction against mean score per bin, with bin counts below."""
    plt = _pyplot()
    bins = res["reliability"]["bins"]
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.plot([b["mean_score"] for b in bins], [b["frac_unsafe"] for b in bins], "o-", label="model")
    ax.set_ylabel("fraction unsafe")
    ece = res["reliability"]["ece"]
    ax.set_title(f"{res['model']['name']}: reliability (ECE {'—' if ece is None else f'{100 * ece:.1f}'}%)")
    ax.legend(fontsize=8)
    axn.bar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["n"] for b in bins],
            width=[b["hi"] - b["lo"] for b in bins], color="#888888")
    axn.set_yscale("log")
    axn.set_xlabel("unsafe score")
    axn.set_ylabel("items")
    axn.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tradeoff(results: Sequence[dict[str, Any]], path: Path, max_fpr: float = 0.3) -> Path:
    """Recall on the unsafe sets (solid: all headline unsafe sets; dashed: MultiJail) against FPR on real user
    prompts, one colour per result, the target FPR marked; the x axis stops at ``max_fpr``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    cmap = plt.get_cmap("tab10")
    target = None
    for i, res in enumerate(results):
        hl = res.get("headline") or {}
        if "curves" not in hl:
            continue
        target = hl["target_fpr"]
        auc = hl["overall"]["auroc"]
        for key, style in (("all unsafe sets", "-"), ("multijail", "--")):
            if key in hl["curves"]:
                c = hl["curves"][key]
                ax.step([100 * x for x in c["fpr"]], [100 * y for y in c["recall"]], style, where="post",
                        color=cmap(i % 10), label=f"{res['model']['name']}: {key}"
                        + (f" (AUROC {100 * auc:.1f})" if key == "all unsafe sets" and auc is not None else ""))
        o = hl["overall"]
        ax.plot(100 * o["benign_fpr_at_model_threshold"], 100 * o["recall_at_model_threshold"], "o",
                color=cmap(i % 10))
    if target is not None:
        ax.axvline(100 * target, color="grey", lw=1, ls=":", label=f"{100 * target:.0f}% of real prompts flagged")
    else:
        ax.text(0.5, 0.5, "no headline sets in these results", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 100 * max_fpr)
    ax.set_ylim(0, 100)
    ax.set_xlabel("FPR on real user prompts (%; languages weighted equally)")
    ax.set_ylabel("recall on unsafe items (%)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Harm caught against real prompts flagged (dot: the model's own threshold)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(res: dict[str, Any], out_dir: Path) -> list[Path]:
    """All four plots into ``out_dir``."""
    return [per_language(res, out_dir / "per_language.png"), cluster_heatmap(res, out_dir / "cluster_heatmap.png"),
            reliability(res, out_dir / "reliability.png"), tradeoff([res], out_dir / "tradeoff.png")]
