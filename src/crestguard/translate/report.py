"""The summary of a translation run, per target language, as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def _md_escape(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


_FLAG_NAMES = {"langid": "language ID", "roundtrip": "round-trip similarity"}


def _mismatched(rt: dict | None) -> str:
    return (
        f"{rt['mismatched_mean']:.3f} / {rt['mismatched_p95']:.3f}" if rt and "mismatched_mean" in rt else "–"
    )


def render_markdown(summary: dict) -> str:
    """The summary as a Markdown page: one table row per language, then failures and flagged examples."""
    checks = summary.get("checks")
    inputs = ", ".join(f"{name} ({n})" for name, n in summary["inputs"].items())
    lines = [
        "# Translation summary",
        "",
        f"- backend: `{summary['backend']}`, model: `{summary['model']}`",
        f"- input records: {inputs}",
    ]
    if checks:
        lines += [
            f"- length filter: translations over {checks['max_tokens']} tokens of `{checks['backbone']}` "
            "are dropped",
            f"- language ID: {checks['langid']} (a mismatch is flagged, not dropped)",
            f"- round-trip: cosine of source and translation embedded by `{checks['backbone']}`; below "
            f"{checks['min_similarity']} is flagged. *Mismatched* pairs (source i against translation i+1) "
            "show what unrelated texts score: a useful threshold sits above most of them",
        ]
    else:
        lines.append("- quality checks: off")
    lines += [
        "",
        "Counts are records, except *distinct*, *cached* and *new*, which count distinct source texts.",
        "",
        "| lang | records | distinct | cached | new | failed | too long | written | langid agrees | "
        "round-trip mean / p05 / min | flagged round-trip | mismatched mean / p95 | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for code, rep in summary["languages"].items():
        lid, rt = rep["checks"].get("langid"), rep["checks"].get("roundtrip")
        lid_cell = f"{lid['agree']}/{lid['checked']} ({lid['agree_rate']:.1%})" if lid else "–"
        rt_cell = f"{rt['mean']:.3f} / {rt['p05']:.3f} / {rt['min']:.3f}" if rt else "–"
        cells = [
            code,
            rep["records"],
            rep["distinct_texts"],
            rep["from_cache"],
            rep["translated_now"],
            rep["failed"],
            rep["dropped_too_long"],
            rep["written"],
            lid_cell,
            rt_cell,
            rt["below_threshold"] if rt else "–",
            _mismatched(rt),
            rep["seconds"],
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    for code, rep in summary["languages"].items():
        lid = rep["checks"].get("langid")
        if rep["failure_reasons"]:
            lines += ["", f"## {code}: failures", "", "| reason | records |", "|---|---:|"]
            lines += [f"| {_md_escape(r)} | {n} |" for r, n in rep["failure_reasons"].items()]
        if lid and lid["detected_instead"]:
            found = ", ".join(f"{k} ({n})" for k, n in lid["detected_instead"].items())
            lines += ["", f"Language ID for {code} found instead: {found}."]
        for flag, examples in rep["flagged_examples"].items():
            lines += [
                "",
                f"## {code}: flagged by {_FLAG_NAMES[flag]} "
                f"(first {len(examples)} of {rep['flagged'][flag]})",
                "",
                "| id | source | translation | langid | round-trip |",
                "|---|---|---|---|---:|",
            ]
            for ex in examples:
                cos = f"{ex['roundtrip']:.3f}" if ex["roundtrip"] is not None else "–"
                cells = [
                    _md_escape(ex["id"], 40),
                    _md_escape(ex["source_text"]),
                    _md_escape(ex["text"]),
                    ex["langid"],
                    cos,
                ]
                lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict, folders: Sequence[Path]) -> list[Path]:
    """Write ``summary.json`` and ``summary.md`` into each folder; returns the files written."""
    written = []
    for folder in folders:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8"
        )
        (folder / "summary.md").write_text(render_markdown(summary), "utf-8")
        written += [folder / "summary.json", folder / "summary.md"]
    return written
