"""Write a clustering run and a language selection as JSON + Markdown."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path


def display_path(path: str | Path) -> str:
    """``path`` relative to the repository when inside it (a committed command must not name a machine)."""
    from crestguard.paths import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def command_line(opts, out: Path, reference: str | Path | None = None) -> str:
    """The ``crestguard cluster`` command that reproduces ``opts`` (non-default options only)."""
    from crestguard.clustering.pipeline import DEFAULT_OUT, ClusterOptions

    default = ClusterOptions()
    parts = ["crestguard cluster"]
    for f in fields(opts):
        value = getattr(opts, f.name)
        if value == getattr(default, f.name) or f.name in ("data_dir", "refresh"):
            continue
        if f.name == "bf16":
            parts.append("--bf16" if value else "--fp32")
        elif f.name == "langs":
            parts.append(f"--langs {','.join(value)}")
        else:
            parts.append(f"--{f.name.replace('_', '-')} {value}")
    if reference:
        parts.append(f"--reference {display_path(reference)}")
    if Path(out).resolve() != DEFAULT_OUT:
        parts.append(f"--out {display_path(out)}")
    return " ".join(parts)


def _table(header: list[str], rows: list[list]) -> list[str]:
    cell = lambda v: "–" if v is None else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _names(codes: list[str]) -> str:
    from crestguard import languages

    return ", ".join(f"{c} ({languages.get(c).name})" for c in codes)


def _or_none(items: list[str]) -> str:
    return ", ".join(items) or "none"


def _setup(result: dict) -> list[str]:
    c, e, o = result["corpus"], result["embedding"], result["options"]
    lines = [
        f"- Corpus: {c['name']}, {c['languages']} languages x {c['sentences_per_language']} parallel "
        f"sentences (the same ids in every language, drawn with seed {o['seed']} from "
        f"{c['parallel_sentences_available']}); "
        f"{c['truncated_sentences']} sentences truncated.",
        f"- Encoder: {e['backbone']}, layer {e['layer']}, {e['pooling']} pooling over non-padding tokens "
        f"(Eq. 1), {e['precision']}. Centroid = mean sentence vector per language (Eq. 2), L2-normalized.",
        f"- Spherical k-means: {o['n_init']} k-means++ restarts (Lloyd, then Hartigan moves), "
        f"seed {o['seed']}.",
        f"- Embedding time when computed: {e['seconds_when_computed']} s "
        f"({e['sentences_per_second_when_computed']} sentences/s on the machine and load of that run).",
    ]
    if c["excluded_languages"]:
        why = "; ".join(f"{lang}: {reason}" for lang, reason in c["excluded_languages"].items())
        lines.append(f"- Not clustered ({len(c['excluded_languages'])}): {why}.")
    return lines


def _k_section(result: dict) -> list[str]:
    k = result["k"]
    rows = [[r["k"], r["inertia"], r["chord_gap"], r["silhouette"], r["ari_paper"], r["nmi_paper"]]
            for r in k["table"]]  # fmt: skip
    return [
        f"## k = {k['chosen']} ({k['how']})",
        "",
        f"Elbow rule: {k['elbow_rule']}. It picks k = {k['elbow_k']}; the best silhouette is at "
        f"k = {k['best_silhouette_k']}. At k = {k['chosen']}: inertia {result['inertia']}, "
        f"silhouette {result['silhouette']}.",
        "",
        *_table(["k", "inertia", "gap below chord", "silhouette", "ARI vs paper", "NMI vs paper"], rows),
        "",
        "![k curve](k_curve.png)",
    ]


def _clusters_section(result: dict) -> list[str]:
    central = {row["code"]: row["centrality"] for row in result["languages"]}
    rows = []
    for cid, members in result["clusters"].items():
        prof = result["cluster_profiles"][cid]
        scripts = ", ".join(f"{s} {n}" for s, n in prof["scripts"].items())
        ordered = sorted(members, key=lambda lang: -central[lang])
        rows.append([cid, len(members), prof["median_cc100_gib"], scripts, _names(ordered)])
    return [
        "## Clusters",
        "",
        "Cluster ids follow the paper's Table 8 where the Hungarian matching pairs a cluster with one of the "
        "paper's; clusters without a partner are numbered after 8. Centrality = mean cosine to the members.",
        "",
        *_table(["cluster", "size", "median CC-100 GiB", "scripts", "languages (most central first)"], rows),
    ]


def _paper_section(result: dict) -> list[str]:
    p = result["paper_comparison"]
    mapping = ", ".join(f"{a} -> {b}" for a, b in p["mapping"].items())
    rows = [[_names([d["lang"]]), d["ours"], d["reference"]] for d in p["differences"]]
    return [
        "## Against the paper's clusters (Table 8)",
        "",
        f"Over the {p['n_common']} languages both cover: **ARI {p['ari']}, NMI {p['nmi']}**; {p['agree']} "
        f"languages in the matched cluster, {len(p['differences'])} elsewhere. Matching (ours -> paper): "
        f"{mapping}.",
        "",
        *_table(["language", "ours", "paper"], rows),
        "",
        f"Only in this run: {_or_none(p['only_ours'])}. Only in the paper: {_or_none(p['only_reference'])}.",
    ]


def _stability_section(result: dict) -> list[str]:
    k, seeds, halves = result["k"]["chosen"], result["stability"]["seeds"], result["stability"]["halves"]
    between, to_full = halves["ari_between_halves"], halves["ari_half_vs_full"]
    lines = [
        "## Stability",
        "",
        f"- Seeds {seeds['seeds'][0]}..{seeds['seeds'][-1]} at k = {k}: ARI with this run mean "
        f"{seeds['mean']}, min {seeds['min']}.",
        f"- {halves['splits']} random splits of the sentences into disjoint halves of "
        f"{halves['sentences_per_half']}: ARI between the two halves' clusterings mean {between['mean']} "
        f"(min {between['min']}); each half against this run mean {to_full['mean']} (min {to_full['min']}). "
        f"Elbow k on each half ({halves['elbow_sweep_restarts']} restarts per k): "
        f"{halves['elbow_k_per_half']}.",
    ]
    r = result.get("reference_comparison")
    if r:
        lines.append(
            f"- Against `{r['path']}`: ARI {r['ari']}, NMI {r['nmi']} over {r['n_common']} languages, "
            f"{len(r['differences'])} in another cluster; largest centroid-cosine difference "
            f"{r['max_abs_cosine_difference']}."
        )
    return lines


def write_cluster_report(result: dict, out: Path) -> None:
    """``clusters.json`` (everything) and ``clusters.md`` (the readable summary) in ``out``."""
    (out / "clusters.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    sections = [
        ["# Language clusters", "", f"Command: `{result['command']}`", "", *_setup(result)],
        _k_section(result),
        _clusters_section(result),
        _paper_section(result),
        _stability_section(result),
    ]
    if (out / "tsne.png").exists():
        sections.append(["## Figures", "", "![centroid similarity](centroid_similarity.png)", "",
                         "![t-SNE](tsne.png)"])  # fmt: skip
    (out / "clusters.md").write_text("\n\n".join("\n".join(s) for s in sections) + "\n", encoding="utf-8")


def write_selection_report(doc: dict, json_path: Path) -> None:
    """``languages.json`` and a Markdown twin beside it (same stem, ``.md``)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    cmp = doc["paper_selection_comparison"]
    params = ", ".join(f"{k} {v}" for k, v in doc["params"].items())
    rows = [[p["cluster"], p["rank"], _names([p["lang"]]), p["cc100_gib"], p["centrality"], p["reason"]]
            for p in doc["picks"]]  # fmt: skip
    lines = [
        "# Training languages",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Clusters: {doc['clusters_source']}. Rule: {doc['rule']} ({params}).",
        "",
        f"**{len(doc['languages'])} languages: {', '.join(doc['languages'])}**",
        "",
        *_table(["cluster", "pick", "language", "CC-100 GiB", "centrality", "reason"], rows),
        "",
        f"Against the paper's 13 ({', '.join(cmp['paper'])}): same {_or_none(cmp['same'])}; only ours "
        f"{_or_none(cmp['only_ours'])}; only the paper {_or_none(cmp['only_paper'])}.",
    ]
    if doc["uncovered_clusters"]:
        why = "; ".join(f"{c}: {reason}" for c, reason in doc["uncovered_clusters"].items())
        lines += ["", f"Clusters without a pick: {why}."]
    if doc["unscored_languages"]:
        why = "; ".join(f"{c}: {reason}" for c, reason in doc["unscored_languages"].items())
        lines += ["", f"Not scored ({len(doc['unscored_languages'])}): {why}."]
    if doc["differences_explained"]:
        lines += [
            "",
            "## Why the picks differ from the paper's",
            "",
            *[f"- {d}" for d in doc["differences_explained"]],
        ]
    json_path.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
