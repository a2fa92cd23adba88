"""Loaders for the sets of real (or realistic) user prompts in ``../shared/data``: the benign assistant-request
sets (kind ``benign``, label 0), ToxicChat (real chatbot prompts with human toxicity labels) and the sensitive but
legitimate questions of SQuARe and CValues (hard negatives).

Each loader follows its folder's ``SOURCE.md``; texts are kept exactly as the source has them. Ids are
``<dataset>:<source id>`` (the row number where the source has none). None of these files has a language
column: each set gets the language its SOURCE.md names (``en`` for the "mostly English" sets; no language
identification is run, so the few non-English prompts of Arena-Hard, AlpacaEval and ToxicChat are tagged ``en``).

Choices the SOURCE.md files leave open, and what these loaders do:

- **llmzoo_multilingual_questions**: 100 questions x 10 languages; ``group`` = the question ``id`` (parallel
  key), ``category`` = the source's ``label`` (generic, knowledge, roleplay, ...).
- **alpaca_eval**: ``category`` = ``dataset`` (selfinstruct, oasst, koala, helpful_base, vicuna). Its 188
  ``oasst`` items are the 188 first turns of ``oasst_prompts`` and 8 ``vicuna`` items are LLMZoo English
  questions: reserving one set for evaluation does not reserve these texts in the other.
- **belle_eval**: the ``.json`` file is JSON Lines; text = ``question`` (passages included); ``category`` =
  ``class`` as written (``closed\\u00a0qa`` keeps its no-break space).
- **arena_hard**: text = the single turn's ``content``; ``category`` = ``cluster`` (250 topic clusters).
- **alignbench**: ``category`` = ``<category>|<subcategory>`` (Chinese, as written).
- **oasst_prompts**: four files, ids ``validation:<message_id>``, ``m60:<line>``, ``en100:<line>``,
  ``lottery:<line>``; ``category`` = the file (``validation``, ``multilingual-60``, ``en_100``,
  ``prompt_lottery``). Validation prompter turns are 0 except those the SOURCE.md says to review before use
  as negatives: ``deleted`` or a crowd label >= 0.5 for ``not_appropriate``, ``toxicity`` or ``hate_speech``
  (50 turns): they keep label ``None`` and their category names the reason
  (``validation|deleted,toxicity``). ``group`` = ``message_tree_id`` (turns of one conversation stay together).
  ``multilingual-60``: line ``i`` is prompt ``i % 5`` in language ``i // 5`` of en, es, ru, de, fr, uk, it, vi,
  zh, ko, ja, th; the bomb question (``i % 5 == 0``) is 1, the rest 0; ``group`` = ``m60:<i % 5>``.
- **toxicchat** (kind ``training``): label = ``toxicity``; ``category`` = ``"jailbreaking"`` for rows with
  ``jailbreaking`` = 1 (else ``None``); rows with a non-empty ``exact_match_eval`` (160, mostly the held-out
  ToxicChat test split) are dropped as ``eval_overlap``.
- **square**: Korean sensitive questions, label 0 (the SOURCE.md: not harm labels; realistic hard negatives),
  and the authors' English translation as a parallel row (ids ``<row>:ko`` / ``<row>:en``, one group);
  ``category`` = ``category`` (``None`` for the 523 not-sensitive questions); splits valid/test/test_ood.
- **cvalues_responsibility**: no label (``None``): expert questions written to elicit irresponsible answers,
  mostly legitimate-looking; ``category`` = ``domain_en``.
"""

from __future__ import annotations

import json
from pathlib import Path

from crestguard.data.readers import read_lines
from crestguard.data.registry import register
from crestguard.data.rows import add_parallel, add_rows, eval_overlap, joined, load_file, mapped, read_rows
from crestguard.data.validation import DatasetBuilder
from crestguard.errors import DataError

LLMZOO_LANGS = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt", "zh")
M60_LANGS = ("en", "es", "ru", "de", "fr", "uk", "it", "vi", "zh", "ko", "ja", "th")
#: OASST crowd labels whose mean >= :data:`OASST_FLAG_AT` marks a validation turn for review.
OASST_FLAGS = ("not_appropriate", "toxicity", "hate_speech")
OASST_FLAG_AT = 0.5


@register("llmzoo_multilingual_questions", folder="llmzoo_multilingual_questions", kind="benign",
          description="LLMZoo multilingual instructions (Vicuna-80 style), 100 x 10 languages, parallel",
          licence='`DATA_LICENSE` is "Attribution-NonCommercial 4.0 International" (CC BY-NC 4.0); '
                  'code LICENSE is Apache 2.0.',
          labels="all 0", choice="group = question id (parallel); category = label")
def _llmzoo(folder: Path, builder: DatasetBuilder) -> None:
    for lang in LLMZOO_LANGS:
        load_file(builder, folder / f"{lang}100.jsonl", ["id", "label", "query"], text="query", label=0,
                  lang=lang, key=lambda r, lang=lang: f"{lang}:{r['id']}", group="id", category="label")


@register("alpaca_eval", folder="alpaca_eval", kind="benign", description="AlpacaEval 805 instructions",
          licence="Apache License 2.0 (repository LICENSE; the Hugging Face dataset card may state its own "
                  "terms – not checked).",
          labels="all 0", choice="category = dataset; lang en")
def _alpaca_eval(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "alpaca_eval_instructions.jsonl", ["id", "dataset", "instruction"],
              text="instruction", label=0, lang="en", key="id", category="dataset")


@register("belle_eval", folder="belle_eval", kind="benign", description="BELLE eval set (10 task types)",
          licence='`DATA_LICENSE` begins "Attribution License (ODC-By)" (Open Data Commons Attribution); '
                  'code LICENSE is Apache 2.0.',
          labels="all 0", choice="category = class; id = row number")
def _belle_eval(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "eval_set.json", ["question", "class"], fmt="jsonl", text="question", label=0,
              lang="zh", category="class")


@register("arena_hard", folder="arena_hard", kind="benign",
          description="Arena-Hard-Auto v0.1: 500 hard real user prompts", licence="Apache License 2.0 "
          "(repository LICENSE).", labels="all 0", choice="text = the one turn; category = cluster; lang en")
def _arena_hard(folder: Path, builder: DatasetBuilder) -> None:
    def first_turn(row):
        turns = row["turns"]
        return turns[0].get("content") if isinstance(turns, list) and turns else None

    load_file(builder, folder / "question.jsonl", ["question_id", "cluster", "turns"], text=first_turn,
              label=0, lang="en", key="question_id", category="cluster")


@register("alignbench", folder="alignbench", kind="benign", description="AlignBench v1.1 prompts",
          licence="none stated (no LICENSE file; README gives no licence).", labels="all 0",
          choice="category = category|subcategory")
def _alignbench(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "data_v1.1_release.jsonl", ["question_id", "category", "subcategory", "question"],
              text="question", label=0, lang="zh", key="question_id",
              category=joined("category", "subcategory"))


def _oasst_flags(row: dict) -> list[str]:
    labels = row.get("labels") or {}
    return (["deleted"] if row.get("deleted") else []) + [
        k for k in OASST_FLAGS if (labels.get(k) or 0) >= OASST_FLAG_AT]


@register("oasst_prompts", folder="oasst_prompts", kind="benign",
          description="OASST1 en validation prompter turns + OA eval prompt lists (multilingual-60, en_100, "
                      "prompt lottery)",
          licence="`TurkuNLP/oasst-fi` `original-data/LICENSE` is Apache License 2.0 (OASST1 is released under "
                  "Apache 2.0); `Open-Assistant/oasst-model-eval` LICENSE is Apache License 2.0.",
          labels="0; multilingual-60 bomb question -> 1; flagged/deleted validation turns -> None",
          choice="flagged validation turns kept unlabelled; group = message tree; multilingual-60 parallel")
def _oasst_prompts(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "oasst1_en_validation_prompter_messages.jsonl"
    load_file(builder, path, ["message_id", "message_tree_id", "lang", "deleted", "labels", "text"],
              text="text", label=lambda r: None if _oasst_flags(r) else 0, lang=lambda r: r["lang"],
              key=lambda r: f"validation:{r['message_id']}", group=lambda r: f"tree:{r['message_tree_id']}",
              category=lambda r: "|".join(["validation", ",".join(_oasst_flags(r))]).rstrip("|"))
    for file, prefix, category in (("multilingual-60", "m60", "multilingual-60"), ("en_100_text", "en100", "en_100"),
                                   ("prompt_lottery_en_250_text", "lottery", "prompt_lottery")):
        path = folder / f"{file}.jsonl"
        rows = [{"text": t if isinstance(t, str) else None, "i": i}
                for i, t in enumerate(_json_strings(path, builder))]
        m60 = prefix == "m60"
        add_rows(builder, path, rows, text="text", key=lambda r, p=prefix: f"{p}:{r['i']}",
                 label=(lambda r: int(r["i"] % 5 == 0)) if m60 else 0,
                 lang=(lambda r: M60_LANGS[r["i"] // 5]) if m60 else "en",
                 group=(lambda r: f"m60:{r['i'] % 5}") if m60 else None, category=lambda r, c=category: c)


def _json_strings(path: Path, builder: DatasetBuilder) -> list:
    """A JSON Lines file of bare JSON strings (one prompt a line)."""
    try:
        return [json.loads(line) for line in read_lines(path, builder.name) if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"dataset '{builder.name}': {path} is not JSON lines ({exc})") from exc


@register("toxicchat", folder="toxicchat", kind="training",
          description="ToxicChat human-annotated train split: real chatbot user prompts",
          licence='JUDGE-BENCH `data/README.md` lists ToxicChat as "CC-BY-NC-4.0". JUDGE-BENCH itself has no '
                  "top-level LICENSE file.",
          labels="toxicity 1 -> 1, 0 -> 0", choice="jailbreaking -> category; exact_match_eval rows dropped")
def _toxicchat(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "toxicchat_train_human_annotated.jsonl"
    rows = read_rows(path, builder.name, ["id", "toxicity", "jailbreaking", "user_input", "exact_match_eval"])
    add_rows(builder, path, rows, text="user_input", label=mapped("toxicity", {0: 0, 1: 1}), lang="en", key="id",
             category=lambda r: "jailbreaking" if r["jailbreaking"] == 1 else None, drop=eval_overlap())


# --- hard negatives: sensitive but legitimate questions -----------------------------------------------------

@register("square", folder="square", kind="benign",
          description="SQuARe Korean sensitive questions (contentious, ethical, predictive), with English "
                      "translations",
          licence="MIT License (Copyright 2023-present NAVER Cloud Corp., stated in the README).",
          labels="all 0 (not harm labels: legitimate sensitive questions)",
          choice="question and question_en as a parallel pair; category = category (empty when not sensitive)")
def _square(folder: Path, builder: DatasetBuilder) -> None:
    path = folder / "square_questions.csv"
    rows = read_rows(path, builder.name, ["split", "question", "question_en", "sensitive", "category"])
    add_parallel(builder, path, rows, {"ko": "question", "en": "question_en"}, label=0, split="split",
                 category=lambda r: r["category"] or None)


@register("cvalues_responsibility", folder="cvalues_responsibility", kind="benign",
          description="CValues responsibility prompts: expert questions written to elicit irresponsible answers",
          licence="Apache License 2.0 (Copyright 2023 Alibaba X-PLUG Team).",
          labels="none (no label; mostly legitimate-looking questions)",
          choice="label None (SOURCE.md: better as hard negatives or held out); category = domain_en")
def _cvalues(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "cvalues_responsibility_prompts.jsonl", ["id_", "prompt", "domain_en"],
              text="prompt", label=None, lang="zh", key="id_", category="domain_en")
