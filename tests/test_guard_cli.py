"""``crestguard check`` (text and file modes, resumable output, exit codes) and ``crestguard guard calibrate``.

The tiny random classifier keeps these fast; a threshold file decides whether it flags everything or nothing.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crestguard.cli import app
from test_guard_fixtures import tiny_model_dir  # noqa: F401  (fixture)

runner = CliRunner()


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    (root / "all.yaml").write_text("threshold: 0.000001\n")   # every text flagged
    (root / "none.yaml").write_text("threshold: 0.999999\n")  # nothing flagged
    return root


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_check_text_exit_codes_and_json(tiny_model_dir, policies):  # noqa: F811
    flagged = _run("check", "How do I make a bomb?", "--model", tiny_model_dir, "--thresholds",
                   policies / "all.yaml", "--json")
    assert flagged.exit_code == 1, flagged.output
    verdict = json.loads(flagged.stdout)
    assert verdict["unsafe"] and verdict["label"] == "unsafe" and verdict["language"] == "en"
    clean = _run("check", "Hello there", "--model", tiny_model_dir, "--thresholds", policies / "none.yaml")
    assert clean.exit_code == 0, clean.output
    assert "SAFE" in clean.stdout and "English" in clean.stdout and "cluster 2" in clean.stdout


def test_check_reads_stdin_and_refuses_bad_arguments(tiny_model_dir, policies):  # noqa: F811
    res = runner.invoke(app, ["check", "-", "--model", str(tiny_model_dir), "--json"],
                        input="Guten Morgen, wie geht's?")
    assert json.loads(res.stdout)["language"] == "de"
    assert _run("check", "--model", tiny_model_dir).exit_code != 0  # neither text nor file
    bad = _run("check", "text", "--model", "no-such-guard")
    assert isinstance(bad.exception, Exception) and "Unknown guard model" in str(bad.exception)


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv"])
def test_check_file_writes_one_verdict_per_item(kind, tiny_model_dir, policies, tmp_path):  # noqa: F811
    texts = ["first text", "second, with a comma", "Как дела?", "третий"]
    src = tmp_path / f"in.{kind}"
    if kind == "txt":
        src.write_text("\n".join(texts[:2]) + "\n\n" + "\n".join(texts[2:]) + "\n")
    elif kind == "jsonl":
        src.write_text("".join(json.dumps({"id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    else:
        import csv

        with open(src, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "text"])
            w.writerows([[f"q{i}", t] for i, t in enumerate(texts)])
    out = tmp_path / "out.jsonl"
    res = _run("check", "--file", src, "--out", out, "--model", tiny_model_dir, "--thresholds",
               policies / "all.yaml", "--json")
    assert res.exit_code == 1, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["total"] == summary["checked"] == summary["flagged"] == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected_ids = ["1", "2", "4", "5"] if kind == "txt" else [f"q{i}" for i in range(4)]  # txt: line numbers
    assert [r["id"] for r in rows] == expected_ids
    assert all(r["unsafe"] for r in rows) and rows[2]["language"] == "ru"
    assert summary["blank_skipped"] == (1 if kind == "txt" else 0)


def test_check_file_resumes_after_an_interruption(tiny_model_dir, policies, tmp_path):  # noqa: F811
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"text number {i}"}) + "\n" for i in range(10)))
    out = tmp_path / "out.jsonl"
    first = _run("check", "--file", src, "--out", out, "--model", tiny_model_dir, "--thresholds",
                 policies / "none.yaml")
    assert first.exit_code == 0, first.output
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:6]) + lines[6][:15])  # 6 complete lines and a torn one, as after a crash
    again = _run("check", "--file", src, "--out", out, "--model", tiny_model_dir, "--thresholds",
                 policies / "none.yaml", "--json")
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["resumed"], summary["checked"], summary["total"]) == (6, 4, 10)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(int(r["id"]) for r in rows) == list(range(10))


def test_check_file_reports_bad_input_by_line(tiny_model_dir, tmp_path):  # noqa: F811
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "fine"}\n{"id": 2, "body": "no text"}\n')
    res = _run("check", "--file", src, "--out", tmp_path / "o.jsonl", "--model", tiny_model_dir)
    assert "in.jsonl, item 2: 'text' is missing" in str(res.exception)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    res = _run("check", "--file", dup, "--out", tmp_path / "o2.jsonl", "--model", tiny_model_dir)
    assert "duplicate id '1'" in str(res.exception)


def test_oversized_items_are_written_as_errors_and_exit_2(tiny_model_dir, policies, tmp_path):  # noqa: F811
    src = tmp_path / "in.txt"
    src.write_text("short one\n" + "x" * 5000 + "\nshort two\n")
    out = tmp_path / "out.jsonl"
    res = _run("check", "--file", src, "--out", out, "--model", tiny_model_dir, "--max-chars", 1000,
               "--thresholds", policies / "none.yaml")
    assert res.exit_code == 2, res.output
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "over the limit of 1,000" in rows["2"]["error"] and rows["1"]["unsafe"] is False


def test_guard_calibrate_writes_a_policy(tiny_model_dir, tmp_path):  # noqa: F811
    data = tmp_path / "labelled.jsonl"
    rows = [{"text": f"benign sentence {i}", "label": 0, "lang": "en"} for i in range(30)]
    rows += [{"text": f"how do I hurt person {i}", "label": 1, "lang": "en"} for i in range(30)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "policy.yaml"
    res = _run("guard", "calibrate", "--model", tiny_model_dir, "--data", data, "--out", out)
    assert res.exit_code == 0, res.output
    import yaml

    policy = yaml.safe_load(out.read_text())
    assert 0 < policy["threshold"] < 1 and policy["calibration"]["items"] == 60
    assert "en" in policy["languages"]
