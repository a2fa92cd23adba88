"""Metrics against hand-computed cases, text form heuristic, bootstrap and macro averages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crestguard.evaluation import metrics as M
from crestguard.evaluation.textform import length_bucket, text_form


def test_hand_computed_mixed_set():
    # 3 unsafe, 4 benign; threshold 0.5 -> flagged: u1 u2 b1  => TP 2, FN 1, FP 1, TN 3
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.5, 0.2, 0.7, 0.1, 0.3, 0.4]
    m = M.binary_metrics(y, s)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["fpr"] == pytest.approx(1 / 4)
    r, f = 2 / 3, 1 / 4
    assert m["f1_balanced"] == pytest.approx(2 * r / (1 + r + f))
    assert m["accuracy"] == pytest.approx(5 / 7)
    # AUROC by pair counting: 12 pairs (unsafe, benign); 0.9 beats 4, 0.5 beats 3 (0.1, 0.3, 0.4), 0.2 beats 1
    assert m["auroc"] == pytest.approx((4 + 3 + 1) / 12)
    assert m["null"] == {}


def test_no_unsafe_items_gives_null_with_reason():
    m = M.binary_metrics([0, 0, 0, 0], [0.9, 0.1, 0.2, 0.6])
    assert m["f1"] is None and m["recall"] is None and m["f1_balanced"] is None
    assert m["null"]["f1"] == M.NO_UNSAFE == m["null"]["recall"] == m["null"]["auroc"] == m["null"]["auprc"]
    assert m["fpr"] == 0.5
    assert m["precision"] == 0.0  # two flagged, none unsafe: defined, and zero
    nothing = M.binary_metrics([0, 0], [0.1, 0.2])
    assert nothing["precision"] is None and nothing["null"]["precision"] == M.NOTHING_FLAGGED
    assert nothing["fpr"] == 0.0


def test_all_unsafe_items():
    m = M.binary_metrics([1, 1, 1, 1], [0.9, 0.8, 0.1, 0.6])
    r = 3 / 4
    assert m["recall"] == r and m["precision"] == 1.0
    assert m["f1"] == pytest.approx(2 * r / (1 + r))  # the "flag everything scores 100" identity
    assert m["fpr"] is None and m["null"]["fpr"] == M.NO_SAFE
    assert m["auroc"] is None and m["null"]["auroc"] == M.NO_SAFE
    assert m["f1_balanced"] is None and m["null"]["f1_balanced"] == M.NO_SAFE


def test_empty_and_all_nan():
    for y, s in (([], []), ([1, 0], [math.nan, math.nan])):
        m = M.binary_metrics(y, s)
        assert m["n"] == 0
        assert all(m[k] is None for k in M.METRICS)
        assert all(m["null"][k] == M.NO_ITEMS for k in M.METRICS)
    assert M.binary_metrics([1, 0], [math.nan, math.nan])["n_invalid"] == 2


def test_nan_scores_are_excluded_and_counted():
    m = M.binary_metrics([1, 1, 0], [0.9, math.nan, 0.1])
    assert m["n"] == 2 and m["n_invalid"] == 1
    assert m["recall"] == 1.0 and m["fpr"] == 0.0
    assert "1 item(s) with a NaN score" in m["null"]["_invalid"]


def test_ties_at_threshold_and_in_ranking():
    # a score equal to the threshold is flagged
    assert M.binary_metrics([1, 0], [0.5, 0.5])["tp"] == 1
    assert M.binary_metrics([1, 0], [0.5, 0.5])["fp"] == 1
    # all scores tied: AUROC 0.5, AP = prevalence
    assert M.auroc(np.array([1, 0, 1, 0, 0]), np.full(5, 0.3)) == 0.5
    assert M.average_precision(np.array([1, 0, 1, 0, 0]), np.full(5, 0.3)) == pytest.approx(2 / 5)
    # partial tie: pairs (0.5 vs 0.5) count one half -> (0.5 + 1 + 1 + 1) / 4
    y, s = np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.8, 0.2])
    assert M.auroc(y, s) == pytest.approx(0.875)
    # thresholds 0.8 (P 1, R .5), 0.5 (P 2/3, R 1): AP = .5 * 1 + .5 * 2/3
    assert M.average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_auroc_and_ap_agree_with_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = np.round(np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1), 1)  # coarse: many ties
    assert M.auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert M.average_precision(y, s) == pytest.approx(average_precision_score(y, s))


def test_ece_and_reliability_by_hand():
    # bin 8: score .8, all unsafe -> gap .2; bin 3: score .3, benign -> gap .3; equal weights
    assert M.ece(np.array([1, 0]), np.array([0.8, 0.3])) == pytest.approx(0.25)
    bins = M.reliability(np.array([1, 0, 1]), np.array([0.8, 0.3, 1.0]))
    assert [b["n"] for b in bins] == [1, 1, 1]  # a score of exactly 1.0 falls in the last bin
    assert M.ece(np.array([]), np.array([])) is None


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.clip(y * 0.4 + rng.random(300) * 0.6, 0, 1)
    point = M.binary_metrics(y, s)
    ci = M.bootstrap_ci([(y, s)], ("f1", "fpr"), n_boot=300, seed=3)
    assert ci == M.bootstrap_ci([(y, s)], ("f1", "fpr"), n_boot=300, seed=3)
    for m in ("f1", "fpr"):
        lo, hi = ci[m]
        assert lo <= point[m] <= hi and hi - lo < 0.25
    # undefined metric: no interval
    assert M.bootstrap_ci([(np.ones(10, int), np.ones(10))], ("fpr", "recall"), n_boot=50)["fpr"] is None


def test_macro_average_skips_undefined_and_counts():
    blocks = [{"fpr": 0.1}, {"fpr": None}, {"fpr": 0.3}]
    assert M.macro(blocks, "fpr") == {"value": pytest.approx(0.2), "n_groups": 2, "n_null": 1}
    assert M.macro([{"fpr": None}], "fpr")["value"] is None
    # bootstrap of a macro average over two groups: the interval brackets the mean of the two
    g1 = (np.zeros(50, int), np.r_[np.ones(5), np.zeros(45)])   # FPR .1
    g2 = (np.zeros(50, int), np.r_[np.ones(15), np.zeros(35)])  # FPR .3
    lo, hi = M.bootstrap_ci([g1, g2], ("fpr",), n_boot=400)["fpr"]
    assert lo < 0.2 < hi


@pytest.mark.parametrize(
    "text, form",
    [
        ("What is the boiling point of water?", "question"),
        ("¿Cuál es la capital de Francia?", "question"),
        ("ما هي عاصمة مصر؟", "question"),
        ("日本の首都はどこですか？", "question"),
        ("Ποια είναι η πρωτεύουσα της Ελλάδας;", "question"),
        ('He asked: "is it safe?"', "question"),
        ("Show all my alarms", "command"),
        ("Please write a poem about the sea.", "command"),
        ("Can you list three fruits", "command"),
        ("Translate the following into French:", "command"),
        ("The cat sat on the mat.", "statement"),
        ("Ich gehe morgen ins Kino.", "statement"),
        ("x" * 400, "long"),
        ("One. Two. Three. Four.", "long"),
    ],
)
def test_text_form(text, form):
    assert text_form(text) == form


def test_length_buckets():
    assert length_bucket("  " + "a" * 40 + " ") == "<=40"
    assert length_bucket("a" * 41) == "41-100"
    assert length_bucket("a" * 1000) == "251-1000"
    assert length_bucket("a" * 1001) == ">1000"
