"""Loaders for the peer evaluation sets in ``../shared/peer_eval`` (kind ``peer``): published figures of other
guardrails exist on exactly these items (``peer_eval/peer_figures/peer_figures.csv``).

They are **evaluation-only**: the suite ``configs/suites/peer.yaml`` reserves every item, and the default suite's
manifest reserves them too (``also_reserve: [peer]``), so no training mix can use them. The folder is
:func:`crestguard.paths.peer_eval_dir` (``$CRESTGUARD_PEER_EVAL``, default ``peer_eval`` beside the data directory).

Datasets and the choices made (labels exactly as each SOURCE.md states the peers' scripts derived them):

- **peer_gr_<benchmark>** (``guardreasoner_suite/prompt_tasks.jsonl``, the WildGuard-style English suite):
  ``peer_gr_simplesafetytests`` (100, all unsafe), ``peer_gr_aegis`` (Aegis 1.0 test, 359),
  ``peer_gr_openai_moderation`` (1,680; the same rows as the ``openai_moderation`` dataset),
  ``peer_gr_harmbench_prompt`` (239 HarmBench behaviours). Text = the prompt; label = the file's ``label``.
  The ToxicChat rows of that suite are not in this copy.
- **peer_gr_<response benchmark>** (``response_tasks.jsonl``): ``peer_gr_harmbench_response``,
  ``peer_gr_saferlhf``, ``peer_gr_beavertails``, ``peer_gr_xstest_response``. Response classification (the label
  is the *response's*); CREST Guard is a prompt guard, so the text is ``prompt + " " + response`` as one input
  (the way DuoGuard scores BeaverTails) and the peer table marks these rows "not a prompt task".
- **peer_duoguard_<set>** (``duoguard_eval/{en,de,es,fr}.jsonl``): one dataset per DuoGuard set, every language
  in it: ``xstest``, ``openai``, ``beavertails`` (text ``prompt + " " + response``), ``rtp_lx``, ``xsafety``
  (every item 1 by DuoGuard's convention: a recall check). ``category`` = DuoGuard's set name (XSTest's type is
  appended: ``XSTest/homonyms``). ``group`` = ``idx`` for the sets aligned across languages (XSTest, OpenAI,
  BeaverTails), ``<lang>:<idx>`` for the others. Texts are kept exactly (XSafety's leading spaces included: the
  peers scored them so).
- **peer_xstest_zh_safe** (``xstest_responses/xstest_zh_safe50.csv``): 50 safe XSTest prompts in Chinese, label 0
  (an over-refusal probe; no peer figures). ``group`` = the XSTest v2 id (``v2-N``), ``category`` = the type.
- Not loaded: ``xstest_v2_completions.csv`` (its response label is derived here, not published; the published
  XSTest-Resp set is ``peer_gr_xstest_response``) and ``rabakbench`` (results only, no items).
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.readers import read_jsonl, read_table, require_columns
from crestguard.data.registry import register
from crestguard.data.validation import DatasetBuilder, label_from

GR_PROMPT = {"peer_gr_simplesafetytests": "SimpleSafetyTests", "peer_gr_aegis": "AegisSafetyTest",
             "peer_gr_openai_moderation": "OpenAIModeration", "peer_gr_harmbench_prompt": "HarmBenchPrompt"}
GR_RESPONSE = {"peer_gr_harmbench_response": "HarmBenchResponse", "peer_gr_saferlhf": "SafeRLHF",
               "peer_gr_beavertails": "BeaverTails", "peer_gr_xstest_response": "XSTestResponseHarmful"}
#: DuoGuard set name -> (registry suffix, aligned across languages).
DUOGUARD_SETS = {"XSTest": ("xstest", True), "OpenAI": ("openai", True), "BeaverTails": ("beavertails", True),
                 "RTP-LX": ("rtp_lx", False), "XSafety": ("xsafety", False)}
DUOGUARD_LANGS = ("en", "de", "es", "fr")
#: Datasets scored as response classification (prompt + response in one input).
RESPONSE_TASKS = frozenset(GR_RESPONSE) | {"peer_duoguard_beavertails"}
_GR_LICENCE = "non-commercial evaluation (upstream licences per benchmark; GuardReasoner states none)"
_DUO_LICENCE = "Apache-2.0 (DuoGuard repo); upstream non-commercial (ToxicChat, BeaverTails): evaluation only"


def _joined(row: dict) -> str | None:
    prompt, response = row.get("prompt"), row.get("response")
    return None if prompt is None or response is None else f"{prompt} {response}"


def _guardreasoner(path: Path, b: DatasetBuilder, file: str, benchmark: str, response: bool) -> None:
    src = path / file
    for i, row in enumerate(read_jsonl(src, b.name)):
        require_columns(row, ["benchmark", "idx", "prompt", "label"], b.name, f"{src.name} line {i + 1}")
        if row["benchmark"] != benchmark:
            continue
        text = _joined(row) if response else row["prompt"]
        b.add(str(row["idx"]), text, label_from({0: 0, 1: 1}, row["label"]), "en", category=benchmark,
              where=f"{src.name} line {i + 1}")


def _register_gr(name: str, benchmark: str, response: bool) -> None:
    what = "response harmfulness (prompt + response as one text)" if response else "prompt harmfulness"
    register(name, "guardreasoner_suite", "peer", f"GuardReasoner/WildGuard suite, {benchmark}: {what}",
             _GR_LICENCE, "the file's label (1 harmful)",
             choice="response rows joined as prompt + ' ' + response" if response else "")(
        lambda path, b: _guardreasoner(path, b, "response_tasks.jsonl" if response else "prompt_tasks.jsonl",
                                       benchmark, response))


for _name, _bench in GR_PROMPT.items():
    _register_gr(_name, _bench, False)
for _name, _bench in GR_RESPONSE.items():
    _register_gr(_name, _bench, True)


def _duoguard(path: Path, b: DatasetBuilder, dataset: str) -> None:
    _, aligned = DUOGUARD_SETS[dataset]
    for lang in DUOGUARD_LANGS:
        src = path / f"{lang}.jsonl"
        for i, row in enumerate(read_jsonl(src, b.name)):
            require_columns(row, ["dataset", "idx", "prompt", "label"], b.name, f"{src.name} line {i + 1}")
            if row["dataset"] != dataset:
                continue
            text = _joined(row) if dataset == "BeaverTails" else row["prompt"]
            category = f"XSTest/{row.get('xstest_type')}" if dataset == "XSTest" else dataset
            idx = str(row["idx"])
            b.add(f"{lang}:{idx}", text, label_from({0: 0, 1: 1}, row["label"]), lang,
                  group=idx if aligned else f"{lang}:{idx}", category=category, where=f"{src.name} line {i + 1}")


def _register_duoguard(dataset: str) -> None:
    suffix, aligned = DUOGUARD_SETS[dataset]
    register(f"peer_duoguard_{suffix}", "duoguard_eval", "peer",
             f"DuoGuard test set {dataset} in en/de/es/fr ({'aligned' if aligned else 'not aligned'} across languages)",
             _DUO_LICENCE, "DuoGuard's label as shipped (1 unsafe)",
             choice="prompt + ' ' + response as one text" if dataset == "BeaverTails" else "")(
        lambda path, b: _duoguard(path, b, dataset))


for _set in DUOGUARD_SETS:
    _register_duoguard(_set)


@register("peer_xstest_zh_safe", "xstest_responses", "peer", "50 safe XSTest prompts in Chinese (XSTest_cn)",
          "none stated (XSTest_cn); CC-BY-4.0 upstream", "all 0 (safe prompts)")
def _xstest_zh(path: Path, b: DatasetBuilder) -> None:
    src = path / "xstest_zh_safe50.csv"
    for i, row in enumerate(read_table(src, b.name, ["id_v2", "type", "prompt_zh", "label"])):
        b.add(row["id_v2"], row["prompt_zh"], label_from({"safe": 0, "unsafe": 1}, row["label"]), "zh",
              category=row["type"], where=f"{src.name} row {i + 1}")
