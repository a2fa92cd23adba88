"""Loaders for the hate-speech sets in ``../shared/data``, starting with the functional test suites whose
non-hateful contrast cases (counter-speech, reclaimed slurs, negation, quoting, abuse of non-protected targets)
are hard negatives: HateCheck, Multilingual HateCheck, SGHateCheck.

Each loader follows its folder's ``SOURCE.md`` label mapping (1 hateful/offensive, 0 not); texts are kept as
the source has them (HateCheck's trailing spaces are stripped: its SOURCE.md says ``test_case (strip)``).
``category`` is the source's own raw string; for the HateCheck family it is ``<functionality>|<target>``
(``derog_neg_emote_h|women``), or the functionality alone where the case has no target; targets are written as
the source writes them (Multilingual HateCheck has ``black people`` and ``Black people``, ``jews``, ``Jews`` and
``jewish people``: no mapping here).

Choices the SOURCE.md files leave open, and what these loaders do:

- **hatecheck**: id = ``case_id``; ``group`` = ``templ_id``: every case generated from one template (the same
  sentence with another target) stays in one group.
- **multilingual_hatecheck**: id = ``mhc_case_id``; ``group`` = ``templ_id`` *across languages* (712 of its 755
  template ids occur in all 10 languages: the templates are translations), so no template leaks between splits
  in any language.
- **sghatecheck**: four files ``ms``, ``ss`` (Singlish), ``ta``, ``zh``; label from ``t_gold`` (the 11 Tamil
  rows with an empty ``t_gold`` are counted as ``missing_field``). Singlish gets the language table's
  ``en_singlish`` row (the file prefix ``ss`` is ISO 639-1 Swati). ids ``<file>:<c_id>``; ``group`` = ``t_id``
  across languages, as above; ``category`` = ``<t_function>|<p_target>``. 1,085 Mandarin cases equal
  Multilingual HateCheck Mandarin cases and 76 equal HateCheck cases: reserve them together.

The other corpora (social-media comments and tweets, with their own binary conventions):

- **mlma_hate_speech**: ``sentiment`` == ``normal`` -> 0, anything else (also ``hateful_normal``-style mixes) ->
  1; the English file with stop words (the text as written); ids ``<lang>:<HITId>``; ``category`` =
  ``<sentiment>|<target>|<group>``.
- **korean_unsmile**: ``clean`` == 1 -> 0, else 1; ``category`` = the names of the columns set to 1,
  comma-joined (``여성/가족,악플/욕설``); two train rows have no column set at all (not clean: 1 by the
  mapping; category ``None``). Splits train/valid.
- **kmhas**: ``label`` == ``8`` -> 0, else 1; ``category`` = the label cell as written (``0,3``).
- **korean_hate_speech_beep**: ``hate`` none -> 0, offensive or hate -> 1; ``category`` = ``<hate>|<bias>``.
- **kosbi**: text = ``sentence`` (without its context), and the authors' ``sentence_en`` as a parallel row (ids
  ``<row>:ko`` / ``<row>:en``); ``group`` = the context (sentences written for one context stay together);
  ``category`` = ``<demographic_category>|<demographic_group>|<sentence_sub_label>``.
- **cold**: ids ``<file>:<row>`` (the unnamed index column repeats within dev.csv); splits from the ``split``
  column, as the source has it: dev.csv holds 3,216 ``dev`` and 3,215 ``train`` rows; ``category`` =
  ``<topic>|<fine-grained-label>`` (fine-grained labels in test only).
- **indonesian_hate_speech**: label from ``HS`` only (Abusive-only tweets are 0; ``category`` lists every class
  set, so ``Abusive`` stays available); the 341 lines that are not valid UTF-8 are decoded as latin-1 (the
  SOURCE.md's reading), the other lines as UTF-8.
- **portuguese_hate_speech**: the binary file (``hatespeech_comb``), not the hierarchical one (the SOURCE.md:
  "pick one"; the two disagree on many tweets); no category.
- **germeval2018**: label from the coarse column; ``category`` = the fine label; splits training/test.
- **vihsd**: ``label_id`` 0 -> 0, 1 (offensive) or 2 (hate) -> 1; ``category`` = ``label_id``.
- **bengali_hate_speech**: all 1; ``category`` = ``label`` (the hate type).
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.readers import read_lines
from crestguard.data.registry import register
from crestguard.data.rows import add_parallel, add_rows, flags, joined, load_file, load_splits, mapped, read_rows
from crestguard.data.validation import MISSING, DatasetBuilder

HATEFUL = {"hateful": 1, "non-hateful": 0}
_HATEFUL_RULE = "hateful -> 1, non-hateful -> 0"
#: SGHateCheck file prefix -> language code.
SG_FILES = {"ms": "ms", "ss": "en_singlish", "ta": "ta", "zh": "zh"}


@register("hatecheck", folder="hatecheck", kind="training",
          description="HateCheck: English functional tests for hate speech (with contrast cases)",
          licence="Creative Commons Attribution 4.0 International (LICENSE; an earlier MIT LICENSE was replaced "
                  "by CC BY 4.0 in commit ce2d4d10).",
          labels=_HATEFUL_RULE, choice="group = templ_id; category = functionality|target")
def _hatecheck(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "test_suite_cases.csv",
              ["functionality", "case_id", "test_case", "label_gold", "target_ident", "templ_id"],
              text=lambda r: None if r["test_case"] is None else r["test_case"].strip(),
              label=mapped("label_gold", HATEFUL), lang="en", key="case_id", group="templ_id",
              category=joined("functionality", "target_ident"))


@register("multilingual_hatecheck", folder="multilingual_hatecheck", kind="training",
          description="Multilingual HateCheck: functional hate-speech tests in 10 languages",
          licence="Creative Commons Attribution 4.0 International (LICENSE).",
          labels=_HATEFUL_RULE, choice="group = templ_id across languages; category = functionality|target")
def _multilingual_hatecheck(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "mhc_all_languages.csv",
              ["lang", "mhc_case_id", "functionality", "test_case", "label_gold", "target_ident", "templ_id"],
              text="test_case", label=mapped("label_gold", HATEFUL), lang=lambda r: r["lang"] or "",
              key="mhc_case_id", group="templ_id", category=joined("functionality", "target_ident"))


@register("sghatecheck", folder="sghatecheck", kind="training",
          description="SGHateCheck: functional hate-speech tests for Singapore (Singlish, Malay, Tamil, Mandarin)",
          licence="none stated (no LICENSE file; README gives a citation only).",
          labels=f"t_gold {_HATEFUL_RULE}",
          choice="Singlish -> en_singlish; group = t_id across languages; category = t_function|p_target")
def _sghatecheck(folder: Path, builder: DatasetBuilder) -> None:
    for prefix, lang in SG_FILES.items():
        load_file(builder, folder / f"{prefix}_annotations.csv",
                  ["c_id", "p_target", "c_testcase", "t_function", "t_gold", "t_id"],
                  text="c_testcase", label=mapped("t_gold", HATEFUL), lang=lang, key="c_id",
                  group="t_id", category=joined("t_function", "p_target"), prefix=f"{prefix}:")


# --- hate speech and offensive-language corpora -------------------------------------------------------------

@register("mlma_hate_speech", folder="mlma_hate_speech", kind="training",
          description="MLMA multilingual multi-aspect hate speech tweets (ar, en, fr)",
          licence="MIT License (Copyright (c) 2019 HKUST-KnowComp).",
          labels='sentiment == "normal" -> 0, else 1', choice="category = sentiment|target|group; en with stop words")
def _mlma(folder: Path, builder: DatasetBuilder) -> None:
    for lang, file in (("ar", "ar_dataset"), ("en", "en_dataset_with_stop_words"), ("fr", "fr_dataset")):
        load_file(builder, folder / f"{file}.csv", ["HITId", "tweet", "sentiment", "target", "group"], text="tweet",
                  label=lambda r: MISSING if not r["sentiment"] else int(r["sentiment"] != "normal"), lang=lang,
                  key="HITId", category=joined("sentiment", "target", "group"), prefix=f"{lang}:")


#: Korean UnSmile's 0/1 columns after the sentence (``clean`` decides the label; ``개인지칭`` is auxiliary).
UNSMILE_CLASSES = ("여성/가족", "남성", "성소수자", "인종/국적", "연령", "지역", "종교", "기타 혐오", "악플/욕설",
                   "clean", "개인지칭")


@register("korean_unsmile", folder="korean_unsmile", kind="training",
          description="Korean UnSmile multi-label hate speech (train + valid)",
          licence="README: dataset under **CC BY-NC-ND 4.0** (code and baseline models Apache 2.0). ND = no "
                  "derivatives: keep files as they are; NC = non-commercial.",
          labels="clean == 1 -> 0, else 1",
          choice="category = the columns set to 1, comma-joined; splits train/valid")
def _korean_unsmile(folder: Path, builder: DatasetBuilder) -> None:
    load_splits(builder, {s: folder / f"unsmile_{s}_v1.0.tsv" for s in ("train", "valid")},
                ["문장", *UNSMILE_CLASSES], text="문장", label=mapped("clean", {"1": 0, "0": 1}), lang="ko",
                category=flags(UNSMILE_CLASSES))


@register("kmhas", folder="kmhas", kind="training",
          description="K-MHaS Korean multi-label hate speech, news comments (valid + test; train absent)",
          licence="none stated in the repository (a third-party README, `skan0779/korean-guardrail-dataset`, "
                  "lists it as CC-BY-SA-4.0 after the Hugging Face card).",
          labels='label == "8" -> 0, else 1',
          choice="category = the class ids as written (e.g. 0,3); splits valid/test")
def _kmhas(folder: Path, builder: DatasetBuilder) -> None:
    load_splits(builder, {s: folder / f"kmhas_{s}.txt" for s in ("valid", "test")}, ["document", "label"],
                fmt="tsv", text="document", label=lambda r: MISSING if not r["label"] else int(r["label"] != "8"),
                lang="ko", category="label")


@register("korean_hate_speech_beep", folder="korean_hate_speech_beep", kind="training",
          description="BEEP! Korean hate speech, entertainment news comments (labeled train + dev)",
          licence="Creative Commons Attribution-ShareAlike 4.0 International (LICENSE.md).",
          labels='hate == "none" -> 0, else 1 (offensive, hate)', choice="category = hate|bias; splits train/dev")
def _beep(folder: Path, builder: DatasetBuilder) -> None:
    load_splits(builder, {s: folder / f"{s}.tsv" for s in ("train", "dev")}, ["comments", "bias", "hate"],
                text="comments", label=mapped("hate", {"none": 0, "offensive": 1, "hate": 1}), lang="ko",
                category=joined("hate", "bias"))


@register("kosbi", folder="kosbi", kind="training",
          description="KoSBi Korean social-bias sentences (valid + test), with the authors' English translations",
          licence="MIT License (Copyright 2023-present NAVER Cloud Corp., stated in the README).",
          labels='sentence_label unsafe -> 1, safe -> 0',
          choice="sentence and sentence_en as a parallel pair; group = context; "
                 "category = demographic_category|demographic_group|sentence_sub_label")
def _kosbi(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "kosbi_valid_test.csv"
    rows = read_rows(path, builder.name, ["split", "demographic_category", "demographic_group", "context",
                                          "sentence", "sentence_en", "sentence_label", "sentence_sub_label"])
    first_of_context: dict[str | None, int] = {}
    groups = [f"context:{first_of_context.setdefault(row['context'], i)}" for i, row in enumerate(rows)]
    add_parallel(builder, path, rows, {"ko": "sentence", "en": "sentence_en"}, group=lambda r: groups[r["_row"]],
                 label=mapped("sentence_label", {"unsafe": 1, "safe": 0}), split="split",
                 category=joined("demographic_category", "demographic_group", "sentence_sub_label"))


@register("cold", folder="cold", kind="training", description="COLD Chinese offensive language (dev + test)",
          licence="Apache License 2.0 (repository LICENSE).", labels="label 1 -> 1 (offensive), 0 -> 0",
          choice="id = file:row; splits from the split column (dev.csv holds 3,215 rows marked train); "
                 "category = topic|fine-grained-label (test only)")
def _cold(folder: Path, builder: DatasetBuilder) -> None:
    load_splits(builder, {s: folder / f"{s}.csv" for s in ("dev", "test")}, ["split", "topic", "label", "TEXT"],
                text="TEXT", label=mapped("label", {"0": 0, "1": 1}), lang="zh", split="split",
                category=joined("topic", "fine-grained-label"))


@register("indonesian_hate_speech", folder="indonesian_hate_speech", kind="training",
          description="Indonesian multi-label hate speech and abusive language (Twitter)",
          licence="Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International (README).",
          labels="HS == 1 -> 1, else 0", choice="Abusive-only tweets are 0 (category says Abusive); "
                                               "lines that are not UTF-8 read as latin-1")
def _indonesian(folder: Path, builder: DatasetBuilder) -> None:
    classes = ("HS", "Abusive", "HS_Individual", "HS_Group", "HS_Religion", "HS_Race", "HS_Physical", "HS_Gender",
               "HS_Other", "HS_Weak", "HS_Moderate", "HS_Strong")
    load_file(builder, folder / "re_dataset.csv", ["Tweet", *classes], fallback="latin-1", text="Tweet",
              label=mapped("HS", {"1": 1, "0": 0}), lang="id",
              category=flags(classes))


@register("portuguese_hate_speech", folder="portuguese_hate_speech", kind="training",
          description="Portuguese hate speech tweets (binary classification file)",
          licence='none stated (README: "strictly for research purposes").', labels="hatespeech_comb 1 -> 1, 0 -> 0",
          choice="the binary file only (the hierarchical file re-annotates the same tweets differently)")
def _portuguese(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "2019-05-28_portuguese_hate_speech_binary_classification.csv",
              ["text", "hatespeech_comb"], text="text", label=mapped("hatespeech_comb", {"1": 1, "0": 0}),
              lang="pt")


@register("germeval2018", folder="germeval2018", kind="training",
          description="GermEval 2018 offensive language, German tweets (training + test)",
          licence="Creative Commons Attribution 4.0 International (`LICENSE.md/LICENSE.md`).",
          labels="OFFENSE -> 1, OTHER -> 0", choice="category = the fine label; splits training/test")
def _germeval(folder: Path, builder: DatasetBuilder) -> None:
    for split in ("training", "test"):
        path = folder / f"germeval2018.{split}.txt"
        rows = [dict(zip(("text", "coarse", "fine"), line.split("\t"))) for line in read_lines(path, builder.name)]
        add_rows(builder, path, rows, text=lambda r: r.get("text") if "fine" in r else None,
                 label=mapped("coarse", {"OFFENSE": 1, "OTHER": 0}), lang="de", category="fine",
                 split=lambda r, s=split: s, prefix=f"{split}:")


@register("vihsd", folder="vihsd", kind="training", description="ViHSD Vietnamese hate speech (dev + test)",
          licence='none stated (README: "this dataset is used only for research purposes"; points to Hugging Face '
                  "`uitnlp/vihsd`).",
          labels="label_id 0 -> 0, 1/2 -> 1", choice="category = label_id (1 offensive, 2 hate); splits dev/test")
def _vihsd(folder: Path, builder: DatasetBuilder) -> None:
    load_splits(builder, {s: folder / f"{s}.csv" for s in ("dev", "test")}, ["free_text", "label_id"],
                text="free_text", label=mapped("label_id", {"0": 0, "1": 1, "2": 1}), lang="vi",
                category="label_id")


@register("bengali_hate_speech", folder="bengali_hate_speech", kind="training",
          description="Bengali hate speech v2.0 (typed hate; no non-hate rows)",
          licence="MIT License (Copyright (c) 2020 Md. Rezaul Karim).", labels="all 1",
          choice="category = label (Personal, Geopolitical, Religious, Political)")
def _bengali(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "bengali_hate_v2.0.csv", ["text", "label"], text="text", label=1, lang="bn",
              category="label")
