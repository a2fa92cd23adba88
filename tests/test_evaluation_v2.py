"""Suite v2: the headline metric on hand-made scores (known answers), sampling by fraction with an evaluation cap,
``also_reserve``, and the committed manifest reserving the peer sets and the eval-only sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from crestguard.cli import app
from crestguard.data.records import Record
from crestguard.evaluation import manifest as mf
from crestguard.evaluation import metrics as M
from crestguard.evaluation.harness import Settings, evaluate
from crestguard.evaluation.report import render_compare, write_all
from crestguard.evaluation.suite import load_suite, materialize, materialize_reserved

V2 = """
name: tinyv2
version: 1
salt: v2-salt
also_reserve: [other]
sets:
  - {name: unsafe_en, dataset: u_en, section: english, per_language: false, headline: unsafe}
  - {name: jail, dataset: jail, section: multilingual, headline: unsafe}
  - {name: real_a, dataset: real_a, section: real_prompts, headline: benign}
  - {name: real_b, dataset: real_b, section: real_prompts, headline: benign, reserve: sample,
     sample: {groups_per_language: 100}}
  - {name: hate, dataset: hate, section: hate, per_language: false, reserve: sample,
     sample: {fraction: 0.5}, evaluate: {groups_per_language: 1}}
"""
OTHER = """
name: other
version: 1
salt: other-salt
sets:
  - {name: peerish, dataset: peerish, section: english, per_language: false}
"""


def _recs(ds: str, lang: str, scores, label: int, group=None) -> list[Record]:
    return [Record(f"{ds}:{lang}{i}", f"s={s} {ds} {lang} {i}", label, lang, ds,
                   group(i) if group else f"{ds}:{lang}{i}") for i, s in enumerate(scores)]


DATA = {
    "u_en": _recs("u_en", "en", [f"{i / 10:.2f}" for i in range(1, 11)], 1),   # 0.10 ... 1.00
    "jail": _recs("jail", "fr", ["0.30", "0.50", "0.70", "0.90"], 1) + _recs("jail", "sw", ["0.96", "0.95"], 1),
    "real_a": _recs("real_a", "en", [f"{i / 200:.3f}" for i in range(1, 41)], 0),  # 0.005 ... 0.200
    "real_b": _recs("real_b", "fr", [f"{0.40 + i / 100:.2f}" for i in range(1, 21)], 0),  # 0.41 ... 0.60
    # 4 templates of 2 cases each (one hateful, one contrast); half the templates reserved, one scored
    "hate": [r for g in range(4) for r in (_recs("hate", "en", ["0.90"], 1, lambda i, g=g: f"t{g}")
                                           + _recs("hate", "en", ["0.60"], 0, lambda i, g=g: f"t{g}"))],
    "peerish": _recs("peerish", "en", ["0.5"], 1),
}
for i, r in enumerate(DATA["hate"]):  # ids must be unique
    DATA["hate"][i] = Record(f"hate:{i}", r.text + f" #{i}", r.label, r.lang, r.source, r.group)


class FromText:
    """Scores written into the text: 's=0.59 ...' scores 0.59."""

    name = "from-text"
    fingerprint = ""
    threshold = 0.5
    train_languages = ["en"]
    train_sources = None

    def predict_scores(self, texts):
        return np.array([float(t.split()[0][2:]) for t in texts])


@pytest.fixture
def v2(tmp_path, monkeypatch):
    monkeypatch.setenv("CRESTGUARD_HOME", str(tmp_path / "home"))
    (tmp_path / "other.yaml").write_text(OTHER)
    path = tmp_path / "tinyv2.yaml"
    path.write_text(V2)
    suite = load_suite(path)
    return suite, materialize(suite, DATA.__getitem__)


def test_threshold_at_fpr_ties_and_weights():
    assert M.threshold_at_fpr([0.1, 0.2, 0.3, 0.4], 0.25) == (np.nextafter(0.3, 1), 0.25)  # just above 0.3
    assert M.threshold_at_fpr([0.1, 0.2], 1.0) == (0.0, 1.0)
    thr, share = M.threshold_at_fpr([0.9, 0.9, 0.1, 0.2], 0.25)  # the tied top pair flags 50%: nothing flagged
    assert thr > 0.9 and share == 0.0
    # weights: the item of weight 0.6 alone exceeds 10%, so the threshold stays above it
    thr, share = M.threshold_at_fpr([0.8, 0.7, 0.1], 0.1, weights=[0.6, 0.05, 0.35])
    assert thr == np.nextafter(0.8, 1) and share == 0.0
    assert M.auroc_vs([0.9, 0.4], [0.6, 0.1]) == M.auroc(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1]))
    from crestguard.evaluation.headline import _lang_weights

    w = _lang_weights(np.array(["en"] * 40 + ["fr"] * 20 + ["ru"] * 2 + ["uk"] * 2))
    assert w.sum() == pytest.approx(1) and (w[0], w[40], w[60], w[62]) == pytest.approx((1 / 120, 1 / 60, 1 / 12, 1 / 12))
    curve = M.tradeoff_curve([0.9, 0.4], [0.6, 0.1], grid=4)
    assert curve == {"fpr": [0.0, 0.25, 0.5, 0.75, 1.0], "recall": [0.5, 0.5, 1.0, 1.0, 1.0]}


def test_headline_known_answer(v2, tmp_path):
    suite, sets = v2
    res = evaluate(FromText(), suite, sets, settings=Settings(n_boot=50), progress=False)
    hl = res["headline"]
    o = hl["overall"]
    # benign weights: en 40 items x 1/80, fr 20 items x 1/40; the two top fr prompts (0.60, 0.59) make 5% exactly,
    # so the threshold is just above 0.58 (unweighted, 5% of 60 items would be 3 and it would sit above 0.57)
    assert o["threshold"] == np.nextafter(0.58, 1) and o["benign_fpr"] == pytest.approx(0.05)
    # unsafe >= 0.59: u_en 0.6..1.0 (5 of 10), jail fr 0.7, 0.9 and sw 0.96, 0.95 (4 of 6)
    assert o["recall"] == pytest.approx(9 / 16) and (o["n_unsafe"], o["n_benign"]) == (16, 60)
    assert hl["by_set"]["unsafe_en"]["recall"] == 0.5 and hl["by_set"]["jail"]["recall"] == pytest.approx(4 / 6)
    u = np.array([r for s in ("u_en", "jail") for r in (float(x.text.split()[0][2:]) for x in DATA[s])])
    b = np.array([float(x.text.split()[0][2:]) for s in ("real_a", "real_b") for x in DATA[s]])
    w = np.r_[np.full(40, 1 / 80), np.full(20, 1 / 40)]
    brute = sum(wj * np.mean((u > bj) + 0.5 * (u == bj)) for bj, wj in zip(b, w))
    assert o["auroc"] == pytest.approx(brute)
    en, fr, sw = (hl["by_language"][c] for c in ("en", "fr", "sw"))
    assert (en["threshold"], en["recall"], en["recall_at_overall"]) == (np.nextafter(0.19, 1), 0.9, 0.5)
    assert (fr["threshold"], fr["recall"]) == (np.nextafter(0.59, 1), 0.5)
    assert sw["threshold"] is None and sw["recall_at_overall"] == 1.0 and "fewer than" in sw["null"]
    assert hl["macro_recall_at_overall"]["value"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    # real prompts at the model's threshold 0.5: en 0 of 40, fr 0.50..0.60 = 11 of 20
    rp = hl["real_prompts"]
    assert rp["by_language"]["fr"]["fp"] == 11 and rp["macro"]["value"] == pytest.approx(0.275)
    assert rp["by_source"]["never_trained_on"]["sets"] == ["real_a"]
    assert rp["by_source"]["never_trained_on"]["fpr"] == 0 and rp["by_source"]["held_out_groups"]["fpr"] == 0.55
    assert o["benign_fpr_at_model_threshold"] == pytest.approx(11 / 40)  # fr weighs half
    # hate: one template scored (hateful 0.90 flagged, contrast 0.60 flagged)
    h = res["hate"]["by_language"]["en"]
    assert (h["n_unsafe"], h["n_safe"], h["recall"], h["contrast_fpr"]) == (1, 1, 1.0, 1.0)
    assert h["f1"] == pytest.approx(2 / 3)
    out = tmp_path / "out"
    write_all(res, out)
    report = (out / "report.md").read_text()
    assert "## Headline: recall at the threshold that flags 5% of real user prompts" in report
    assert "benign sources never trained on" in report and "### Hate speech" in report
    assert (out / "tradeoff.png").stat().st_size > 5000
    json.dumps(res, allow_nan=False)
    assert "| recall @ 5% real-prompt FPR, jail |  | 66.7 | 66.7 | +0.0 |" in render_compare(res, res)
    result = CliRunner().invoke(app, ["eval", "curve", str(out), str(out), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").stat().st_size > 5000


def test_fraction_sample_cap_and_also_reserve(v2):
    suite, sets = v2
    hate = sets[4]
    assert len(hate.held) == 4 and len(hate.records) == 2  # 2 of 4 templates reserved, 1 of them scored
    assert len(hate.reserved_groups) == 2 and {r.group for r in hate.records} < hate.reserved_groups
    assert hate.dropped == {"sampling: beyond 50% of the groups per language": 4,
                            "evaluation cap: beyond 1 groups per language (still reserved)": 2}
    m = mf.build(suite, materialize_reserved(suite, DATA.__getitem__))
    assert "peerish" in m.datasets and "real_a" in m.datasets and "real_b" not in m.datasets
    unscored = next(r for r in hate.held if r not in hate.records)
    assert m.reason(unscored) == "group" and m.reason(Record("x", unscored.text, 0, "en", "x", "x")) == "text"
    assert suite.also_reserve == ("other",)


def test_committed_manifest_reserves_peer_and_eval_only_sources():
    from crestguard.data import load_dataset

    m = mf.load_manifest("default")
    assert {"oasst_prompts", "arena_hard", "alignbench", "openai_moderation"} <= m.datasets
    peer = {s.dataset for s in load_suite("peer").sets}
    assert len(peer) == 14 and peer <= m.datasets
    # the same text through a trainable dataset is refused: DuoGuard's XSafety rows are XSafety's own
    item = load_dataset("peer_duoguard_xsafety").records[0]
    assert m.reason(Record("xsafety:1", item.text, 1, item.lang, "xsafety", "g")) == "text"
    default = load_suite("default")
    assert default.version == 2 and default.also_reserve == ("peer",)
    roles = {s.name: s.headline for s in default.sets}
    assert roles["multijail"] == "unsafe" and roles["oasst_prompts"] == "benign"
    assert {s.name for s in default.sets if s.section == "real_prompts" and s.reserve == "dataset"} == {
        "oasst_prompts", "arena_hard", "alignbench"}


@pytest.mark.parametrize("dataset", ["arena_hard", "peer_gr_aegis"])
def test_a_mix_naming_a_reserved_dataset_is_refused(tmp_path, dataset):
    from crestguard.training.mix import MixError, load_mix

    path = tmp_path / "mix.yaml"
    path.write_text(f"name: t\nlanguages: [en]\nsources:\n  - {{dataset: {dataset}, langs: all}}\n")
    with pytest.raises(MixError, match="reserved for evaluation"):
        load_mix(path)
