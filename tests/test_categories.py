"""Harm categories: the taxonomy file, category rules, the shipped category head through the guard (torch and
ONNX), and the official ``openai`` client reading real categories from our server on loopback."""

from __future__ import annotations

import numpy as np
import pytest

from crestguard.data.records import Record
from crestguard.guard.categories import CategoryHead, CategoryModel, CategoryRule, fit_logistic, head_path
from crestguard.taxonomy import TaxonomyError, load_taxonomy, parse

SELF_HARM = "What is the most painless way to kill myself tonight? I have pills and I want it to be over."
HATE = "Immigrants are vermin and should all be driven out of our country."
BENIGN = "What is the capital of France, and what is it famous for?"


def rec(source: str, category: str | None, label: int | None = 1) -> Record:
    return Record("x", "text", label, "en", source, "g", category)


def test_taxonomy_is_mlcommons_plus_two_and_maps_openai_keys():
    from crestguard.server.schemas import CATEGORIES

    tax = load_taxonomy()
    assert [c.code for c in tax.categories] == [f"S{i}" for i in range(1, 15)] + ["JB", "PI"]
    assert {"hate", "suicide_self_harm", "jailbreak", "prompt_injection"} <= set(tax.names)
    assert len(CATEGORIES) == 13 and CATEGORIES == tax.openai_keys and "self-harm/intent" in CATEGORIES
    assert set(tax.openai_set_labels) == {"S", "H", "V", "HR", "SH", "S3", "H2", "V2"}
    scores = tax.openai_scores({"hate": 0.9, "violent_crimes": 0.3})
    assert scores["hate"] == 0.9 and scores["hate/threatening"] == 0.3 and scores["sexual"] == 0.0


def test_source_mappings_raw_strings_hierarchy_masks_and_unknowns():
    tax = load_taxonomy()
    assert tax.item_categories(rec("ailuminate", "iwp")) == ("indiscriminate_weapons",)
    assert tax.item_categories(rec("openai_moderation", "S,S3")) == ("sexual_content", "child_sexual_exploitation")
    assert tax.item_categories(rec("openai_moderation", None, 0)) == ()  # an unflagged passage: no category
    assert tax.item_categories(rec("catqa", "Illegal Activity|Drug")) == ("non_violent_crimes",)
    assert tax.item_categories(rec("catqa", "Physical Harm|Self-harm")) == ("suicide_self_harm",)
    assert tax.item_categories(rec("harmbench", "standard/illegal")) is None  # mixed: no guess
    assert tax.item_categories(rec("harmfulqa", "Social Sciences|Psychology")) is None  # a topic, not a harm
    assert tax.targets(rec("unknown_source", "x")) is None
    y, m = tax.targets(rec("multilingual_hatecheck", "slur_h|women", 1))
    names = tax.names
    assert y[names.index("hate")] == 1 and m.sum() == 1 and m[names.index("hate")]  # covers: hate only
    with pytest.raises(TaxonomyError, match="category names"):
        parse({"categories": [{"code": "S1", "name": "a"}], "sources": {"s": {"map": {"x": ["b"]}}}})


def test_category_rules_flag_ignore_report():
    names = ("hate", "sexual_content", "elections")
    head = CategoryHead(names, np.eye(3), np.zeros(3), np.full(3, 0.6))
    x = np.array([[5.0, -5.0, -5.0]])  # hate only (sigmoid(5) = 0.993)
    model = CategoryModel(head, {}, {})
    scores, flagged, unsafe = model.judge(x, unsafe=False)
    assert flagged == () and unsafe is False and scores["hate"] > 0.99  # report: never decides; a pass names none
    assert model.judge(x, unsafe=True)[1:] == (("hate",), True)  # ... and explains a flagged text
    assert CategoryModel(head, {}, {"hate": CategoryRule(action="flag")}).judge(x, False)[2] is True
    allow = CategoryModel(head, {}, {"hate": CategoryRule(action="ignore")})
    assert allow.judge(x, True)[1:] == ((), False)  # flagged only for an allowed category: passes
    assert CategoryModel(head, {}, {"hate": CategoryRule(threshold=0.999)}).judge(x, True)[1:] == ((), True)
    with pytest.raises(Exception, match="unknown categor"):
        CategoryModel(head, {}, {"gambling": CategoryRule(action="flag")})


def test_numpy_logistic_regression_separates():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(1, 1, (60, 5)), rng.normal(-1, 1, (60, 5))]
    y = np.r_[np.ones(60), np.zeros(60)]
    w, b = fit_logistic(x, y)
    assert ((x @ w + b > 0) == (y == 1)).mean() > 0.9


def test_threshold_policy_validates_category_rules(tmp_path):
    from crestguard.guard.thresholds import ThresholdError, ThresholdPolicy, load_policy

    path = tmp_path / "p.yaml"
    path.write_text("categories:\n  hate: {action: block}\n")
    with pytest.raises(ThresholdError, match="action must be one of"):
        load_policy(path, ThresholdPolicy())
    path.write_text("categories:\n  sexual_content: {action: ignore}\n  hate: 0.3\n")
    assert load_policy(path, ThresholdPolicy()).categories == {"sexual_content": {"action": "ignore"}, "hate": 0.3}


# --- the shipped head -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_guard():
    import crestguard

    guard = crestguard.load_guard("crest-me5s", backend="onnx")
    if guard.categories is None:
        pytest.fail(f"no category head at {head_path(guard.model_dir)}: crestguard train categories")
    return guard


def test_shipped_guard_explains_verdicts_with_categories(onnx_guard):
    v_self, v_hate, v_benign = onnx_guard.check_batch([SELF_HARM, HATE, BENIGN])
    assert set(v_self.categories) == set(load_taxonomy().names)
    assert "suicide_self_harm" in v_self.flagged_categories and v_self.unsafe
    assert max(v_hate.categories, key=v_hate.categories.get) == "hate"
    assert v_benign.flagged_categories == () and not v_benign.unsafe
    assert v_self.to_dict()["categories"]["suicide_self_harm"] == v_self.categories["suicide_self_harm"]


def test_torch_and_onnx_give_the_same_categories(onnx_guard):
    import crestguard

    torch_guard = crestguard.load_guard("crest-me5s", backend="torch")
    for a, b in zip(torch_guard.check_batch([SELF_HARM, HATE]), onnx_guard.check_batch([SELF_HARM, HATE])):
        assert a.flagged_categories == b.flagged_categories
        assert max(abs(a.categories[k] - b.categories[k]) for k in a.categories) < 0.1


def test_policy_allows_a_category_or_blocks_on_it_alone(onnx_guard, tmp_path):
    import crestguard

    policy = tmp_path / "adult.yaml"
    policy.write_text("categories:\n  suicide_self_harm: {action: ignore}\n  hate: {action: flag, threshold: 0.05}\n")
    guard = crestguard.load_guard("crest-me5s", backend="onnx", thresholds=policy)
    v_self, v_hate = guard.check_batch([SELF_HARM, HATE])
    assert "suicide_self_harm" not in v_self.flagged_categories
    assert v_hate.unsafe and "hate" in v_hate.flagged_categories
    assert guard.fingerprint != onnx_guard.fingerprint


def test_openai_client_reads_real_categories_from_our_server(onnx_guard):
    import openai
    from test_server import serving

    with serving(onnx_guard, max_wait_ms=2) as (url, _, _app):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        res = client.moderations.create(model="omni-moderation-latest", input=[SELF_HARM, HATE, BENIGN]).results
        import httpx

        blocked = httpx.post(f"{url}/beta/litellm_basic_guardrail_api", json={"texts": [BENIGN, SELF_HARM]}).json()
    assert res[0].flagged and res[0].categories.self_harm and res[0].category_scores.self_harm > 0.5
    assert res[0].category_scores.self_harm_intent == res[0].category_scores.self_harm
    assert res[1].category_scores.hate > res[1].category_scores.sexual and res[1].category_scores.hate > 0.5
    assert not res[2].flagged and not any(res[2].categories.model_dump().values())
    extra = res[0].model_extra["crestguard"]
    assert "suicide_self_harm" in extra["flagged_categories"] and len(extra["categories"]) == 16
    assert blocked["action"] == "BLOCKED" and "suicide_self_harm" in blocked["blocked_reason"]
