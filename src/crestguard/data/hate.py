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
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.registry import register
from crestguard.data.rows import joined, load_file, mapped
from crestguard.data.validation import DatasetBuilder

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
