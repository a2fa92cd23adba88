"""The peer table: our figure beside every published figure of another guardrail on the same items, same metric.

``crestguard eval peers --model M --out reports/peers`` scores the peer suite (``configs/suites/peer.yaml``: the
items of ``../shared/peer_eval``) through the model, then reads ``peer_eval/peer_figures/peer_figures.csv`` and,
for every published number whose items are here, computes ours the way that number was computed (F1 of the unsafe
class x 100, GuardBench's F1 or recall on 0-1, the DuoGuard per-language mean of per-set F1) at the model's own
threshold. It writes ``peers.json`` and ``peers.md`` beside the harness's ``results.json`` / ``report.md``.

Run it **once per release** on the final model (recipes and thresholds are never chosen on these items);
``--limit N`` scores only N groups per language of each set, to test the command: such a table says so and is not
comparable to the published figures.

What is not like for like, and said so in the table:

- DuoGuard's per-language figure is the mean of six per-set F1 values with ToxicChat as the sixth set; ToxicChat is
  not in this copy, so ours is the mean of the other five (XSTest, OpenAI, BeaverTails, RTP-LX, XSafety).
- Response tasks (HarmBench responses, SafeRLHF, BeaverTails, XSTest-Resp) classify the assistant's turn; CREST
  Guard is a prompt guard and scores ``prompt + " " + response`` as one input: "not a prompt task".
- The Qwen3Guard report does not say which RTP-LX rows or threshold it used (the CSV's note is carried over).
- ToxicChat rows (GuardReasoner/Qwen3Guard 2,853-row set, GuardBench's 5,083 rows): items not here, no figure.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crestguard.evaluation.suite import EvalSet, sample_groups

DUOGUARD_MEAN = "mean F1 of XSTest, OpenAI, ToxicChat, BeaverTails, RTP-LX, XSafety"
#: the five DuoGuard sets present here (ToxicChat is not)
DUOGUARD_SETS = ("duoguard_xstest", "duoguard_openai", "duoguard_beavertails", "duoguard_rtp_lx", "duoguard_xsafety")
#: published benchmark name -> our set in the peer suite (None: the items are not in this copy)
BENCHMARK_SET: dict[str, str | None] = {
    "SimpleSafetyTests": "gr_simplesafetytests", "AegisSafetyTest": "gr_aegis", "Aegis": "gr_aegis",
    "OpenAIModeration": "gr_openai_moderation", "OpenAI Moderation Dataset": "gr_openai_moderation",
    "HarmBenchPrompt": "gr_harmbench_prompt", "XSTest": "duoguard_xstest", "RTP-LX": "duoguard_rtp_lx",
    "HarmBenchResponse": "gr_harmbench_response", "SafeRLHF": "gr_saferlhf", "BeaverTails": "gr_beavertails",
    "XSTestResponseHarmful": "gr_xstest_response", "XSTestResponse": "gr_xstest_response",
    "ToxicChat": None, "Toxic Chat": None, DUOGUARD_MEAN: None,
}
#: how a published metric is read from one of our metric blocks
METRICS: dict[str, Callable[[dict], float | None]] = {
    "F1x100": lambda m: None if m.get("f1") is None else 100 * m["f1"],
    "F1": lambda m: m.get("f1"),
    "Recall": lambda m: m.get("recall"),
}
RESPONSE_NOTE = "not a prompt task: CREST Guard scores prompt + ' ' + response as one input"
DUOGUARD_NOTE = "ours: mean of 5 sets (ToxicChat is absent here); published: mean of 6 sets with ToxicChat"


def figures_path() -> Path:
    """``peer_eval/peer_figures/peer_figures.csv`` under :func:`crestguard.paths.peer_eval_dir`."""
    from crestguard.paths import peer_eval_dir

    return peer_eval_dir() / "peer_figures" / "peer_figures.csv"


def limit_sets(sets: Sequence[EvalSet], limit: int, salt: str) -> list[EvalSet]:
    """Each set cut to its ``limit`` lowest-ranked groups per language (deterministic), for a quick test run."""
    out = []
    for s in sets:
        kept, _ = sample_groups(s.records, limit, salt, s.spec.dataset)
        dropped = {**s.dropped, f"--limit {limit}": len(s.records) - len(kept)}
        out.append(EvalSet(s.spec, kept, s.reserved_groups, dropped, s.held))
    return out


def _ours(res: dict[str, Any], benchmark: str, lang: str, metric: str) -> tuple[float | None, int, str]:
    """Our figure for one published row: ``(value, items, note)``; ``value`` None when not computable here."""
    sets = {s["name"]: s for s in res["sets"]}
    read = METRICS.get(metric)
    if read is None:
        return None, 0, f"metric {metric!r} not computed here"

    def block(name: str) -> dict | None:
        s = sets.get(name)
        if s is None:
            return None
        return s["by_language"].get(lang) if len(s["by_language"]) > 1 else s["metrics"]

    if benchmark == DUOGUARD_MEAN:
        blocks = [block(n) for n in DUOGUARD_SETS]
        values = [read(b) for b in blocks if b is not None]
        if len(values) < len(DUOGUARD_SETS) or any(v is None for v in values):
            return None, 0, "a DuoGuard set is missing or undefined here"
        return float(np.mean(values)), sum(b["n"] for b in blocks), DUOGUARD_NOTE
    name = BENCHMARK_SET.get(benchmark)
    if name is None:
        return None, 0, "items not in this copy" if benchmark in BENCHMARK_SET else "benchmark not mapped"
    b = block(name)
    if b is None:
        return None, 0, f"set {name} has no items in {lang!r} here (or was left out with --sets)"
    note = RESPONSE_NOTE if sets[name]["section"] == "response" else ""
    return read(b), b["n"], note


def peer_rows(res: dict[str, Any], figures: Path | None = None) -> list[dict[str, Any]]:
    """Every published row whose items are in ``peer_eval`` (or the same items in ``../shared/data``), with ours."""
    with open(figures or figures_path(), newline="", encoding="utf-8") as fh:
        published = [r for r in csv.DictReader(fh) if r["items_in_holdout"]]
    out = []
    for r in published:
        ours, n, note = _ours(res, r["benchmark"], r["language"], r["metric"])
        out.append({"benchmark": r["benchmark"], "language": r["language"], "task": r["task"],
                    "metric": r["metric"], "model": r["model"], "mode": r["mode"], "value": float(r["value"]),
                    "source": r["source"], "table": r["table"], "peer_note": r["note"],
                    "our_set": "duoguard (5 sets)" if r["benchmark"] == DUOGUARD_MEAN else BENCHMARK_SET.get(
                        r["benchmark"]), "ours": ours, "our_n": n, "our_note": note})
    return out


def build(res: dict[str, Any], limit: int | None, figures: Path | None = None) -> dict[str, Any]:
    """The ``peers.json`` document from a harness result on the peer suite."""
    return {"schema": "crestguard.peers/1",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": res["model"], "suite": res["suite"], "threshold": res["settings"]["threshold"],
            "limit": limit, "figures": str(figures or figures_path()), "rows": peer_rows(res, figures)}


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" if metric == "F1x100" else f"{v:.3f}"


def render(doc: dict[str, Any]) -> str:
    """``peers.md``: a summary line per benchmark and language, then every published figure beside ours."""
    name = doc["model"]["name"]
    lines = [f"# Peer table: `{name}` beside published guardrails on the same items", ""]
    if doc["limit"]:
        lines += [f"**SAMPLE RUN (`--limit {doc['limit']}`): ours is on a few items per set and language; NOT "
                  "comparable to the published figures.**", ""]
    lines += [f"Ours: threshold {doc['threshold']:g} (the model's own), suite `{doc['suite']['name']}` "
              f"v{doc['suite']['version']}, {doc['created']}. Published figures: `peer_eval/peer_figures/"
              "peer_figures.csv` (source, table and caveats per row). Same items, same metric: F1x100 = unsafe-class "
              "F1 x 100; GuardBench's F1 and Recall are on 0-1. ToxicChat figures have no items here and are left "
              "out. Regenerate: `crestguard eval peers --model M --out DIR` (once per release).", ""]
    groups: dict[tuple, list[dict]] = {}
    for r in doc["rows"]:
        if r["ours"] is None and r["our_note"] == "items not in this copy":
            continue
        groups.setdefault((r["our_set"], r["language"], r["metric"]), []).append(r)  # same items, same metric
    summary = []
    for (_, lang, metric), rows in groups.items():
        bench = _title(rows)
        ours = rows[0]["ours"]
        below = sum(r["value"] < ours for r in rows) if ours is not None else None
        best = max(rows, key=lambda r: r["value"])
        mode = f" ({best['mode']})" if best["mode"] else ""
        summary.append([bench, lang, metric,
                        _fmt(ours, metric), rows[0]["our_n"],
                        f"{best['model']}{mode} {_fmt(best['value'], metric)}",
                        "—" if below is None else f"{below} of {len(rows)}", rows[0]["our_note"] or "—"])
    lines += ["## Summary", ""]
    lines += _table(["benchmark", "lang", "metric", "ours", "items", "best published", "published below ours",
                     "note"], summary)
    lines += ["## Every published figure", ""]
    for (_, lang, metric), rows in groups.items():
        ours = rows[0]["ours"]
        lines += [f"### {_title(rows)} ({lang}, {rows[0]['task']}, {metric}): ours {_fmt(ours, metric)}", ""]
        if rows[0]["our_note"]:
            lines += [f"Note: {rows[0]['our_note']}.", ""]
        ranked = [(-1.0 if ours is None else ours, [f"**{name}**", "", f"**{_fmt(ours, metric)}**", "this run", ""])]
        ranked += [(r["value"], [r["model"], r["mode"] or "", _fmt(r["value"], metric),
                                 f"{r['source']} ({r['table']})", r["peer_note"]]) for r in rows]
        ranked.sort(key=lambda vr: -vr[0])
        lines += _table(["model", "mode", metric, "source", "caveat"], [row for _, row in ranked])
    return "\n".join(lines) + "\n"


def _title(rows: list[dict]) -> str:
    """The benchmark names the sources print for one set of items, joined."""
    names = dict.fromkeys("DuoGuard six-set mean" if r["benchmark"] == DUOGUARD_MEAN else r["benchmark"] for r in rows)
    return " / ".join(names)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    from crestguard.evaluation.report import _table as table

    return table(header, rows)


def run(model: Any, out_dir: Path, limit: int | None = None, sets: Sequence[str] | None = None,
        data_dir: str | Path | None = None, n_boot: int = 200, progress: bool = True) -> dict[str, Any]:
    """Score the peer suite and write ``results.json``, ``report.md``, ``peers.json``, ``peers.md`` to ``out_dir``.

    Args:
        model: a model spec (:func:`~crestguard.evaluation.classifiers.resolve_model`), e.g. ``crest-me5s``, or a
            classifier.
        out_dir: the output folder.
        limit: score only this many groups per language of each set (a test run, marked as such).
        sets: only these set names of the peer suite.
    """
    from crestguard.evaluation.classifiers import resolve_model
    from crestguard.evaluation.errors import EvaluationError
    from crestguard.evaluation.harness import Settings, evaluate
    from crestguard.evaluation.report import write_all
    from crestguard.evaluation.suite import default_loader, load_suite, materialize

    suite = load_suite("peer")
    if sets:
        unknown = set(sets) - {s.name for s in suite.sets}
        if unknown:
            raise EvaluationError(f"no set(s) {sorted(unknown)} in the peer suite; known: "
                                  f"{', '.join(s.name for s in suite.sets)}")
        from dataclasses import replace

        suite = replace(suite, sets=tuple(s for s in suite.sets if s.name in sets))
    materialized = materialize(suite, default_loader(data_dir))
    if limit:
        materialized = limit_sets(materialized, limit, suite.salt)
    clf = resolve_model(model) if isinstance(model, str) else model
    res = evaluate(clf, suite, materialized, settings=Settings(n_boot=n_boot), progress=progress)
    out_dir = Path(out_dir)
    write_all(res, out_dir)
    doc = build(res, limit)
    (out_dir / "peers.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                                        encoding="utf-8")
    (out_dir / "peers.md").write_text(render(doc), encoding="utf-8")
    return doc
