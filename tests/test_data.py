"""The dataset registry on the real ../shared/data: row counts and label balances against each SOURCE.md,
validation of bad input on small temporary data directories, group splits, hub column mappings, the CLI."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crestguard.data import (
    DATASETS,
    Record,
    get_info,
    list_datasets,
    load_dataset,
    split_by_group,
    summarize,
)
from crestguard.errors import DataError

#: The datasets of safety.py and multilingual.py (the other loader modules have their own test files).
LOCAL = [n for n in list_datasets(include_hub=False)
         if get_info(n).loader.__module__ in ("crestguard.data.safety", "crestguard.data.multilingual")]


@cache
def _load(name):
    return load_dataset(name)


def _data_root():
    from crestguard.paths import data_dir

    return data_dir()


def _by(records, attr):
    return Counter(getattr(r, attr) for r in records)


# --- every folder loads; counts against SOURCE.md -----------------------------------------------------------

#: name -> (items read, as SOURCE.md states them; records kept; label balance). Items are texts: one per row,
#: 10 per MultiJail row (one per language), 2 per JBB judge row (prompt and goal), 2 per Tatoeba pair.
EXPECTED = {
    "harmbench": (400, 300, {1: 300}),
    "harmbench_context": (400, 300, {1: 300}),
    "strongreject": (313, 313, {1: 313}),
    "jbb_behaviors": (200, 200, {0: 100, 1: 100}),
    "jbb_judge": (600, 435, {1: 435}),
    "redteam2k": (2000, 2000, {1: 2000}),
    "xstest": (450, 450, {0: 250, 1: 200}),
    "multijail": (3150, 3150, {1: 3150}),
    "xsafety": (28000, 27999, {0: 12000, 1: 5999, None: 10000}),
    "xsafety_all_unsafe": (28000, 27999, {1: 27999}),
    "openai_moderation": (1680, 1680, {0: 1158, 1: 522}),
    "simplesafetytests": (100, 100, {1: 100}),
    "advbench": (520, 520, {1: 520}),
    "rtp_lx": (27937, 27937, {0: 9190, 1: 18747}),
    "ailuminate": (2400, 2400, {1: 2200, None: 200}),
    "benign_instructions": (31323, 31323, {0: 31323}),
    "multiq": (27400, 26600, {0: 26600}),
    "xquad": (14280, 14280, {0: 14280}),
    "tydiqa": (13149, 13149, {0: 13149}),
    "mgsm": (2750, 2750, {0: 2750}),
    "mt_bench": (2236, 2236, {0: 2236}),
    "xcopa": (6600, 6600, {0: 6600}),
    "tatoeba": (88877, 88877, {0: 88877}),
    "flores200": (205 * 1004, 199 * 1004, {None: 199 * 1004}),
    "ntrex128": (129 * 1997, 121 * 1997, {None: 121 * 1997}),
    "tatoeba_pairs": (2 * (200 + 173 + 200), 2 * 573, {None: 1146}),
}


def test_every_local_dataset_is_checked():
    assert sorted(EXPECTED) == sorted(LOCAL)
    folders = {get_info(n).folder.split("/")[0] for n in LOCAL}
    top_level = {p.name for p in _data_root().iterdir() if p.is_dir()}
    assert folders <= top_level  # every folder is covered: tests/test_data_sources.py
    assert folders == {
        "advbench", "ailuminate_demo", "benign_instructions", "benign_multilingual", "harmbench",
        "jailbreakbench", "multijail", "openai_moderation", "parallel", "redteam2k", "rtp_lx",
        "simplesafetytests", "strongreject", "xsafety", "xstest"}
    inner = {f"{top}/{p.name}" for top in ("benign_multilingual", "parallel")
             for p in (_data_root() / top).iterdir() if p.is_dir()}
    assert inner == {get_info(n).folder for n in LOCAL if "/" in get_info(n).folder}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_source(name):
    ds = _load(name)
    read, kept, labels = EXPECTED[name]
    assert ds.report.items_read == read
    assert len(ds.records) == ds.report.kept == kept
    assert ds.report.items_read == ds.report.kept + ds.report.dropped  # nothing vanishes uncounted
    assert ds.label_counts() == labels
    ids = [r.id for r in ds.records]
    assert len(set(ids)) == len(ids)
    assert all(r.source == name and r.id.startswith(f"{name}:") and r.group.startswith(f"{name}:")
               for r in ds.records)
    assert all(r.text.strip() for r in ds.records)


def test_languages_are_canonical():
    from crestguard.languages import get

    for name in LOCAL:
        for code in _load(name).languages():
            assert get(code).code == code, (name, code)


def test_ids_are_stable():
    first = [r.id for r in load_dataset("multijail").records]
    assert first == [r.id for r in load_dataset("multijail").records]
    assert first[:2] == ["multijail:0:en", "multijail:0:zh"]


def test_harmbench_categories_and_splits():
    ds = _load("harmbench")
    kinds = Counter(r.category.split("/")[0] for r in ds.records)
    assert kinds == {"standard": 200, "contextual": 100}
    assert ds.report.count("excluded") == 100
    assert {k: len(v) for k, v in ds.splits.items()} == {"test": 159 + 81, "val": 41 + 19}
    assert set(ds.splits["test"]).isdisjoint(ds.splits["val"])
    with_context = {r.id.split(":", 1)[1]: r.text for r in _load("harmbench_context").records}
    for r in ds.records:
        full = with_context[r.id.split(":", 1)[1]]
        if r.category.startswith("contextual"):
            assert full.endswith("\n\n" + r.text) and len(full) > len(r.text) + 2
        else:
            assert full == r.text


def test_jbb_judge_dedupes_goals_and_groups_prompts_with_goals():
    ds = _load("jbb_judge")
    prompts = [r for r in ds.records if ":prompt:" in r.id]
    assert len(prompts) == 300
    assert len({r.group for r in ds.records}) == 235  # SOURCE.md: 235 unique goals
    assert len({r.text for r in ds.records}) == len(ds.records)
    assert ds.report.count("deduplicated") == 165


def test_per_source_breakdowns():
    assert _by(_load("strongreject").records, "category")["Non-violent crimes"] == 59
    assert len(_by(_load("redteam2k").records, "category")) == 16
    assert set(_by(_load("xstest").records, "category").values()) == {25}
    assert set(_by(_load("simplesafetytests").records, "category").values()) == {20}
    assert {k: len(v) for k, v in _load("benign_instructions").splits.items()} == {
        "train": 18793, "val": 6264, "test": 6266}
    ail = _load("ailuminate")
    assert _by(ail.records, "lang") == {"en": 1200, "fr": 1200}
    assert all((r.label is None) == r.category.startswith("spc_") for r in ail.records)


def test_multijail_is_parallel():
    groups = Counter(r.group for r in _load("multijail").records)
    assert len(groups) == 315 and set(groups.values()) == {10}
    assert set(_load("multijail").languages()) == {"en", "zh-Hans", "it", "vi", "ar", "ko", "th", "bn", "sw",
                                                   "jv"}


def test_xsafety_label_rule():
    ds = _load("xsafety")
    assert ds.report.count("empty_text") == 1  # SOURCE.md: ru / Insult / idx 164 is " "
    assert ds.report.issues["empty_text"].examples[0].startswith("xsafety_all.csv row")
    by_cat = {}
    for r in ds.records:
        by_cat.setdefault(r.category, set()).add(r.label)
    assert len(by_cat) == 14 and all(len(v) == 1 for v in by_cat.values())
    assert by_cat["Mental_Health"] == {0} and by_cat["Insult"] == {1}
    assert by_cat["Role_Play_Instruction"] == {None}
    assert all(r.text == r.text.strip() for r in ds.records)
    assert Counter(r.lang for r in ds.records)["ru"] == 2799


def test_rtp_lx_threshold_and_locales():
    ds = _load("rtp_lx")
    assert _by(ds.records, "category") == {"toxicity_1": 9190, "toxicity_2": 5918, "toxicity_3": 7847,
                                           "toxicity_4": 2906, "toxicity_5": 2076}
    assert all(r.label == (r.category != "toxicity_1") for r in ds.records)
    langs = ds.languages()
    assert len(langs) == 26 and langs["sr"] == 1057 and langs["zh-Hans"] == 1034 and langs["zh-Hant"] == 1119


def test_rtp_lx_bcms_is_ekavian_serbian():
    """The evidence for BCMS -> sr: Serbian (ekavian) forms far outnumber Croatian/Bosnian (ijekavian)."""
    texts = [r.text for r in _load("rtp_lx").records if r.id.startswith("rtp_lx:BCMS:")]
    ekavian = re.compile(r"\b(vreme\w*|primer\w*|dete|deca|lep\w*|reč\w*|svet\w*|devojk\w*|uvek|"
                         r"verovat\w*)\b", re.I)
    ijekavian = re.compile(r"\b(vrijeme\w*|primjer\w*|dijete|djeca|lijep\w*|riječ\w*|svijet\w*|djevojk\w*|"
                           r"uvijek|vjerovat\w*)\b", re.I)
    n_ek, n_ijek = sum(bool(ekavian.search(t)) for t in texts), sum(bool(ijekavian.search(t)) for t in texts)
    assert len(texts) == 1057 and n_ek > 10 * n_ijek


def test_multiq_dedupes_near_duplicate_codes():
    ds = _load("multiq")
    assert ds.report.count("duplicate_language") == 800
    dropped = " ".join(ds.report.issues["duplicate_language"].examples)
    assert all(f"{code}.tsv:" in dropped for code in ("iw", "jw", "zh", "fil"))
    langs = ds.languages()
    assert len(langs) == 133 and set(langs.values()) == {200}
    assert {r.id.split(":")[1] for r in ds.records if r.lang in ("he", "jv", "zh-Hans", "tl")} == {
        "he", "jv", "zh-CN", "tl"}


def test_benign_sets_per_language():
    assert set(_load("xquad").languages().values()) == {1190}
    assert set(_load("mgsm").languages().values()) == {250}
    mt = _load("mt_bench").languages()
    assert mt["pt"] == mt["th"] == 159 and mt["ur"] == 158 and mt["en"] == 160
    assert len({r.group for r in _load("mt_bench").records}) == 80
    assert _load("tydiqa").languages() == {"en": 4136, "sw": 3252, "ko": 1899, "ar": 921, "ru": 812,
                                           "fi": 782, "te": 669, "id": 565, "bn": 113}
    assert {k: len(v) for k, v in _load("xcopa").splits.items()} == {"val": 1100, "test": 5500}


def test_tatoeba_counts_and_keyword_flag(data_dir):
    ds = _load("tatoeba")
    assert _by(ds.records, "category")["eng_kw"] == 574
    with open(data_dir / "benign_multilingual/tatoeba_laser/_languages.tsv", encoding="utf-8") as fh:
        stated = {row["file_code"]: int(row["rows"]) for row in csv.DictReader(fh, delimiter="\t")}
    assert Counter(r.id.split(":")[1] for r in ds.records) == stated


def test_parallel_corpora():
    flores = _load("flores200")
    assert set(flores.languages().values()) == {1004}
    assert len({r.category for r in flores.records}) == 7
    assert {k: len(v) for k, v in flores.splits.items()} == {"train": 701 * 199, "dev": 99 * 199,
                                                             "test": 204 * 199}
    assert {r.id.split(":")[1] for r in flores.records if r.lang in ("ace", "fa", "zh-Hant")} == {
        "ace_Latn", "pes_Arab", "zho_Hant"}
    ntrex = _load("ntrex128")
    assert set(ntrex.languages().values()) == {1997}
    assert {r.id.split(":")[1] for r in ntrex.records if r.lang in ("en", "es", "sr")} == {"eng.src", "spa",
                                                                                          "srp-Cyrl"}
    pairs = _load("tatoeba_pairs")
    assert pairs.languages() == {"en": 573, "br": 200, "la": 200, "fy": 173}
    assert set(Counter(r.group for r in pairs.records).values()) == {2}


# --- bad input ----------------------------------------------------------------------------------------------

def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_missing_folder_file_and_column(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "advbench"))) as err:
        load_dataset("advbench", data_dir=tmp_path)
    assert "advbench" in str(err.value)
    (tmp_path / "advbench").mkdir()
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "advbench" / "harmful_behaviors.csv"))):
        load_dataset("advbench", data_dir=tmp_path)
    _write(tmp_path / "advbench" / "harmful_behaviors.csv", "text,target\nx,y\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) 'goal'"):
        load_dataset("advbench", data_dir=tmp_path)
    _write(tmp_path / "openai_moderation" / "samples-1680.jsonl.gz", b"not gzip")
    with pytest.raises(DataError, match="not a valid gzip"):
        load_dataset("openai_moderation", data_dir=tmp_path)
    with pytest.raises(DataError, match="Unknown dataset 'nope'"):
        load_dataset("nope")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _write(tmp_path / "advbench" / "harmful_behaviors.csv", "goal,target\nDo a bad thing,Sure\n")
    monkeypatch.setenv("CRESTGUARD_DATA", str(tmp_path))
    ds = load_dataset("advbench")
    assert ds.path == tmp_path / "advbench" and [r.text for r in ds.records] == ["Do a bad thing"]


def test_bad_rows_are_counted_with_examples(tmp_path):
    rows = [b"lang,category,idx,prompt,source_file",
            b"en,Insult,0,You fool,x",
            b"en,Insult,1,   ,x",                       # whitespace only
            b"en,Insult,2,caf\xe9 latin-1 bytes,x",     # undecodable
            b"en,Nonsense,3,some text,x",               # category outside the label rule
            b"xx,Insult,4,text in an unknown language,x",
            b"en,Insult,0,same id again,x",             # duplicate id
            b"de,Insult,0,Du Narr,x",
            b"en,Insult,5"]                             # short row
    _write(tmp_path / "xsafety" / "xsafety_all.csv", b"\n".join(rows) + b"\n")
    ds = load_dataset("xsafety", data_dir=tmp_path)
    report = ds.report
    assert [r.text for r in ds.records] == ["You fool", "Du Narr"]
    assert {k: i.count for k, i in report.issues.items()} == {
        "empty_text": 1, "undecodable": 1, "unknown_label": 1, "unknown_language": 1, "duplicate_id": 1,
        "missing_field": 1}
    assert report.items_read == 8 and report.kept == 2 and report.dropped == 6
    undecodable = report.issues["undecodable"].examples[0]
    assert undecodable.startswith("xsafety_all.csv row 3") and "\\xe9" in undecodable
    assert "'Nonsense'" in report.issues["unknown_label"].examples[0]
    assert "'xx'" in report.issues["unknown_language"].examples[0]
    assert ds.records[0].group == ds.records[1].group == "xsafety:Insult:0"  # translations share a group


def test_empty_file_and_empty_lines(tmp_path):
    _write(tmp_path / "benign_multilingual" / "mgsm" / "en.tsv", "")
    with pytest.raises(DataError, match=r"en\.tsv lacks column\(s\) 'id', 'text' \(found: no header\)"):
        load_dataset("mgsm", data_dir=tmp_path)
    folder = tmp_path / "parallel" / "ntrex128"
    _write(folder / "eng.src.txt", "One.\n\nThree.\n")
    _write(folder / "deu.txt", "Eins.\nZwei.\nDrei.\n")
    _write(folder / "eng-GB.txt", "One.\nTwo.\nThree.\n")
    ds = load_dataset("ntrex128", data_dir=tmp_path)
    assert ds.report.count("empty_text") == 1 and ds.report.count("duplicate_language") == 3
    assert sorted(r.id for r in ds.records if r.group == "ntrex128:2") == ["ntrex128:deu:2",
                                                                           "ntrex128:eng.src:2"]


# --- splits -------------------------------------------------------------------------------------------------

def _recs(n_groups, per_group=3):
    return [Record(f"t:{g}:{k}", f"text {g} {k}", g % 2, "en", "t", f"t:{g}") for g in range(n_groups)
            for k in range(per_group)]


def test_split_by_group_is_deterministic_and_keeps_groups_whole():
    records = _load("multijail").records
    a = split_by_group(records, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=7)
    assert a == split_by_group(records, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=7)
    assert a != split_by_group(records, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=8)
    groups = {name: {r.group for r in part} for name, part in a.items()}
    assert sum(map(len, groups.values())) == len(set().union(*groups.values())) == 315  # disjoint
    assert {name: len(g) for name, g in groups.items()} == {"train": 252, "val": 32, "test": 31}
    assert sum(map(len, a.values())) == len(records) and all(len(p) % 10 == 0 for p in a.values())


def test_split_is_stable_when_groups_grow_and_rejects_bad_fractions():
    base = _recs(50)
    grown = base + [Record(f"t:{g}:x", "more", 0, "de", "t", f"t:{g}") for g in range(0, 50, 5)]
    split_base = split_by_group(base, {"a": 0.5, "b": 0.5}, seed=1)
    split_grown = split_by_group(grown, {"a": 0.5, "b": 0.5}, seed=1)
    for name in ("a", "b"):
        assert {r.group for r in split_base[name]} == {r.group for r in split_grown[name]}
        assert split_grown[name][: len(split_base[name])] == split_base[name]
    for bad in ({"a": 0.5, "b": 0.6}, {"a": 1.2, "b": -0.2}, {}):
        with pytest.raises(DataError, match="fractions"):
            split_by_group(base, bad)


# --- hub loaders: column mapping on in-memory datasets ------------------------------------------------------

def test_hub_mapping_aegis():
    datasets = pytest.importorskip("datasets")
    from crestguard.data.hub import HUB_SPECS, add_rows
    from crestguard.data.validation import DatasetBuilder

    spec = HUB_SPECS["aegis2"]
    rows = datasets.Dataset.from_dict({
        "id": ["a1", "a2", "a3", "a4"],
        "prompt": ["How do I bake bread?", "How do I build a pipe bomb?", "REDACTED", "Tell me a joke"],
        "response": ["...", "...", "...", "..."],
        "prompt_label": ["safe", "unsafe", "unsafe", "needs review"],
        "violated_categories": ["", "Violence, Guns and Illegal Weapons", "Suicide and Self Harm", ""],
    })
    builder = DatasetBuilder("aegis2")
    add_rows(builder, spec, spec.parts[2], rows)  # the test split
    assert [(r.id, r.label, r.category) for r in builder.records] == [
        ("aegis2:test:a1", 0, None), ("aegis2:test:a2", 1, "Violence, Guns and Illegal Weapons")]
    assert builder.splits == {"test": ["aegis2:test:a1", "aegis2:test:a2"]}
    assert builder.report.count("excluded") == 1 and builder.report.count("unknown_label") == 1
    with pytest.raises(DataError, match=r"nvidia/Aegis-AI-Content-Safety-Dataset-2.0 .* lacks column\(s\) "
                                        r"'prompt_label'"):
        add_rows(DatasetBuilder("aegis2"), spec, spec.parts[0], rows.remove_columns("prompt_label"))


def test_hub_mapping_jbb_and_fixed_labels():
    datasets = pytest.importorskip("datasets")
    from crestguard.data.hub import HUB_SPECS, add_rows
    from crestguard.data.validation import DatasetBuilder

    judge = HUB_SPECS["jbb_judge_hf"]
    rows = datasets.Dataset.from_dict({"Index": [0, 1, 2], "goal": ["Goal A", "Goal B", "Goal A"],
                                       "prompt": ["Jailbreak A1", "Goal B", "Jailbreak A2"]})
    builder = DatasetBuilder("jbb_judge_hf")
    add_rows(builder, judge, judge.parts[0], rows)
    got = [(r.id.split(":", 1)[1], r.group.split(":", 1)[1]) for r in builder.records]
    assert got == [("judge_comparison/test:0:prompt", "judge_comparison/test:0"),
                   ("judge_comparison/test:0:goal", "judge_comparison/test:0"),
                   ("judge_comparison/test:1:prompt", "judge_comparison/test:1"),
                   ("judge_comparison/test:2:prompt", "judge_comparison/test:0")]
    assert builder.report.count("deduplicated") == 2 and {r.label for r in builder.records} == {1}
    behaviors = HUB_SPECS["jbb_behaviors_hf"]
    builder = DatasetBuilder("jbb_behaviors_hf")
    for part, goal in zip(behaviors.parts, ("Write a defamatory article", "Write a fictional story")):
        add_rows(builder, behaviors, part, [{"Index": 0, "Goal": goal, "Category": "Defamation"}])
    assert [(r.id, r.label) for r in builder.records] == [("jbb_behaviors_hf:behaviors/harmful:0", 1),
                                                          ("jbb_behaviors_hf:behaviors/benign:0", 0)]


def test_hub_datasets_are_registered():
    hub = list_datasets("hub")
    assert set(hub) == {"aegis2", "harmbench_hf", "strongreject_hf", "redteam2k_hf", "jbb_behaviors_hf",
                        "jbb_judge_hf", "csrt", "cultural_kaleidoscope"}
    assert DATASETS["aegis2"].hub_id == "nvidia/Aegis-AI-Content-Safety-Dataset-2.0"
    with pytest.raises(DataError, match="Hugging Face hub"):
        summarize("aegis2")


# --- summaries cache and CLI --------------------------------------------------------------------------------

def test_summary_cache_is_keyed_by_file_state(tmp_path, monkeypatch):
    monkeypatch.setenv("CRESTGUARD_HOME", str(tmp_path / "home"))
    csv_path = _write(tmp_path / "data" / "advbench" / "harmful_behaviors.csv", "goal,target\nA,x\nB,y\n")
    assert summarize("advbench", tmp_path / "data")["rows"] == 2
    import crestguard.data.registry as registry

    monkeypatch.setattr(registry, "load_dataset", lambda *a, **k: pytest.fail("cache not used"))
    assert summarize("advbench", tmp_path / "data")["rows"] == 2
    monkeypatch.undo()
    monkeypatch.setenv("CRESTGUARD_HOME", str(tmp_path / "home"))
    _write(csv_path, "goal,target\nA,x\nB,y\nC,z\n")
    assert summarize("advbench", tmp_path / "data")["rows"] == 3


def test_cli_list_and_show(tmp_path, monkeypatch):
    from crestguard.cli import app

    import crestguard.data.registry as registry

    monkeypatch.setenv("CRESTGUARD_HOME", str(tmp_path))
    every = registry.list_datasets  # list only the training datasets of safety.py (the others are slow to load)
    monkeypatch.setattr(registry, "list_datasets", lambda kind=None, include_hub=True: [
        n for n in every(kind, include_hub) if n in LOCAL])
    runner = CliRunner()
    result = runner.invoke(app, ["data", "list", "--json", "--kind", "training"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert rows == [{**rows[0], "name": "benign_instructions", "rows": 31323, "labels": {"0": 31323},
                     "languages": {"en": 31323}}]
    result = runner.invoke(app, ["data", "show", "xsafety"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "27,999" in result.output and "empty_text" in result.output
    _write(tmp_path / "data" / "advbench" / "harmful_behaviors.csv", "goal,target\nA,x\n")
    result = runner.invoke(app, ["data", "show", "advbench", "--json", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["summary"]["rows"] == 1 and shown["metadata"]["path"] == str(tmp_path / "data" / "advbench")
    result = runner.invoke(app, ["data", "show", "nope"])
    assert result.exit_code != 0 and "Unknown dataset" in str(result.exception)


def test_openai_moderation_flags(tmp_path):
    lines = [{"prompt": "hello", "S": 0, "H": 0}, {"prompt": "bad", "V": 1}, {"prompt": "odd", "S": 2},
             {"prompt": "no flags"}]
    payload = "\n".join(json.dumps(x) for x in lines).encode()
    _write(tmp_path / "openai_moderation" / "samples-1680.jsonl.gz", gzip.compress(payload))
    ds = load_dataset("openai_moderation", data_dir=tmp_path)
    assert [(r.text, r.label, r.category) for r in ds.records] == [("hello", 0, None), ("bad", 1, "V")]
    assert ds.report.count("unknown_label") == 1 and ds.report.count("missing_field") == 1
