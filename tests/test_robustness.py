"""The robustness report's tables, summary and files (crestguard.evaluation.robustness), on rows built by hand;
the guard-scoring path itself runs in ``crestguard eval robustness`` (reports/robustness/)."""

from __future__ import annotations

import json

import pytest

from crestguard.evaluation import robustness as R


def _res(recall_spaced: float, normalizer: int) -> dict:
    rows = [R._row("unsafe", "multijail_en", "plain", [True] * 8 + [False] * 2, [True] * 8 + [False] * 2),
            R._row("unsafe", "multijail_en", "letter_spacing", [True] * 8 + [False] * 2,
                   [True] * round(10 * recall_spaced) + [False] * (10 - round(10 * recall_spaced))),
            R._row("benign", "multiq", "plain", [False] * 10, [False] * 10),
            R._row("benign", "multiq", "letter_spacing", [False] * 10, [True] + [False] * 9)]
    return {"schema": R.SCHEMA, "created": "2026-12-03T00:00:00+00:00", "model": {"name": "m"},
            "suite": {"name": "default"}, "settings": {"normalizer_version": normalizer},
            "command": f"crestguard eval robustness --model m (v{normalizer})", "rows": rows,
            "summary": R._summary(rows), "seconds": 1.0}


def test_rows_and_summary_measure_loss_against_the_same_items():
    res = _res(0.1, 2)
    row = res["rows"][1]
    assert (row["clean"], row["variant"], row["delta"], row["metric"]) == (0.8, 0.1, -0.7, "recall")
    s = res["summary"]["letter_spacing"]
    assert s["recall_lost_multijail_en"] == pytest.approx(0.7) and s["fpr_change_mean"] == pytest.approx(0.1)


def test_report_files_and_before_after_table(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    R.write(_res(0.1, 1), before)
    R.write(_res(0.8, 2), after, before=before)
    assert {p.name for p in after.iterdir()} == {"results.json", "report.md", "robustness.png"}
    md = (after / "report.md").read_text()
    assert "## Before and after" in md and "| letter_spacing | 70.0 | 0.0 |" in md
    assert json.loads((after / "results.json").read_text())["before"]["settings"]["normalizer_version"] == 1


def test_unknown_set_is_a_clear_error():
    from crestguard.evaluation.errors import EvaluationError

    with pytest.raises(EvaluationError, match="no set"):
        R.run(sets=["no_such_set"])
