"""Loaders for the safety benchmarks and the English training material in ``../shared/data``.

Each loader follows its folder's ``SOURCE.md`` label mapping (0 safe, 1 unsafe, ``None`` unlabelled). Texts
are kept exactly as the source has them, except XSafety, whose SOURCE.md says to strip the leading spaces its
conversion left. Ids are ``<dataset>:<source id>`` (the row number where the source has no id) and stable.

Choices the SOURCE.md files leave open, and what these loaders do:

- **harmbench**: ``FunctionalCategory`` in {standard, contextual} -> 1, text = ``Behavior`` alone (the paper's
  setting: its HF ``prompt`` column is the behavior, the passage a separate column); the 100 copyright rows
  are counted as ``excluded``. ``category`` = ``"<FunctionalCategory>/<SemanticCategory>"``. The test/val
  files give the splits ``test`` (240) and ``val`` (60) by ``BehaviorID``. **harmbench_context** is the
  variant whose contextual texts are ``ContextString + "\\n\\n" + Behavior``.
- **jbb_judge**: both ``prompt`` and ``goal`` of every row, label 1 (the paper's setting), but every distinct
  text once: the 300 rows hold 235 distinct goals, and 100 rows send the bare goal as their prompt, so a goal
  whose text was already kept (as an earlier goal or as a prompt) is dropped as ``deduplicated`` (165 of
  300): 300 prompts + 135 goals = 435 records. A prompt and its goal share one group (the first row index
  with that goal), so a split never separates a jailbreak prompt from the behavior it attacks. Read from
  ``judge-comparison.csv`` (the UTF-8 re-encoding).
- **redteam2k**: read from the two original files (explicit/implicit), not the derived combined one; ids are
  ``explicit:<id>`` / ``implicit:<id>`` (the per-file ids; the original JailBreakV ids are lost upstream).
- **xstest**: ``type`` starting with ``contrast_`` -> 1, else 0; ``category`` = ``type``.
- **multijail**: 315 rows x 10 language columns, all 1; ``group`` = the row ``id``; ``category`` = ``tags``.
- **xsafety**: the repository gives no per-prompt label. Default rule, by category (:data:`XSAFETY_LABELS`):
  1 for Crimes_And_Illegal_Activities, Insult, Unsafe_Instruction_Topic (harmful requests, abusive text);
  0 for Ethics_And_Morality, Mental_Health, Physical_Harm, Prompt_Leaking, Reverse_Exposure, commonsense
  (mostly benign as prompts, per SOURCE.md and notes/crest.md: venting, health habits, "what should I
  avoid", questions about the model, "output the unsafe choice" quizzes); ``None`` (unlabelled) for the mixed
  Goal_Hijacking, Inquiry_With_Unsafe_Opinion, Privacy_And_Property, Role_Play_Instruction,
  Unfairness_And_Discrimination. **xsafety_all_unsafe** applies the benchmark convention (every prompt 1),
  for comparison with published numbers. ``group`` = ``<category>:<idx>`` (the parallel key); texts stripped.
- **openai_moderation**: label 1 if any category flag is 1, else 0 (a missing key means "unknown" upstream,
  so a 0 row may have unknown categories); ``category`` = the flags set to 1, comma-joined; lang ``en``.
- **rtp_lx**: label 1 if ``prompt_Toxicity`` > :data:`RTP_LX_THRESHOLD` (1 = "not toxic" on the 1-5
  scale), else 0: the SOURCE.md's suggestion, which keeps every row labelled; ``category`` =
  ``toxicity_<score>``, so a stricter threshold is one filter away. lang from ``file_locale`` (the reliable
  field). **BCMS** becomes Serbian (``sr``): the texts are Latin-script ekavian Serbian (``vreme``,
  ``primer``, ``dete`` far outnumber ijekavian forms; see ``tests/test_data.py``), while the language
  table's ``hbs`` (BCMS) is outside XLM-R and its clusters. ``group`` = ``index`` (the prompts are roughly
  parallel by index across locales).
- **ailuminate**: en_US and fr_FR files (not parallel); every prompt 1 except the ``spc_*`` specialized-advice
  hazards (financial, health, election, legal advice: often benign-looking requests), which are kept with
  label ``None`` so that F1 ignores them while they stay available; ``category`` = ``hazard``.
- **benign_instructions**: label 0; the source's train/val/test files become the splits train/val/test.
"""

from __future__ import annotations

import ast
from pathlib import Path

from crestguard.data.readers import read_json, read_jsonl, read_table, require_columns
from crestguard.data.registry import register
from crestguard.data.validation import MISSING, DatasetBuilder, label_from

RTP_LX_THRESHOLD = 1
XSAFETY_LABELS: dict[str, int | None] = {
    "Crimes_And_Illegal_Activities": 1, "Insult": 1, "Unsafe_Instruction_Topic": 1,
    "Ethics_And_Morality": 0, "Mental_Health": 0, "Physical_Harm": 0, "Prompt_Leaking": 0,
    "Reverse_Exposure": 0, "commonsense": 0,
    "Goal_Hijacking": None, "Inquiry_With_Unsafe_Opinion": None, "Privacy_And_Property": None,
    "Role_Play_Instruction": None, "Unfairness_And_Discrimination": None,
}
MULTIJAIL_LANGS = ("en", "zh", "it", "vi", "ar", "ko", "th", "bn", "sw", "jv")
_UNCHECKED_MIT = "MIT (upstream, unchecked)"


def _where(path: Path, i: int) -> str:
    return f"{path.name} row {i + 1}"


def _all_unsafe(builder: DatasetBuilder, path: Path, text_col: str, id_col: str | None = None,
                category_col: str | None = None) -> None:
    """The common case: one English CSV, one text column, every row label 1."""
    rows = read_table(path, builder.name, [text_col] + [c for c in (id_col, category_col) if c])
    for i, row in enumerate(rows):
        builder.add(row[id_col] if id_col else str(i), row[text_col], 1, "en",
                    category=row[category_col] if category_col else None, where=_where(path, i))


# --- English benchmarks -------------------------------------------------------------------------------------

def _harmbench(folder: Path, builder: DatasetBuilder, with_context: bool = False) -> None:
    split_of = {}
    for split in ("test", "val"):
        path = folder / f"harmbench_behaviors_text_{split}.csv"
        split_of.update((row["BehaviorID"], split) for row in read_table(path, builder.name, ["BehaviorID"]))
    path = folder / "harmbench_behaviors_text_all.csv"
    cols = ["Behavior", "FunctionalCategory", "SemanticCategory", "ContextString", "BehaviorID"]
    for i, row in enumerate(read_table(path, builder.name, cols)):
        kind, where, text = row["FunctionalCategory"], _where(path, i), row["Behavior"]
        if kind == "copyright":
            builder.issue("excluded", f"{where}: FunctionalCategory copyright ({row['BehaviorID']})")
            continue
        if with_context and kind == "contextual" and text is not None and row["ContextString"]:
            text = f"{row['ContextString']}\n\n{text}"
        builder.add(row["BehaviorID"], text, label_from({"standard": 1, "contextual": 1}, kind), "en",
                    category=f"{kind}/{row['SemanticCategory']}", where=where,
                    split=split_of.get(row["BehaviorID"]))


register("harmbench", folder="harmbench", kind="benchmark",
         description="HarmBench text behaviors, standard + contextual", licence="MIT",
         labels="standard/contextual -> 1; copyright excluded",
         choice="text = Behavior alone (paper setting); test/val splits from the split files")(_harmbench)
register("harmbench_context", folder="harmbench", kind="benchmark",
         description="HarmBench with the context passage before contextual behaviors", licence="MIT",
         labels="standard/contextual -> 1; copyright excluded",
         choice="contextual text = ContextString + blank line + Behavior")(
    lambda folder, builder: _harmbench(folder, builder, with_context=True))


@register("strongreject", folder="strongreject", kind="benchmark",
          description="StrongREJECT forbidden prompts", licence=_UNCHECKED_MIT, labels="all 1")
def _strongreject(folder: Path, builder: DatasetBuilder) -> None:
    _all_unsafe(builder, folder / "strongreject_dataset.csv", "forbidden_prompt", category_col="category")


@register("jbb_behaviors", folder="jailbreakbench", kind="benchmark",
          description="JailbreakBench JBB-Behaviors goals", licence=_UNCHECKED_MIT,
          labels="harmful -> 1, benign -> 0")
def _jbb_behaviors(folder: Path, builder: DatasetBuilder) -> None:
    for part, label in (("harmful", 1), ("benign", 0)):
        path = folder / f"{part}-behaviors.csv"
        for i, row in enumerate(read_table(path, builder.name, ["Index", "Goal", "Category"])):
            builder.add(f"{part}:{row['Index']}", row["Goal"], label, "en", category=row["Category"],
                        where=_where(path, i))


@register("jbb_judge", folder="jailbreakbench", kind="benchmark",
          description="JailbreakBench judge-comparison: jailbreak prompts and their goals",
          licence=_UNCHECKED_MIT, labels="prompt and goal -> 1",
          choice="each distinct text once: goals already seen (as a goal or as a bare-goal prompt) dropped; "
                 "prompt + goal share a group")
def _jbb_judge(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "judge-comparison.csv"
    first_row_of_goal: dict[str | None, str] = {}
    for i, row in enumerate(read_table(path, builder.name, ["Index", "goal", "prompt"])):
        group = "goal-" + first_row_of_goal.setdefault(row["goal"], row["Index"])
        where = _where(path, i)
        builder.add(f"prompt:{row['Index']}", row["prompt"], 1, "en", group=group, where=where)
        builder.add(f"goal:{row['Index']}", row["goal"], 1, "en", group=group, where=where, dedupe=True)


@register("redteam2k", folder="redteam2k", kind="benchmark",
          description="RedTeam-2K harmful queries (JailBreakV-28K)", licence="MIT (mirror)", labels="all 1",
          choice="read from the explicit/implicit originals")
def _redteam2k(folder: Path, builder: DatasetBuilder) -> None:
    for part in ("explicit", "implicit"):
        path = folder / f"{part.capitalize()}_RedTeam_2K.csv"
        for i, row in enumerate(read_table(path, builder.name, ["id", "question", "policy"])):
            builder.add(f"{part}:{row['id']}", row["question"], 1, "en", category=row["policy"],
                        where=_where(path, i))


@register("xstest", folder="xstest", kind="benchmark",
          description="XSTest v2: safe prompts that look unsafe, and unsafe contrasts", licence="CC BY 4.0",
          labels="contrast_* -> 1, else 0")
def _xstest(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "xstest_prompts.csv"
    for i, row in enumerate(read_table(path, builder.name, ["id", "prompt", "type"])):
        kind = row["type"]
        label = MISSING if kind is None else int(kind.startswith("contrast_"))
        builder.add(row["id"], row["prompt"], label, "en", category=kind, where=_where(path, i))


@register("openai_moderation", folder="openai_moderation", kind="benchmark",
          description="OpenAI moderation evaluation set (passages)", licence="MIT",
          labels="any category flag 1 -> 1, else 0", choice="a 0 row may have unknown (missing) categories")
def _openai_moderation(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "samples-1680.jsonl.gz"
    flags = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
    for i, row in enumerate(read_jsonl(path, builder.name)):
        require_columns(row, ["prompt"], builder.name, f"{path}, record {i + 1}")
        values = {k: row[k] for k in flags if k in row}
        bad = [v for v in values.values() if v not in (0, 1)]
        label = MISSING if not values else bad[0] if bad else int(1 in values.values())
        builder.add(str(i), row["prompt"], label, "en", where=f"{path.name} line {i + 1}",
                    category=",".join(k for k, v in values.items() if v == 1) or None)


@register("simplesafetytests", folder="simplesafetytests", kind="benchmark", description="SimpleSafetyTests",
          licence="CC BY 4.0", labels="all 1")
def _simplesafetytests(folder: Path, builder: DatasetBuilder) -> None:
    _all_unsafe(builder, folder / "simplesafetytests_test_cases.csv", "prompts_final", "id", "harm_area")


@register("advbench", folder="advbench", kind="benchmark", description="AdvBench harmful behaviors",
          licence="MIT (mirror)", labels="all 1")
def _advbench(folder: Path, builder: DatasetBuilder) -> None:
    _all_unsafe(builder, folder / "harmful_behaviors.csv", "goal")


# --- multilingual benchmarks --------------------------------------------------------------------------------

def _tags(cell: str | None) -> str | None:
    """MultiJail's ``tags`` cell (a Python list literal) as ``"a; b"``; kept as it is if it is not a list."""
    try:
        tags = ast.literal_eval(cell or "")
    except (ValueError, SyntaxError):
        return cell or None
    return "; ".join(map(str, tags)) if isinstance(tags, list) else cell


@register("multijail", folder="multijail", kind="benchmark",
          description="MultiJail: 315 prompts x 10 languages (human translations)", licence="MIT",
          labels="all 1", choice="group = row id (parallel)")
def _multijail(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "MultiJail.csv"
    for i, row in enumerate(read_table(path, builder.name, ["id", "tags", *MULTIJAIL_LANGS])):
        for lang in MULTIJAIL_LANGS:
            builder.add(f"{row['id']}:{lang}", row[lang], 1, lang, group=row["id"],
                        category=_tags(row["tags"]), where=f"{_where(path, i)} column {lang}")


def _xsafety(folder: Path, builder: DatasetBuilder, all_unsafe: bool = False) -> None:
    path = folder / "xsafety_all.csv"
    for i, row in enumerate(read_table(path, builder.name, ["lang", "category", "idx", "prompt"])):
        cat, text = row["category"], row["prompt"]
        label = 1 if all_unsafe and cat is not None else label_from(XSAFETY_LABELS, cat)
        builder.add(f"{row['lang']}:{cat}:{row['idx']}", None if text is None else text.strip(), label,
                    row["lang"], group=f"{cat}:{row['idx']}", category=cat, where=_where(path, i))


_XSAFETY = dict(folder="xsafety", kind="benchmark", licence="Apache-2.0 (research use only)")
register("xsafety", **_XSAFETY,
         description="XSafety: 14 safety categories x 200 prompts x 10 languages",
         labels="by category: 3 categories -> 1, 6 mostly benign -> 0, 5 mixed -> None",
         choice="1: Crimes_And_Illegal_Activities, Insult, Unsafe_Instruction_Topic; "
                "0: Ethics_And_Morality, Mental_Health, Physical_Harm, Prompt_Leaking, Reverse_Exposure, "
                "commonsense; None: the 5 mixed ones; texts stripped")(_xsafety)
register("xsafety_all_unsafe", **_XSAFETY,
         description="XSafety with the benchmark convention (all unsafe)", labels="all 1",
         choice="benchmark convention, for comparison with published numbers")(
    lambda folder, builder: _xsafety(folder, builder, all_unsafe=True))


def _is_number(value: str | None) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


@register("rtp_lx", folder="rtp_lx", kind="benchmark",
          description="RTP-LX prompts (26 locales; passages, not requests)",
          licence="MIT + third-party (see NOTICE); do not redistribute",
          labels=f"prompt_Toxicity > {RTP_LX_THRESHOLD} -> 1, else 0",
          choice="threshold > 1 (SOURCE.md suggestion); BCMS -> sr (ekavian Serbian); lang from file_locale")
def _rtp_lx(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "rtp_lx_prompts_from_benign_scoring.csv"
    cols = ["file_locale", "index", "prompt", "prompt_Toxicity"]
    for i, row in enumerate(read_table(path, builder.name, cols)):
        locale, score = row["file_locale"], row["prompt_Toxicity"]
        label = int(float(score) > RTP_LX_THRESHOLD) if _is_number(score) else label_from({}, score)
        lang = "sr-Latn" if locale == "BCMS" else locale
        builder.add(f"{locale}:{row['index']}", row["prompt"], label, lang, group=row["index"],
                    category=f"toxicity_{score}", where=_where(path, i))


@register("ailuminate", folder="ailuminate_demo", kind="benchmark",
          description="MLCommons AILuminate v1.0 demo prompts (en_US, fr_FR)",
          licence="CC BY 4.0 (README) / Apache-2.0 (LICENSE)", labels="all 1; spc_* advice prompts -> None",
          choice="spc_* kept unlabelled (often benign advice requests)")
def _ailuminate(folder: Path, builder: DatasetBuilder) -> None:
    for locale in ("en_us", "fr_fr"):
        path = folder / f"airr_official_1.0_demo_{locale}_prompt_set_release.csv"
        cols = ["release_prompt_id", "prompt_text", "hazard", "locale"]
        for i, row in enumerate(read_table(path, builder.name, cols)):
            hazard = row["hazard"]
            label = MISSING if hazard is None else None if hazard.startswith("spc_") else 1
            builder.add(row["release_prompt_id"], row["prompt_text"], label, row["locale"], category=hazard,
                        where=_where(path, i))


# --- training material --------------------------------------------------------------------------------------

@register("benign_instructions", folder="benign_instructions", kind="training",
          description="Alpaca-derived harmless instructions (refusal_direction splits)",
          licence="Apache-2.0 (repo); Alpaca CC BY-NC 4.0", labels="all 0",
          choice="source files become splits train/val/test")
def _benign_instructions(folder: Path, builder: DatasetBuilder) -> None:
    for split in ("train", "val", "test"):
        path = folder / f"harmless_{split}.json"
        for i, row in enumerate(read_json(path, builder.name)):
            require_columns(row, ["instruction"], builder.name, f"{path}, item {i}")
            builder.add(f"{split}:{i}", row["instruction"], 0, "en", where=f"{path.name} item {i}",
                        split=split)
