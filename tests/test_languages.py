"""The language table: its rows, its lookups, and that every language code used in ../shared/data resolves."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crestguard import languages
from crestguard.cli import app
from crestguard.errors import CrestGuardError, DataError, UnknownLanguageError
from crestguard.languages.table import LanguageTable

csv.field_size_limit(1 << 24)

# Codes in ../shared/data that the table deliberately does not cover, and why. (Empty: every code resolves.)
NOT_COVERED: dict[str, str] = {}


def _stems(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name.split(".")[0] for p in folder.glob(pattern) if not p.name.startswith("_"))


def _column(path: Path, column: str, delimiter: str = ",") -> set[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row[column] for row in csv.DictReader(fh, delimiter=delimiter) if row[column]}


def _data_codes(data: Path) -> dict[str, set[str]]:
    """Every language code used in the data, by where it was found (file names and language columns)."""
    bench = data / "benign_multilingual"
    tatoeba = bench / "tatoeba_laser" / "_languages.tsv"
    rtp = data / "rtp_lx" / "rtp_lx_prompts_from_benign_scoring.csv"
    with (data / "multijail" / "MultiJail.csv").open(encoding="utf-8") as fh:
        multijail = next(csv.reader(fh))[3:]  # id, source, tags, then one column per language
    codes = {
        # NTREX names its English source eng.src and a second Spanish reference spa.ref-2: the code is before the dot.
        "ntrex128 files": _stems(data / "parallel" / "ntrex128", "*.txt"),
        "flores200 files": _stems(data / "parallel" / "flores200_sib200", "*.tsv"),
        "parallel tatoeba files": [s.removesuffix("-eng") for s in _stems(data / "parallel" / "tatoeba_laser", "*.tsv")],
        "tatoeba files": _stems(bench / "tatoeba_laser", "*.tsv"),
        "tatoeba _languages.tsv": _column(tatoeba, "file_code", "\t") | _column(tatoeba, "iso639_1", "\t"),
        "rtp_lx locales": _column(rtp, "file_locale") | _column(rtp, "locale"),
        "ailuminate locales": set().union(*(_column(p, "locale") for p in (data / "ailuminate_demo").glob("*.csv"))),
        "multijail columns": multijail,
        "xsafety lang": _column(data / "xsafety" / "xsafety_all.csv", "lang"),
    }
    for name in ("multiq", "mgsm", "xquad", "tydiqa_goldp", "xcopa", "mt_bench_m2lingual"):
        codes[f"{name} files"] = _stems(bench / name, "*.tsv")
    return {where: set(found) for where, found in codes.items()}


@pytest.fixture(scope="module")
def data_codes(data_dir) -> dict[str, set[str]]:
    return _data_codes(data_dir)


@pytest.fixture(scope="module")
def xlmr_file(data_dir) -> list[dict[str, str]]:
    with (data_dir / "parallel" / "xlmr_languages.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_exactly_the_100_xlmr_languages(xlmr_file):
    codes = [x.code for x in languages.all_languages()]
    assert len(codes) == 100
    assert set(codes) == {row["xlmr_code"] for row in xlmr_file}
    others = languages.all_languages(xlmr_only=False)
    assert len(others) > 200 and all(x.cluster is None and x.cc100_gib is None for x in others if not x.in_xlmr)


def test_xlmr_rows_are_complete():
    for x in languages.all_languages():
        assert x.cc100_gib is not None and x.cc100_gib > 0, x.code
        assert re.fullmatch(r"[A-Z][a-z]{3}", x.script) and len(x.iso639_3) == 3 and len(x.iso639_1) == 2, x.code
    assert languages.get("en").cc100_gib == 300.8 and languages.get("ru").cc100_gib == 278.0
    assert languages.get("as").cc100_gib == 0.1 and languages.get("zh-Hant").cc100_gib == 16.6


def test_agrees_with_the_parallel_corpus_map(xlmr_file):
    """parallel/xlmr_languages.tsv names each XLM-R language's FLORES, NTREX and Tatoeba file: all map back to it."""
    for row in xlmr_file:
        code = row["xlmr_code"]
        assert languages.resolve(code) == code
        assert languages.flores_code(code) == (row["flores200_sib200_file"] or None)
        files = [row["flores200_sib200_file"], row["ntrex128_file"].split(".")[0], row["tatoeba_laser_file"][:3]]
        assert [languages.resolve(f) for f in files if f] == [code] * len([f for f in files if f])


def test_every_code_in_the_data_resolves(data_codes):
    unknown = {where: sorted(c for c in codes if c not in NOT_COVERED and languages.try_resolve(c) is None)
               for where, codes in data_codes.items()}
    assert {k: v for k, v in unknown.items() if v} == {}
    assert len(data_codes["multiq files"]) == 137 and len(data_codes["flores200 files"]) == 205
    assert len(data_codes["tatoeba files"]) == 112 and len(data_codes["rtp_lx locales"]) >= 26


def test_every_flores_file_is_a_flores_code_of_its_row(data_codes):
    for stem in data_codes["flores200 files"]:
        assert stem in languages.get(stem).flores, stem


def test_tatoeba_iso639_1_column_agrees(data_dir):
    with (data_dir / "benign_multilingual" / "tatoeba_laser" / "_languages.tsv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["iso639_1"]]
    assert len(rows) == 84
    assert [languages.resolve(r["file_code"]) for r in rows] == [languages.resolve(r["iso639_1"]) for r in rows]


def test_data_languages_outside_xlmr_are_named():
    for code, name in [("hmn", "Hmong"), ("haw", "Hawaiian"), ("kri", "Krio"), ("dv", "Dhivehi"), ("div", "Dhivehi"),
                       ("ceb", "Cebuano"), ("yue", "Cantonese"), ("BCMS", "Serbo-Croatian (BCMS)")]:
        lang = languages.get(code)
        assert lang.name == name and not lang.in_xlmr and lang.cluster is None


@pytest.mark.parametrize("code, canonical", [
    ("iw", "he"), ("jw", "jv"), ("zh-CN", "zh-Hans"), ("zh-TW", "zh-Hant"), ("zho-CN", "zh-Hans"),
    ("zho-TW", "zh-Hant"), ("ZH-Hans", "zh-Hans"), ("zh", "zh-Hans"), ("zho_Hant", "zh-Hant"), ("tl", "tl"),
    ("fil", "tl"), ("tgl_Latn", "tl"), ("nb", "no"), ("nob", "no"), ("NO-NB", "no"), ("no", "no"), ("ko-KR", "ko"),
    ("en_US", "en"), ("fr_FR", "fr"), ("pt-BR", "pt"), ("Pt-Br", "pt"), ("por-BR", "pt"), ("eng-GB", "en"),
    ("EN", "en"), ("aze-Latn", "az"), ("srp-Cyrl", "sr"), ("srp-Latn", "sr"), ("arb_Arab", "ar"), ("fas", "fa"),
    ("pes", "fa"), ("swh", "sw"), ("hi-Latn", "hi_rom"), ("BN_ROM", "bn_rom"), ("my-x-zawgyi", "my_zaw"),
    ("arb_Latn", "ar_rom"), ("mni-Mtei", "mni"), ("zh-Hant-HK", "zh-Hant"), ("sr-Latn-RS", "sr"),
])
def test_aliases(code, canonical):
    assert languages.resolve(code) == canonical


def test_nynorsk_is_not_norwegian_in_xlmr():
    assert languages.resolve("nn") == languages.resolve("nno") == "nn" and not languages.get("nn").in_xlmr


@pytest.mark.parametrize("code", ["xx", "klingon", "eng.src", "zh-XX", "hi-rom-IN", "", "  ", "en-"])
def test_unknown_codes_raise_naming_the_code(code):
    with pytest.raises(UnknownLanguageError) as info:
        languages.resolve(code)
    assert repr(code) in str(info.value)
    assert isinstance(info.value, CrestGuardError) and isinstance(info.value, KeyError)
    assert languages.try_resolve(code) is None


def test_region_without_script_is_not_guessed_for_chinese():
    with pytest.raises(UnknownLanguageError, match="does not say which script"):
        languages.resolve("zh-XX")


def test_paper_table8_round_trip(data_dir):
    notes = data_dir.parent / "notes" / "crest.md"
    if not notes.is_file():
        pytest.skip(f"{notes} not found")
    section = notes.read_text(encoding="utf-8").split("## Table 8", 1)[1].split("\n## ", 1)[0]
    expected = {}
    for number, codes in re.findall(r"^(\d)\. (.+)$", section, flags=re.M):
        names = [c.replace("fil(tl)", "tl") for c in codes.split()]
        expected[int(number)] = sorted(sum((["zh-Hans", "zh-Hant"] if c == "zh" else [c] for c in names), []))
    clusters = languages.paper_clusters()
    assert {k: sorted(v) for k, v in clusters.items()} == expected
    assert len(clusters) == 8 and sum(map(len, clusters.values())) == 93
    absent = sorted(x.code for x in languages.all_languages() if x.cluster is None)
    assert absent == ["bn_rom", "el", "hi_rom", "my_zaw", "ta_rom", "te_rom", "ur_rom"]


def test_flores_codes():
    assert languages.flores_code("fa") == "pes_Arab" and languages.flores_code("zh-TW") == "zho_Hant"
    assert languages.flores_code("br") is None and languages.flores_code("ace") == "ace_Latn"
    assert sum(x.flores_code is not None for x in languages.all_languages()) == 91


def _write_table(path: Path, rows: list[str]) -> Path:
    header = "code\tiso639_1\tiso639_3\tname\tscript\tflores\tcc100_gib\tcluster\tin_xlmr\taliases\tnote"
    path.write_text("# a comment\n" + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_malformed_table_names_file_and_line(tmp_path):
    bad = _write_table(tmp_path / "t.tsv", ["en\ten\teng\tEnglish\tLatn\teng_Latn\tlots\t2\ttrue\t\t"])
    with pytest.raises(DataError, match=r"t\.tsv, line 3: bad value"):
        LanguageTable(bad)
    short = _write_table(tmp_path / "s.tsv", ["en\ten\teng"])
    with pytest.raises(DataError, match="line 3: expected 11"):
        LanguageTable(short)


def test_table_refuses_a_code_claimed_twice(tmp_path):
    clash = _write_table(tmp_path / "c.tsv", ["he\the\theb\tHebrew\tHebr\t\t\t\tfalse\tiw\t",
                                              "yi\tyi\tyid\tYiddish\tHebr\t\t\t\tfalse\tiw\t"])
    with pytest.raises(DataError, match="'iw' names both he and yi"):
        LanguageTable(clash)
    shared = _write_table(tmp_path / "d.tsv", ["zh-Hans\tzh\tzho\tChinese\tHans\t\t\t\tfalse\t\t",
                                               "zh-Hant\tzh\tzho\tChinese\tHant\t\t\t\tfalse\t\t"])
    with pytest.raises(DataError, match="'zh' is shared by"):
        LanguageTable(shared)


def test_cli_list_and_show():
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["languages", "list", "--json"]).stdout)
    assert len(listed) == 100 and listed[0]["code"] == "af"
    cluster8 = json.loads(runner.invoke(app, ["languages", "list", "--json", "--cluster", "8"]).stdout)
    assert [x["code"] for x in cluster8] == ["eo", "id", "jv", "tl"]
    assert len(json.loads(runner.invoke(app, ["languages", "list", "--json", "--all"]).stdout)) > 200
    shown = runner.invoke(app, ["languages", "show", "iw"])
    assert shown.exit_code == 0 and "Hebrew" in shown.stdout and "heb_Hebr" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["languages", "show", "--json", "zho-TW"]).stdout)
    assert as_json["code"] == "zh-Hant" and "zh-tw" in as_json["accepted_codes"]


def test_cli_unknown_code_exits_2_with_message():
    done = subprocess.run([sys.executable, "-m", "crestguard.cli", "languages", "show", "qqq"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Unknown language code 'qqq'" in done.stderr
