"""Clustering: pooling with padding, centroids, the k rule, determinism, comparison, selection, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from unittest.mock import ANY

import numpy as np
import pytest

from crestguard.clustering.compare import compare_partitions, match_clusters, relabel_like
from crestguard.clustering.corpus import ParallelCorpus, from_records
from crestguard.clustering.embed import EmbedSpec, SentenceEmbeddings, centroids, embed_corpus
from crestguard.clustering.kmeans import elbow, l2_normalize, spherical_kmeans, sweep_k
from crestguard.clustering.selection import PAPER_PICKS, SelectionParams, select_languages, selection_report
from crestguard.clustering.stability import split_half_stability
from crestguard.data.records import Record
from crestguard.errors import CrestGuardError, DataError


def blobs(k: int, per: int, dim: int = 64, spread: float = 0.05, seed: int = 0, shared: float = 0.0):
    """``k`` groups of ``per`` points around random directions, optionally all near one shared direction."""
    rng = np.random.default_rng(seed)
    centers = l2_normalize(rng.normal(size=(k, dim)))
    base = shared * l2_normalize(rng.normal(size=(1, dim)))
    x = np.concatenate([base + centers[i] + spread * rng.normal(size=(per, dim)) for i in range(k)])
    return x, np.repeat(np.arange(k), per)


def ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


# --- centroids and pooling ----------------------------------------------------------------------------------


def test_centroids_are_means_over_sentences():
    v = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)  # 2 languages, 3 sentences, width 2
    np.testing.assert_allclose(centroids(v), [[2.0, 3.0], [8.0, 9.0]])
    emb = SentenceEmbeddings(["a", "b"], ["1", "2", "3"], v, {}, [], {}, folder=None)
    np.testing.assert_allclose(emb.centroids(np.array([0, 2])), [[2.0, 3.0], [8.0, 9.0]])
    np.testing.assert_allclose(emb.centroids(np.array([1])), [[2.0, 3.0], [8.0, 9.0]])
    np.testing.assert_allclose(l2_normalize(np.array([[3.0, 4.0]])), [[0.6, 0.8]])
    with pytest.raises(CrestGuardError, match="all zeros"):
        l2_normalize(np.zeros((2, 3)))


@pytest.mark.backbone
def test_embedding_ignores_padding_and_is_cached(me5, tmp_path):
    """A short sentence batched with long ones gets the same Eq. 1 vector as alone; re-runs read the cache."""
    texts = {
        "en": [
            "Hi.",
            "This is a considerably longer sentence, so the short one gets plenty of padding here.",
            "Ok",
        ],
        "de": [
            "Hallo.",
            "Dies ist ein deutlich längerer Satz, damit der kurze viel Auffüllung bekommt.",
            "Gut",
        ],
    }
    corpus = ParallelCorpus("toy", ["1", "2", "3"], texts)
    spec = EmbedSpec("me5-small-q4", bf16=False, batch_size=3)
    emb = embed_corpus(corpus, spec, backbone=me5, cache_root=tmp_path)
    assert emb.vectors.shape == (2, 3, 384) and emb.computed == ["en", "de"]
    for li, lang in enumerate(texts):
        for si, text in enumerate(texts[lang]):
            alone = me5.encode([text], normalize=False)[0]
            np.testing.assert_allclose(emb.vectors[li, si], alone, atol=1e-4)
    # Eq. 1 by hand on the unpadded sentence: the mean of the last hidden states of its tokens.
    import torch

    enc = me5.tokenize([texts["en"][0]])
    with torch.inference_mode():
        hidden = me5.model(**enc).last_hidden_state[0]
    np.testing.assert_allclose(emb.vectors[0, 0], hidden.mean(dim=0).numpy(), atol=1e-4)
    assert not np.allclose(np.linalg.norm(emb.vectors, axis=-1), 1.0)  # pooled, not normalized
    again = embed_corpus(corpus, spec, cache_root=tmp_path)  # no backbone passed: must not need one
    assert again.computed == []
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    assert spec.cache_dir(corpus, tmp_path) != EmbedSpec("me5-small-q4", layer=6).cache_dir(corpus, tmp_path)
    with pytest.raises(CrestGuardError, match="layer 13 is not in me5-small-q4: hidden states 0..12"):
        embed_corpus(corpus, EmbedSpec("me5-small-q4", layer=13), backbone=me5, cache_root=tmp_path)


# --- corpus -------------------------------------------------------------------------------------------------


def _rec(lang: str, group: str, text: str = "t") -> Record:
    return Record(f"{lang}:{group}", text, None, lang, "toy", group)


def test_corpus_aligns_ids_and_counts_what_it_leaves_out():
    recs = [_rec("en", g, f"en{g}") for g in "1234"] + [_rec("de", g, f"de{g}") for g in "124"]
    c = from_records("toy", recs, ["en", "de", "fr"])
    assert c.groups == ["1", "2", "4"]
    assert c.texts == {"en": ["en1", "en2", "en4"], "de": ["de1", "de2", "de4"]}
    assert c.excluded == {"fr": "not in toy"} and c.missing == {"de": 1}
    with pytest.raises(DataError, match="appears twice"):
        from_records("toy", recs + [_rec("en", "1")])
    with pytest.raises(DataError, match="3 parallel sentences; 5 were asked"):
        c.subset(5)


def test_subset_takes_the_same_ids_in_every_language_and_is_seeded():
    c = ParallelCorpus(
        "toy",
        [str(i) for i in range(50)],
        {"a": [f"a{i}" for i in range(50)], "b": [f"b{i}" for i in range(50)]},
    )
    s = c.subset(10, seed=3)
    assert s.groups == c.subset(10, seed=3).groups != c.subset(10, seed=4).groups
    assert [t[1:] for t in s.texts["a"]] == [t[1:] for t in s.texts["b"]] == s.groups


def test_real_flores_corpus_is_parallel(data_dir):
    from crestguard.clustering.pipeline import ClusterOptions, load_corpus

    c = load_corpus(ClusterOptions(langs=("en", "zho_Hans", "sw", "br")))
    assert c.langs == ["en", "zh-Hans", "sw"] and len(c.groups) == 1004
    assert set(c.excluded) == {"br"}  # Breton is only in the (non-parallel) Tatoeba pairs


def test_real_ntrex_corpus_is_parallel(data_dir):
    from crestguard.clustering.pipeline import ClusterOptions, load_corpus

    c = load_corpus(ClusterOptions(corpus="ntrex128", langs=("en", "pt", "sr", "eo")))
    assert c.langs == ["en", "pt", "sr"] and len(c.groups) == 1997 and c.excluded == {"eo": "not in ntrex128"}


# --- k-means and the k rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k_true", [3, 5, 8])
def test_elbow_finds_known_number_of_clusters(k_true):
    x, truth = blobs(k_true, per=12, spread=0.08, seed=k_true, shared=2.0)  # centroids all near one direction
    sweep = sweep_k(x, k_max=15, seed=0)
    assert sweep.elbow_k == k_true
    assert ari(sweep.fit(k_true).labels, truth) == 1.0
    sils = [s for s in sweep.silhouettes if s is not None]
    assert sweep.silhouettes[k_true - 1] == max(sils)
    assert all(
        a >= b - 1e-9 for a, b in zip([f.inertia for f in sweep.fits], [f.inertia for f in sweep.fits][1:])
    )


def test_elbow_rule_on_a_hand_made_curve():
    k, gaps = elbow([1, 2, 3, 4, 5], [10.0, 4.0, 1.0, 0.8, 0.6])
    assert k == 3 and gaps[0] == gaps[-1] == 0.0 and max(gaps) == gaps[2]
    with pytest.raises(CrestGuardError, match="at least 3"):
        elbow([1, 2], [2.0, 1.0])
    with pytest.raises(CrestGuardError, match="does not decrease"):
        elbow([1, 2, 3], [1.0, 1.0, 1.0])


def test_spherical_kmeans_is_deterministic_and_reaches_the_best_partition():
    x, truth = blobs(4, per=10, spread=0.3, seed=1)
    a, b = spherical_kmeans(x, 4, seed=7), spherical_kmeans(x, 4, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.inertia == b.inertia and a.labels[0] == 0
    np.testing.assert_allclose(np.linalg.norm(a.centers, axis=1), 1.0)
    # the objective is the cosine inertia, and every seed reaches the same optimum here
    xn = l2_normalize(x)
    assert a.inertia == pytest.approx(np.sum(1 - np.sum(xn * a.centers[a.labels], axis=1)))
    assert [spherical_kmeans(x, 4, seed=s).inertia for s in range(5)] == pytest.approx([a.inertia] * 5)
    with pytest.raises(CrestGuardError, match="between 1 and the number of points"):
        spherical_kmeans(x, 41)


def test_spherical_kmeans_finds_the_global_optimum_of_small_problems():
    """Against brute force over every partition of 9 points into 3 clusters (inertia = n - sum_b ||S_b||)."""
    import itertools

    rng = np.random.default_rng(3)
    for trial in range(3):
        x = l2_normalize(rng.normal(size=(9, 5)) + np.array([3.0, 0, 0, 0, 0]))  # all near one direction
        best = min(
            9 - np.linalg.norm(np.eye(3)[list(lab)].T @ x, axis=1).sum()
            for lab in itertools.product(range(3), repeat=9)
            if len(set(lab)) == 3
        )
        assert spherical_kmeans(x, 3, seed=trial).inertia == pytest.approx(best)


def test_split_half_stability_on_clean_clusters():
    rng = np.random.default_rng(0)
    x, truth = blobs(3, per=5, dim=16, spread=0.05)
    vectors = x[:, None, :] + 0.2 * rng.normal(size=(15, 40, 16))  # 15 languages x 40 sentences
    labels = spherical_kmeans(centroids(vectors), 3).labels
    res = split_half_stability(vectors, 3, labels, k_max=6, splits=2, seed=0, n_init=5)
    assert res["ari_between_halves"]["min"] == 1.0 and res["elbow_k_per_half"] == [[3, 3], [3, 3]]
    assert res["sentences_per_half"] == 20


# --- comparison with a reference partition ------------------------------------------------------------------


def test_comparison_matches_ids_by_hungarian_assignment():
    ref = {"a": 1, "b": 1, "c": 2, "d": 2, "e": 3, "f": 3, "z": 3}
    ours = {"a": 7, "b": 7, "c": 4, "d": 4, "e": 9, "f": 4, "x": 9}
    cmp = compare_partitions(ours, ref)
    assert cmp.mapping == {7: 1, 4: 2, 9: 3}
    assert cmp.n_common == 6 and cmp.agree == 5
    assert cmp.differences == [("f", 4, 2, 3)]
    assert cmp.only_ours == ["x"] and cmp.only_reference == ["z"]
    assert compare_partitions({k: v + 10 for k, v in ref.items()}, ref).ari == 1.0
    assert relabel_like(ours, ref) == {"a": 1, "b": 1, "c": 2, "d": 2, "e": 3, "f": 2, "x": 3}
    # an extra cluster without a partner gets the next free id
    assert relabel_like({"a": 0, "b": 1, "c": 2}, {"a": 5, "b": 5, "c": 6})["b"] == 7
    assert match_clusters([0, 0, 1], [2, 2, 2]) == {0: 2}
    # ties go to equal ids, so a partition already numbered like the reference keeps its numbers
    assert (
        match_clusters([1, 1, 2, 2], [1, 2, 1, 2])
        == match_clusters([2, 2, 1, 1], [1, 2, 1, 2])
        == {1: 1, 2: 2}
    )


# --- training-language selection ----------------------------------------------------------------------------


def _cosine_from(x):
    x = l2_normalize(x)
    return x @ x.T


def _toy_clusters():
    """Cluster 0: {a, b, c} around one direction, {d, e} around another; cluster 1: {f, g}."""
    rng = np.random.default_rng(0)
    u, v, w = np.eye(3)
    pts = {"a": u + 0.05 * v, "b": u, "c": u - 0.05 * v, "d": 0.6 * u + v, "e": 0.6 * u + 1.1 * v, "f": w,
           "g": w + 0.1 * u}  # fmt: skip
    langs = list(pts)
    cos = _cosine_from(np.stack([pts[k] for k in langs]) + 1e-3 * rng.normal(size=(7, 3)))
    clusters = {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "f": 1, "g": 1}
    sizes = {"a": 50.0, "b": 2.0, "c": 60.0, "d": 30.0, "e": 1.0, "f": 5.0, "g": 4.0}
    return langs, cos, clusters, sizes


def test_selection_weighs_resources_and_centrality_and_covers_the_cluster():
    langs, cos, clusters, sizes = _toy_clusters()
    centrality_only = SelectionParams(resource_weight=0.0, two_from=5)
    sel = select_languages(langs, cos, clusters, sizes, params=centrality_only)
    # b is the most central of cluster 0 but small: the floor is min(10, 0.25 x 60) = 10 GiB. Of a, c, d,
    # a leans towards {d, e}, so it is the most central; the second pick must serve d and e.
    assert sel.decisions[0].eligible == ["a", "c", "d"] and sel.decisions[0].floor == 10.0
    assert sel.langs == ["a", "d", "f"] and [p.rank for p in sel.picks] == [1, 2, 1]
    assert sel.picks[0].coverage_gain == pytest.approx(sel.picks[0].centrality)
    assert "below cluster 0's floor of 10.0 GiB" in sel.why_not("b", clusters, sizes)
    assert "eligible in cluster 0 (60 GiB) but scores lower" in sel.why_not("c", clusters, sizes)
    assert all(p.reason.startswith(f"cluster {p.cluster}") for p in sel.picks)
    # the default weight (2 x the size rank) lets resources lead: c (60 GiB) beats a, then a (50) beats d (30)
    sel = select_languages(langs, cos, clusters, sizes, params=SelectionParams(two_from=5))
    assert sel.langs == ["c", "a", "f"]
    assert sel.decisions[0].rounds[1] == {
        "a": (2.0, pytest.approx(sel.picks[1].coverage_gain)),
        "d": (1.0, ANY),
    }
    # one pick only for clusters under two_from members
    assert select_languages(langs, cos, clusters, sizes, params=SelectionParams(two_from=6)).langs == [
        "c",
        "f",
    ]
    # without high-resource members, the floor is a quarter of the largest: f (5 GiB) and g (4 GiB) both pass
    assert sel.decisions[1].floor == 1.25 and sel.decisions[1].eligible == ["f", "g"]
    # restriction to languages with training material; a cluster with none is reported
    sel = select_languages(langs, cos, clusters, sizes, allowed={"b", "e"})
    assert sel.langs == ["b"] and sel.uncovered == {1: "no member has training material"}
    assert sel.why_not("a", clusters, sizes, {"b", "e"}) == "a: no training material"


def test_selection_with_paper_clusters_on_a_synthetic_run():
    """selection_report reads a clusters.json; languages absent from the run are reported, not dropped."""
    from crestguard import languages
    from crestguard.clustering.pipeline import paper_partition

    paper = paper_partition()
    langs = sorted(c for c in paper if languages.get(c).flores)  # the 89 Table-8 languages FLORES-200 has
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(9, 32))
    cos = _cosine_from(np.stack([dirs[paper[c]] + 0.3 * rng.normal(size=32) for c in langs]))
    doc = selection_report(
        {
            "command": "synthetic",
            "languages": [{"code": c, "cluster": paper[c]} for c in langs],
            "centroid_cosine": {"languages": langs, "matrix": cos.tolist()},
        },
        use_paper_clusters=True,
    )
    assert set(doc["unscored_languages"]) == {"br", "fy", "la"}
    assert len(doc["languages"]) == 12  # 1 pick in clusters of < 11 members, 2 in the four larger ones
    assert "id" in doc["languages"]  # the only member of cluster 8 over 10 GiB
    for p in doc["picks"]:
        c = doc["clusters"][str(p["cluster"])]
        assert p["cc100_gib"] >= c["floor_gib"] and p["lang"] == next(iter(c["rounds"][p["rank"] - 1]))
    cmp = doc["paper_selection_comparison"]
    assert sorted(cmp["same"] + cmp["only_paper"]) == sorted(PAPER_PICKS)
    assert len(doc["differences_explained"]) == len(cmp["only_ours"]) + len(cmp["only_paper"])


# --- end to end ---------------------------------------------------------------------------------------------


@pytest.mark.backbone
def test_pipeline_end_to_end_is_deterministic(me5, tmp_path):
    from crestguard.clustering.pipeline import ClusterOptions, run_clustering

    opts = ClusterOptions(
        langs=("en", "de", "nl", "es", "pt", "ar", "fa", "hi", "mr"),
        sentences=8,
        k_max=5,
        stability_seeds=2,
        halvings=1,
        tsne_per_lang=4,
        bf16=False,
        n_init=20,
    )
    first = run_clustering(opts, tmp_path / "a", backbone=me5, cache_root=tmp_path)
    second = run_clustering(opts, tmp_path / "b", plots=False, cache_root=tmp_path)
    assert second["embedding"]["languages_computed_this_run"] == 0
    for key in ("clusters", "k", "paper_comparison", "stability", "centroid_cosine"):
        assert first[key] == second[key]
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "clusters.json",
        "clusters.md",
        "k_curve.png",
        "centroid_similarity.png",
        "tsne.png",
    }
    saved = json.loads((tmp_path / "a" / "clusters.json").read_text())
    assert saved["corpus"]["languages"] == 9 and saved["corpus"]["sentences_per_language"] == 8
    assert len(saved["k"]["table"]) == 5 and 1 <= saved["k"]["chosen"] <= 5
    assert sum(len(m) for m in saved["clusters"].values()) == 9
    assert saved["command"].startswith("crestguard cluster --sentences 8 --k-max 5 --n-init 20 --fp32")
    # a fixed k and a comparison with the first run
    fixed = run_clustering(
        ClusterOptions(**{**opts.__dict__, "k": 2}),
        tmp_path / "c",
        reference=tmp_path / "a" / "clusters.json",
        plots=False,
        cache_root=tmp_path,
    )
    assert len(fixed["clusters"]) == 2 and fixed["k"]["how"] == "fixed by --k"
    assert fixed["reference_comparison"]["max_abs_cosine_difference"] == 0.0


@pytest.mark.parametrize(
    "option, message",
    [
        ({"pooling": "max"}, "unknown pooling 'max'"),
        ({"sentences": 1}, "at least 2"),
        ({"k_max": 2}, "k-max"),
    ],
)
def test_bad_options_are_named(option, message):
    from crestguard.clustering.pipeline import ClusterOptions

    with pytest.raises(CrestGuardError, match=message):
        ClusterOptions(**option).validate()


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "crestguard.cli",
            "select-languages",
            "--clusters",
            str(tmp_path / "none.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "run `crestguard cluster` first" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "crestguard.cli", "cluster", "--corpus", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "unknown corpus 'nope'" in run.stderr
