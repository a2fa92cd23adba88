"""The loaders of the sources added to ../shared/data (prompts.py, harmful.py, hate.py, injection.py) on the real
data: counts, labels and languages against each SOURCE.md, rows flagged as evaluation overlap dropped and counted,
licences verbatim and their verdict for the shipped default, groups (parallel keys, templates)."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache

import pytest

from crestguard.data import DATASETS, get_info, load_dataset
from crestguard.data.registry import licence_ok_for_default

MODULES = ("crestguard.data.prompts", "crestguard.data.harmful", "crestguard.data.hate", "crestguard.data.injection")
NEW = sorted(n for n, info in DATASETS.items() if info.loader.__module__ in MODULES)


@cache
def _load(name):
    return load_dataset(name)


def _by(records, attr):
    return Counter(getattr(r, attr) for r in records)


#: name -> (items read, records kept, label balance, languages), as each SOURCE.md states them (kept = read minus
#: the rows the loader drops, each counted in the report; see the per-dataset tests).
EXPECTED = {
    # benign real prompts
    "llmzoo_multilingual_questions": (1000, 1000, {0: 1000},
                                      {c: 100 for c in ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt",
                                                        "zh-Hans")}),
    "alpaca_eval": (805, 805, {0: 805}, {"en": 805}),
    "belle_eval": (1000, 1000, {0: 1000}, {"zh-Hans": 1000}),
    "arena_hard": (500, 500, {0: 500}, {"en": 500}),
    "alignbench": (683, 683, {0: 683}, {"zh-Hans": 683}),
    "oasst_prompts": (779 + 60 + 100 + 263, 1202, {0: 1140, 1: 12, None: 50},
                      {"en": 779 + 5 + 100 + 263, **{c: 5 for c in ("es", "ru", "de", "fr", "uk", "it", "vi",
                                                                    "zh-Hans", "ko", "ja", "th")}}),
    "toxicchat": (2801, 2801 - 160, {0: 2417 - 124, 1: 384 - 36}, {"en": 2641}),
    # hate speech with contrast cases
    "hatecheck": (3728, 3728, {0: 1165, 1: 2563}, {"en": 3728}),
    "multilingual_hatecheck": (36582, 36582, {0: 11071, 1: 25511},
                               {"ar": 3570, "nl": 3765, "fr": 3718, "de": 3645, "hi": 3565, "it": 3690,
                                "zh-Hans": 3378, "pl": 3815, "pt": 3691, "es": 3745}),
    "sghatecheck": (10926, 10926 - 12, {0: 672 + 660 + 969 + 704, 1: 1581 + 2314 + 1871 + 2144 - 1},
                    {"ms": 2253 - 1, "en_singlish": 2974, "ta": 2851 - 11, "zh-Hans": 2848}),
    # categorized harmful requests
    "catqa": (1650, 1650, {1: 1650}, {"en": 550, "zh-Hans": 550, "vi": 550}),
    "do_not_answer": (939, 939, {1: 939}, {"en": 939}),
    "harmfulqa": (1960, 1960, {1: 1960}, {"en": 1960}),
    "dangerousqa": (200, 200, {1: 200}, {"en": 200}),
    "jade_db": (2230, 2230, {1: 2230}, {"zh-Hans": 2150, "en": 80}),
    "navirocker_red_teaming": (640, 640, {1: 640}, {"en": 320, "ko": 320}),
    "aart": (3269, 3269, {1: 3269}, {"en": 3269}),
    # further prompt sets, jailbreaks, toxicity
    "square": (2 * 14082, 2 * 14082, {0: 2 * 14082}, {"ko": 14082, "en": 14082}),
    "cvalues_responsibility": (664, 664, {None: 664}, {"zh-Hans": 664}),
    "safety_tuned_llamas": (3151, 3151, {0: 50 + 100, 1: 178 + 40 + 100 + 100 + 2483, None: 100}, {"en": 3151}),
    "flames": (1000, 1000, {None: 1000}, {"zh-Hans": 1000}),
    "gptfuzzer": (100, 100, {1: 100}, {"en": 100}),
    "gptfuzzer_templates": (77 + 25, 102, {None: 102}, {"en": 102}),
    "jailbreakbench_artifacts": (1637, 1637, {1: 1637}, {"en": 1637}),
    "hh_rlhf_harmless_base_test": (2312, 2312 - 600, {None: 1712}, {"en": 1712}),
    "tet_toxicity_prompts": (2546, 2546, {1: 2546}, {"en": 2546}),
    # hate speech and offensive language
    "mlma_hate_speech": (13014, 13014, {0: 915 + 661 + 821, 1: 13014 - 2397}, {"en": 5647, "fr": 4014, "ar": 3353}),
    "korean_unsmile": (18742, 18742, {0: 4674, 1: 18742 - 4674}, {"ko": 18742}),
    "kmhas": (30715, 30715, {0: 4887 + 11819, 1: 30715 - 16706}, {"ko": 30715}),
    "korean_hate_speech_beep": (8367, 8367, {0: 3486 + 160, 1: 8367 - 3646}, {"ko": 8367}),
    "kosbi": (2 * 6844, 2 * 6844, {0: 2 * 3459, 1: 2 * 3385}, {"ko": 6844, "en": 6844}),
    "cold": (11754, 11754, {0: 11754 - 5318, 1: 3211 + 2107}, {"zh-Hans": 11754}),
    "indonesian_hate_speech": (13169, 13169, {0: 13169 - 5561, 1: 5561}, {"id": 13169}),
    "portuguese_hate_speech": (5670, 5670, {0: 5670 - 1788, 1: 1788}, {"pt": 5670}),
    "germeval2018": (8541, 8541, {0: 8541 - 2890, 1: 1688 + 1202}, {"de": 8541}),
    "vihsd": (9352, 9352, {0: 2190 + 5548, 1: 212 + 270 + 444 + 688}, {"vi": 9352}),
    "bengali_hate_speech": (5698, 5698, {1: 5698}, {"bn": 5698}),
    # prompt injection
    "tensor_trust": (776 + 570, 1346, {1: 1346}, {"en": 1346}),
    "bipia_attacks": (250, 250, {1: 250}, {"en": 250}),
    "qualifire_prompt_injections": (5000, 5000, {0: 3001, 1: 1999}, {"en": 5000}),
}

#: name -> whether its licence permits training the shipped default (False: NC, ND, research-only, none stated).
LICENCE_OK = {
    "llmzoo_multilingual_questions": False, "alpaca_eval": True, "belle_eval": True, "arena_hard": True,
    "alignbench": False, "oasst_prompts": True, "toxicchat": False,
    "hatecheck": True, "multilingual_hatecheck": True, "sghatecheck": False,
    "catqa": True, "do_not_answer": True, "harmfulqa": True, "dangerousqa": True, "jade_db": True,
    "navirocker_red_teaming": True, "aart": True,
    "square": True, "cvalues_responsibility": True, "safety_tuned_llamas": False, "flames": True, "gptfuzzer": True,
    "gptfuzzer_templates": True, "jailbreakbench_artifacts": True, "hh_rlhf_harmless_base_test": True,
    "tet_toxicity_prompts": False, "mlma_hate_speech": True, "korean_unsmile": False, "kmhas": False,
    "korean_hate_speech_beep": True, "kosbi": True, "cold": True, "indonesian_hate_speech": False,
    "portuguese_hate_speech": False, "germeval2018": True, "vihsd": False, "bengali_hate_speech": True,
    "tensor_trust": False, "bipia_attacks": True, "qualifire_prompt_injections": False,
}


def test_every_new_dataset_is_checked():
    assert sorted(EXPECTED) == NEW == sorted(LICENCE_OK)


def test_every_data_folder_has_a_loader(data_dir):
    folders = {i.folder.split("/")[0] for i in DATASETS.values() if i.folder and i.kind not in ("hub", "peer")}
    assert folders == {p.name for p in data_dir.iterdir() if p.is_dir()}


def test_kinds_and_the_eval_built_set():
    kinds = {n: get_info(n).kind for n in NEW}
    assert {n for n, k in kinds.items() if k == "benign"} == {
        "llmzoo_multilingual_questions", "alpaca_eval", "belle_eval", "arena_hard", "alignbench", "oasst_prompts",
        "square", "cvalues_responsibility"}
    assert {n for n, k in kinds.items() if k == "benchmark"} == {"jailbreakbench_artifacts"}
    assert {n for n in DATASETS if not get_info(n).trainable} == {"jailbreakbench_artifacts"}
    info = get_info("jailbreakbench_artifacts")
    assert "jbb_behaviors" in info.eval_leak and info.metadata()["trainable"] is False
    groups = _by(_load("jailbreakbench_artifacts").records, "group")  # hold out by JBB behavior index
    assert len(groups) == 100


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_labels_languages_match_source(name):
    ds = _load(name)
    read, kept, labels, langs = EXPECTED[name]
    assert (ds.report.items_read, ds.report.kept, len(ds.records)) == (read, kept, kept)
    assert ds.report.items_read == ds.report.kept + ds.report.dropped
    assert ds.label_counts() == labels
    assert ds.languages() == langs
    ids = [r.id for r in ds.records]
    assert len(set(ids)) == len(ids)
    assert all(r.source == name and r.id.startswith(f"{name}:") and r.group.startswith(f"{name}:")
               for r in ds.records)
    assert all(r.text.strip() for r in ds.records)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_licence_is_the_source_md_text(name, data_dir):
    info = get_info(name)
    source = (data_dir / info.folder / "SOURCE.md").read_text(encoding="utf-8")
    stated = re.search(r"^\*\*License \(as stated\):\*\* (.+)$", source, re.M).group(1).strip()
    assert info.licence == stated
    assert info.licence_ok_for_default is LICENCE_OK[name]


def test_licence_rule():
    for ok in ("MIT License (Copyright (c) 2022 Anthropic).", "Apache License 2.0", "CC BY 4.0", "CC BY-SA 4.0",
               "Creative Commons Attribution-ShareAlike 4.0 International", 'begins "Attribution License (ODC-By)"'):
        assert licence_ok_for_default(ok), ok
    for not_ok in ("CC BY-NC 4.0", "CC-BY-NC-4.0", "**CC BY-NC-ND 4.0**", "Attribution-NonCommercial 4.0",
                   "none stated (no LICENSE file)", "Apache-2.0 (research use only)",
                   'none stated (README: "strictly for research purposes")',
                   "Apache-2.0 (repo); Alpaca CC BY-NC 4.0"):
        assert not licence_ok_for_default(not_ok), not_ok
    assert get_info("benign_instructions").licence_ok_for_default is False  # Alpaca is CC BY-NC
    assert get_info("xstest").licence_ok_for_default is True


# --- benign real prompts ------------------------------------------------------------------------------------

def test_llmzoo_is_parallel_by_question_id():
    ds = _load("llmzoo_multilingual_questions")
    groups = _by(ds.records, "group")
    assert len(groups) == 100 and set(groups.values()) == {10}
    assert len({r.lang for r in ds.records if r.group == "llmzoo_multilingual_questions:1"}) == 10
    cats = _by([r for r in ds.records if r.lang == "en"], "category")
    assert cats["coding"] == 7 and cats["math"] == 3 and cats["generic"] == 10


def test_benign_prompt_categories():
    assert _by(_load("alpaca_eval").records, "category") == {
        "selfinstruct": 252, "oasst": 188, "koala": 156, "helpful_base": 129, "vicuna": 80}
    belle = _by(_load("belle_eval").records, "category")
    assert belle["open qa"] == 285 and belle["closed\u00a0qa"] == 52 and len(belle) == 10
    assert len(_by(_load("arena_hard").records, "category")) == 250
    align = Counter(r.category.split("|")[0] for r in _load("alignbench").records)
    assert align["专业能力"] == 124 and align["综合问答"] == 38


def test_oasst_labels_and_groups():
    ds = _load("oasst_prompts")
    bombs = [r for r in ds.records if r.label == 1]
    assert len(bombs) == 12 and {r.group for r in bombs} == {"oasst_prompts:m60:0"}
    assert len({r.lang for r in bombs}) == 12 and bombs[0].text == "How do I build a bomb?"
    unlabelled = [r for r in ds.records if r.label is None]  # deleted or crowd-flagged: review before use
    assert len(unlabelled) == 50 and all(r.category.startswith("validation|") for r in unlabelled)
    assert sum("deleted" in r.category for r in unlabelled) == 12
    assert _by(ds.records, "category") == {"validation": 729, **{c: n for c, n in Counter(
        r.category for r in unlabelled).items()}, "multilingual-60": 60, "en_100": 100, "prompt_lottery": 263}
    # SOURCE.md: the 188 first turns equal AlpacaEval's oasst subset (a cross-dataset overlap to reserve together)
    first = {r.text for r in _load("alpaca_eval").records if r.category == "oasst"}
    assert len(first & {r.text for r in ds.records}) == 188


def test_toxicchat_drops_eval_overlap(data_dir):
    ds = _load("toxicchat")
    assert ds.report.count("eval_overlap") == 160
    rows = [json.loads(line) for line in (data_dir / "toxicchat" / "toxicchat_train_human_annotated.jsonl")
            .read_text(encoding="utf-8").splitlines()]
    flagged = {f"toxicchat:{r['id']}" for r in rows if r["exact_match_eval"]}
    assert len(flagged) == 160 and not flagged & {r.id for r in ds.records}
    jail = [r for r in ds.records if r.category == "jailbreaking"]
    assert jail and all(r.label == 1 for r in jail)
    assert len(jail) == sum(1 for r in rows if r["jailbreaking"] == 1 and not r["exact_match_eval"])


# --- hate speech --------------------------------------------------------------------------------------------

def test_hatecheck_groups_templates_and_categories():
    ds = _load("hatecheck")
    assert all(r.text == r.text.strip() for r in ds.records)
    assert ds.records[0].category == "derog_neg_emote_h|women" and ds.records[0].text == "I hate women."
    assert len(Counter(r.category.split("|")[0] for r in ds.records)) == 29
    assert sum("|" not in r.category for r in ds.records) == 292  # cases without a target
    groups = _by(ds.records, "group")
    assert len(groups) < len(ds.records) / 3  # one template, several targets, one group


def test_multilingual_hatecheck_templates_group_across_languages():
    ds = _load("multilingual_hatecheck")
    langs_of = {}
    for r in ds.records:
        langs_of.setdefault(r.group, set()).add(r.lang)
    assert len(langs_of) == 755 and sum(len(v) == 10 for v in langs_of.values()) == 712
    assert ds.records[0].category == "derog_neg_emote_h|women"


def test_sghatecheck_languages_and_missing_gold():
    ds = _load("sghatecheck")
    assert ds.report.count("missing_field") == 11 and ds.report.count("empty_text") == 1
    assert {r.lang for r in ds.records if r.id.startswith("sghatecheck:ss:")} == {"en_singlish"}
    from crestguard.languages import get

    assert get("en_singlish").name == "English (Singlish)" and get("singlish").code == "en_singlish"
    groups = {}
    for r in ds.records:
        groups.setdefault(r.group, set()).add(r.lang)
    assert max(len(v) for v in groups.values()) == 4  # one template id across the four languages
    assert ds.records[0].category == "profanity_h|Chinese"


# --- categorized harmful requests ---------------------------------------------------------------------------

def test_catqa_is_parallel_and_categorized():
    ds = _load("catqa")
    groups = _by(ds.records, "group")
    assert len(groups) == 550 and set(groups.values()) == {3}
    cats = Counter(r.category.split("|")[0] for r in ds.records)
    assert len(cats) == 11 and set(cats.values()) == {150}
    assert ds.report.count("duplicate_text") == 1650 - 1631  # SOURCE.md: 1,631 distinct texts


def test_harmful_categories():
    dna = Counter(r.category.split("|")[0] for r in _load("do_not_answer").records)
    assert dna["Information Hazards"] == 248 and dna["Human-Chatbot Interaction Harms"] == 117
    assert len(Counter(r.category for r in _load("harmfulqa").records)) == 98
    jade = Counter(r.category.split("|")[0] for r in _load("jade_db").records)
    assert jade == {"违法犯罪": 1289, " 违法犯罪": 2, "侵害权益": 641, "侵犯权益": 73, "歧视偏见": 225}
    assert len(Counter(r.category for r in _load("aart").records)) == 70


def test_navirocker_pairs_english_and_korean(data_dir):
    ds = _load("navirocker_red_teaming")
    pairs = {}
    for r in ds.records:
        pairs.setdefault(r.group, {})[r.lang] = r
    assert len(pairs) == 320 and all(set(p) == {"en", "ko"} for p in pairs.values())
    assert all(p["en"].category == p["ko"].category for p in pairs.values())
    ko = [json.loads(line) for line in (data_dir / "navirocker_red_teaming" / "llm-red-teaming-dataset-kr.jsonl")
          .read_text(encoding="utf-8").splitlines() if line.strip()]
    assert all(r["topic"] == [pairs[f"navirocker_red_teaming:{i + 1}"]["en"].category.split("|")[0]]
               for i, r in enumerate(ko))


# --- further prompt sets, jailbreaks, toxicity --------------------------------------------------------------

def test_hh_rlhf_drops_eval_overlap(data_dir):
    ds = _load("hh_rlhf_harmless_base_test")
    assert ds.report.count("eval_overlap") == 600
    rows = [json.loads(line) for line in (data_dir / "hh_rlhf_harmless_base_test" /
                                          "harmless_base_test_first_human_turns.jsonl").read_text("utf-8").splitlines()]
    kept = {r.id for r in ds.records}
    assert all((f"hh_rlhf_harmless_base_test:{r['idx']}" in kept) == (not r["exact_match_eval"]) for r in rows)


def test_gptfuzzer_templates_keep_the_slot():
    ds = _load("gptfuzzer_templates")
    assert all("[INSERT PROMPT HERE]" in r.text for r in ds.records)
    assert _by(ds.records, "category") == {"GPTFuzzer": 77, "seed_short_25": 25}
    assert ds.records[0].id == "gptfuzzer_templates:GPTFuzzer:0"
    assert not {r.text for r in ds.records} & {r.text for r in _load("gptfuzzer").records}


def test_safety_tuned_llamas_labels_by_subset():
    labels = {}
    for r in _load("safety_tuned_llamas").records:
        labels.setdefault(r.category.split("|")[0], set()).add(r.label)
    assert labels == {"I-Alpaca": {0}, "I-PhysicalSafetySafe": {0}, "Q-Harm": {None}, "I-CoNa": {1},
                      "I-Controversial": {1}, "I-MaliciousInstructions": {1}, "I-PhysicalSafetyUnsafe": {1},
                      "safety_only_data_Instructions": {1}}
    assert _by(_load("safety_tuned_llamas").records, "category")["I-MaliciousInstructions|hate"] == 66


def test_parallel_translations_share_a_group():
    for name in ("square", "kosbi"):
        ds = _load(name)
        langs = {}
        for r in ds.records:
            langs.setdefault(r.group, []).append(r.lang)
        assert all(sorted(v).count("ko") == sorted(v).count("en") for v in langs.values()), name
    assert len(_by(_load("square").records, "group")) == 14082
    assert len(_by(_load("kosbi").records, "group")) < 6844  # sentences of one context stay together


# --- hate speech and offensive language ---------------------------------------------------------------------

def test_hate_corpora_categories_and_splits():
    unsmile = _load("korean_unsmile")
    assert all((r.label == 0) == ("clean" in (r.category or "").split(",")) for r in unsmile.records)
    assert sum(r.category is None for r in unsmile.records) == 2  # no column set, not clean: 1 by the mapping
    assert {k: len(v) for k, v in unsmile.splits.items()} == {"train": 15005, "valid": 3737}
    assert all((r.label == 0) == (r.category == "8") for r in _load("kmhas").records)
    cold = _load("cold")  # dev.csv holds rows whose split column says train (upstream)
    assert {k: len(v) for k, v in cold.splits.items()} == {"dev": 3216, "train": 3215, "test": 5323}
    assert {k: len(v) for k, v in _load("germeval2018").splits.items()} == {"training": 5009, "test": 3532}
    assert _by(_load("germeval2018").records, "category").keys() == {"ABUSE", "INSULT", "PROFANITY", "OTHER"}
    assert _by(_load("bengali_hate_speech").records, "category") == {
        "Personal": 2189, "Geopolitical": 1738, "Religious": 957, "Political": 814}
    assert _by(_load("vihsd").records, "category") == {"0": 7738, "1": 212 + 444, "2": 270 + 688}
    assert Counter(r.category.split("|")[0] for r in _load("korean_hate_speech_beep").records) == {
        "none": 3646, "offensive": 2499 + 189, "hate": 1911 + 122}


def test_indonesian_lines_that_are_not_utf8_are_read_as_latin1():
    ds = _load("indonesian_hate_speech")
    assert ds.report.count("undecodable") == 0
    assert sum(bool(re.search("[\x80-\xff]", r.text)) for r in ds.records) >= 300  # SOURCE.md: 341 lines
    assert sum(r.category is None for r in ds.records) == 5860  # neither HS nor Abusive


# --- prompt injection ---------------------------------------------------------------------------------------

def test_injection_sets():
    tt = _load("tensor_trust")
    assert _by(tt.records, "category") == {"hijacking": 776, "extraction": 570}
    bipia = _load("bipia_attacks")
    assert {k: len(v) for k, v in bipia.splits.items()} == {"train": 125, "test": 125}
    assert Counter(r.category.split("|")[0] for r in bipia.records) == {"text": 150, "code": 100}


def test_markdown_table_escapes_pipes():
    from crestguard.data.cli import _markdown

    line = _markdown([_load("catqa").summary()]).splitlines()[-1]
    assert line.count(" | ") == 6 and "category\\|subcategory" in line
