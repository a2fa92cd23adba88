"""Write and read ``results.json``; render ``report.md`` and the side-by-side comparison of two results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from crestguard.evaluation.errors import EvaluationError
from crestguard.evaluation.harness import SCHEMA
from crestguard.evaluation.textform import FORMS, LENGTH_BUCKETS

DASH = "—"
PLOTS = {"per_language.png": "Per-language balanced F1 and FPR (colour = cluster, hatched = out-of-domain)",
         "cluster_heatmap.png": "Recall and FPR by cluster and set",
         "reliability.png": "Reliability diagram",
         "tradeoff.png": "Recall on the unsafe sets against FPR on real user prompts"}


def write_all(results: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    """Write ``results.json`` (unless ``write_json`` is false), ``report.md`` and the plots into ``out_dir``."""
    from crestguard.evaluation.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        text = json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False)
        (out_dir / "results.json").write_text(text + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(render_report(results), encoding="utf-8")
    write_plots(results, out_dir)


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a directory) and check its schema.

    Raises:
        EvaluationError: missing file, bad JSON, or another schema.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"Cannot read results {path}: {exc}") from exc
    if res.get("schema") != SCHEMA:
        raise EvaluationError(f"{path}: schema {res.get('schema')!r}, expected {SCHEMA!r}")
    return res


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, or a dash when undefined."""
    return DASH if x is None else f"{100 * x:.{digits}f}"


def pct_ci(x: float | None, ci: list[float] | None) -> str:
    """``12.3 [10.1–14.2]``."""
    if x is None:
        return DASH
    return pct(x) + (f" [{pct(ci[0])}–{pct(ci[1])}]" if ci else "")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out + [""]


def _paper(row: dict) -> str:
    v = row["paper"].get("crest_base_f1")
    return DASH if v is None else f"{v:.2f}"


def _macro_row(label: str, macro: dict) -> list[str]:
    return [label] + [pct_ci(macro[m]["value"], macro[m]["ci"]) + f" (n={macro[m]['n_groups']})"
                      for m in ("f1_balanced", "f1", "recall", "fpr")]


def render_report(res: dict[str, Any]) -> str:
    """The Markdown report of one result."""
    mdl, suite, st = res["model"], res["suite"], res["settings"]
    tl = mdl["train_languages"]
    lines = [
        f"# Evaluation of `{mdl['name']}` on suite `{suite['name']}` v{suite['version']}",
        "",
        f"- model fingerprint `{mdl['fingerprint'] or DASH}`, threshold {st['threshold']:g} ({st['flag_rule']})",
        f"- training languages: {', '.join(tl) if tl else 'unknown'}; training sources: "
        f"{', '.join(mdl['train_sources']) if mdl['train_sources'] else 'unknown'}",
        f"- suite sha256 `{suite['sha256'][:12]}`, {res['timing']['n_items']} items, scored in "
        f"{res['timing']['seconds']:.0f} s wall / {res['timing']['cpu_seconds']:.0f} s CPU "
        f"({res['timing']['n_scored_now']} texts computed, the rest from the prediction cache); "
        f"crestguard {res['crestguard_version']}, {res['created']}",
        "",
        f"Scores are percentages. `[lo–hi]` is the {st['bootstrap']['level']:.0%} percentile bootstrap interval "
        f"({st['bootstrap']['n']} resamples). {DASH} means undefined (the reason is in `results.json` under `null`). "
        "F1 is the unsafe-class F1 at the set's own mix; on sets with no benign items it equals 2R/(1+R) and a model "
        "that flags everything scores 100, so read it beside the FPR of the benign sets. Balanced F1 re-weights "
        "benign items to the unsafe mass: 2R/(1+R+FPR).",
        "",
    ]
    lines += _headline_section(res.get("headline"), res.get("hate"))
    lines += ["## Benchmarks", ""]
    for section in ("english", "multilingual", "benign", "real_prompts", "hate", "response"):
        rows = [r for r in res["sets"] if r["section"] == section]
        if not rows:
            continue
        lines += [f"### {section.replace('_', ' ').capitalize()}", ""]
        lines += _table(
            ["set", "n", "unsafe", "benign", "F1", "CREST-BASE F1", "P", "R", "FPR", "AUROC", "AUPRC", "ECE"],
            ([r["name"], m["n"], m["n_unsafe"], m["n_safe"], pct_ci(m["f1"], r["ci"]["f1"]), _paper(r),
              pct(m["precision"]), pct_ci(m["recall"], r["ci"]["recall"]), pct_ci(m["fpr"], r["ci"]["fpr"]),
              pct(m["auroc"]), pct(m["auprc"]), pct(m["ece"])] for r in rows for m in [r["metrics"]]),
        )
    lines += ["## Macro averages over languages", "",
              "Languages are pooled over the sets marked `per_language` in the suite. In-domain (ID) = languages "
              "with unsafe training material.", ""]
    rows = [_macro_row("all languages", res["macro"])]
    dom = res["domains"]
    if "null" in dom:
        lines += _table(["", "balanced F1", "F1", "recall", "FPR"], rows) + [f"ID vs OOD: {dom['null']}.", ""]
    else:
        rows += [_macro_row(f"{d} ({_n(len(dom[d]['languages']), 'language')})", dom[d]["macro"])
                 for d in ("ID", "OOD")]
        gap = [_gap(dom, m) for m in ("f1_balanced", "f1", "recall", "fpr")]
        rows.append(["gap ID − OOD (points)"] + gap)
        lines += _table(["", "balanced F1", "F1", "recall", "FPR"], rows)
    lines += ["## Per cluster (the paper's Table 8)", ""]
    lines += _table(
        ["cluster", "languages", "unsafe", "benign", "balanced F1 (macro)", "recall (macro)", "FPR (macro)",
         "pooled F1"],
        ([c["cluster"], len(c["languages"]), c["metrics"]["n_unsafe"], c["metrics"]["n_safe"],
          pct_ci(c["macro"]["f1_balanced"]["value"], c["macro"]["f1_balanced"]["ci"]),
          pct(c["macro"]["recall"]["value"]), pct_ci(c["macro"]["fpr"]["value"], c["macro"]["fpr"]["ci"]),
          pct(c["metrics"]["f1"])] for c in res["clusters"]),
    )
    lines += ["## Per language", ""]
    lines += _table(
        ["lang", "name", "cluster", "domain", "unsafe", "benign", "recall", "FPR", "balanced F1", "F1", "AUROC"],
        ([r["lang"], r["name"] or DASH, r["cluster"] if r["cluster"] is not None else DASH, r["domain"] or DASH,
          m["n_unsafe"], m["n_safe"], pct(m["recall"]), pct(m["fpr"]), pct(m["f1_balanced"]), pct(m["f1"]),
          pct(m["auroc"])] for r in res["languages"] for m in [r["metrics"]]),
    )
    lines += _fpr_section(res["benign_fpr"])
    rel = res["reliability"]
    lines += ["## Calibration", "", f"Expected calibration error over all items: {pct(rel['ece'])} "
              f"({len(rel['bins'])} non-empty bins; see `reliability.png`).", ""]
    lines += ["## Benign items scored highest", "", "Text shown up to 200 characters.", ""]
    lines += _table(["score", "set", "lang", "form", "text"],
                    ([f"{t['score']:.3f}", t["set"], t["lang"], t["form"], _cell(t["text"])]
                     for t in res["top_false_positives"]))
    lines += ["## Plots", ""] + [f"![{title}]({name})" for name, title in PLOTS.items()] + [""]
    lines += ["## Left out or undefined", ""]
    for r in res["sets"]:
        notes = [f"left out ({k}): {v}" for k, v in r["dropped"].items()]
        by_reason: dict[str, list[str]] = {}
        for k, v in r["metrics"]["null"].items():
            by_reason.setdefault(v, []).append(k)
        notes += [reason if keys[0].startswith("_") else f"undefined ({reason}): {', '.join(keys)}"
                  for reason, keys in by_reason.items()]
        if notes:
            lines.append(f"- **{r['name']}**: " + "; ".join(notes))
    return "\n".join(lines) + "\n"


def _headline_section(hl: dict[str, Any] | None, hate: dict[str, Any] | None) -> list[str]:
    """The suite-v2 headline: recall at 5% FPR on real prompts, AUROC, real-prompt FPR, sources, hate."""
    if not hl or "null" in hl:
        return [f"Headline: {hl['null']}.", ""] if hl else []
    o, tgt = hl["overall"], pct(hl["target_fpr"], 0)
    rp = hl["real_prompts"]
    lines = [f"## Headline: recall at the threshold that flags {tgt}% of real user prompts", "",
             f"Real prompts: the benign items of {', '.join(hl['benign_sets'])} ({o['n_benign']} items, "
             f"{o['n_benign_languages']} languages; {hl['weighting']}). Unsafe: {', '.join(hl['unsafe_sets'])} "
             f"({o['n_unsafe']} items). Threshold {o['threshold']:.4f} flags {pct(o['benign_fpr'])}% of the real "
             f"prompts. At the model's own threshold {o['model_threshold']:g}: recall "
             f"{pct(o['recall_at_model_threshold'])}% with {pct(o['benign_fpr_at_model_threshold'])}% of the real "
             "prompts flagged (the dot in `tradeoff.png`).", ""]
    rows = [["all unsafe sets (pooled)", o["n_unsafe"], pct(o["recall"]), pct(o["auroc"])]]
    rows += [[name, b["n_unsafe"], pct(b["recall"]), pct(b["auroc"])] for name, b in hl["by_set"].items()]
    rows.append(["macro over languages", hl["macro_recall_at_overall"]["n_groups"],
                 pct(hl["macro_recall_at_overall"]["value"]), DASH])
    lines += _table(["unsafe items", "n", f"recall @ {tgt}% FPR", "AUROC vs real prompts"], rows)
    lines += [f"Per language: recall at the overall threshold, and at the language's own {tgt}% threshold where "
              f"it has enough real prompts; FPR on its real prompts at the model's own threshold "
              f"{rp['threshold']:g}.", ""]
    fpr_lang = rp["by_language"]
    lines += _table(["lang", "unsafe", "real prompts", "recall @ overall thr", f"recall @ own {tgt}% thr",
                     "AUROC", "FPR @ model thr"],
                    ([c, r["n_unsafe"], r["n_benign"], pct(r["recall_at_overall"]), pct(r["recall"]),
                      pct(r["auroc"]), pct(fpr_lang[c]["fpr"]) if c in fpr_lang else DASH]
                     for c, r in hl["by_language"].items()))
    m = rp["macro"]
    src = rp["by_source"]
    lines += [f"Benign FPR on real prompts at the model's threshold: **{pct_ci(m['value'], m['ci'])}** macro over "
              f"{m['n_groups']} languages ({pct(rp['pooled']['fpr'])} pooled over {rp['pooled']['n']}).", ""]
    lines += _table(["real-prompt sources", "sets", "prompts", "flagged", "FPR"],
                    ([label, ", ".join(src[k]["sets"]) or DASH, src[k]["n"], src[k]["fp"],
                      pct_ci(src[k]["fpr"], src[k]["ci"])]
                     for k, label in (("never_trained_on", "benign sources never trained on"),
                                      ("held_out_groups", "held-out groups of trainable sources"))))
    if hate and "null" not in hate:
        lines += ["### Hate speech (functional tests)", "",
                  f"F1 on hateful cases and FPR on the non-hateful contrast cases (counter-speech, negation, quoting, "
                  f"reclaimed slurs, ...) at the model's threshold; macro over {hate['macro']['n_languages']} "
                  f"languages: F1 {pct(hate['macro']['f1'])}, contrast FPR {pct(hate['macro']['contrast_fpr'])}.", ""]
        lines += _table(["lang", "hateful", "contrast cases", "F1", "recall", "contrast FPR", "AUROC"],
                        ([c, b["n_unsafe"], b["n_safe"], pct(b["f1"]), pct(b["recall"]), pct(b["contrast_fpr"]),
                          pct(b["auroc"])] for c, b in hate["by_language"].items()))
    return lines


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _gap(dom: dict, metric: str) -> str:
    a, b = dom["ID"]["macro"][metric]["value"], dom["OOD"]["macro"][metric]["value"]
    return DASH if a is None or b is None else f"{100 * (a - b):+.1f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fpr_section(bf: dict[str, Any]) -> list[str]:
    lines = ["## False positives on benign text", "",
             "All benign items of the suite, by the form heuristic of `crestguard.evaluation.textform` "
             "(question / command / statement / long passage), by length in characters, and by whether the "
             "model was trained on the item's source dataset.", ""]
    for title, key, order in (("form", "by_form", FORMS), ("length", "by_length", [b for b, _ in LENGTH_BUCKETS]),
                              ("source", "by_source", ("seen", "unseen"))):
        part = bf[key]
        if "null" in part and isinstance(part["null"], str):
            lines += [f"By {title}: {part['null']}.", ""]
            continue
        lines += _table([title, "benign items", "flagged", "FPR"],
                        ([k, part[k]["n"], part[k]["fp"], pct_ci(part[k]["fpr"], part[k]["ci"])] for k in order))
    lines += ["Recall on unsafe items by form: "
              + ", ".join(f"{f} {pct(bf['recall_by_form'][f])}" for f in FORMS), ""]
    return lines


def render_compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two results side by side (B − A in points) as Markdown; rows undefined in both are left out."""
    if a["suite"]["sha256"] != b["suite"]["sha256"]:
        note = (f"Warning: different suites ({a['suite']['name']} v{a['suite']['version']} vs "
                f"{b['suite']['name']} v{b['suite']['version']}): rows are matched by name.")
    else:
        note = f"Same suite: {a['suite']['name']} v{a['suite']['version']}."
    lines = [f"# `{a['model']['name']}` (A) vs `{b['model']['name']}` (B)", "", note, ""]
    for tag, res in (("A", a), ("B", b)):
        tl = res["model"]["train_languages"]
        lines.append(f"- {tag} in-domain languages: {', '.join(tl) if tl else 'unknown'}")
    lines += [""]
    ha, hb = _headline_numbers(a), _headline_numbers(b)
    if ha or hb:
        lines += ["## Headline (real user prompts)", ""]
        lines += _compare_table(["number"], ((k, "", ha.get(k), hb.get(k)) for k in dict.fromkeys([*ha, *hb])))
    lines += ["## Benchmarks", ""]
    sets_b = {r["name"]: r["metrics"] for r in b["sets"]}
    lines += _compare_table(["set"], ((r["name"], m, r["metrics"][m], sets_b.get(r["name"], {}).get(m))
                                      for r in a["sets"] for m in ("f1", "recall", "fpr")))
    lines += ["## Macro over languages", ""]
    scopes = [("all", a["macro"], b["macro"])]
    scopes += [(d, a["domains"][d]["macro"], b["domains"][d]["macro"]) for d in ("ID", "OOD")
               if d in a["domains"] and d in b["domains"]]
    lines += _compare_table(["languages"], ((scope, m, ma[m]["value"], mb[m]["value"])
                                            for scope, ma, mb in scopes for m in ("f1_balanced", "recall", "fpr")))
    lines += ["## Per cluster (macro)", ""]
    cb = {c["cluster"]: c["macro"] for c in b["clusters"]}
    lines += _compare_table(["cluster"], ((c["cluster"], m, c["macro"][m]["value"], cb[c["cluster"]][m]["value"])
                                          for c in a["clusters"] if c["cluster"] in cb
                                          for m in ("f1_balanced", "fpr")))
    lines += ["## Benign FPR by form", ""]
    fa, fb = a["benign_fpr"]["by_form"], b["benign_fpr"]["by_form"]
    lines += _compare_table(["form"], ((f, "fpr", fa[f]["fpr"], fb[f]["fpr"]) for f in FORMS))
    return "\n".join(lines) + "\n"


def _headline_numbers(res: dict[str, Any]) -> dict[str, float | None]:
    """The suite-v2 headline figures of one result by name (empty for results without them)."""
    hl = res.get("headline") or {}
    if "overall" not in hl:
        return {}
    tgt = pct(hl["target_fpr"], 0)
    rp = hl["real_prompts"]
    out = {f"recall @ {tgt}% real-prompt FPR, all unsafe sets": hl["overall"]["recall"],
           "AUROC unsafe vs real prompts": hl["overall"]["auroc"]}
    out |= {f"recall @ {tgt}% real-prompt FPR, {name}": b["recall"] for name, b in hl["by_set"].items()}
    out |= {"real-prompt FPR, macro over languages": rp["macro"]["value"],
            "real-prompt FPR, sources never trained on": rp["by_source"]["never_trained_on"]["fpr"],
            "real-prompt FPR, held-out groups": rp["by_source"]["held_out_groups"]["fpr"]}
    hate = res.get("hate") or {}
    if "macro" in hate:
        out |= {"hate F1, macro over languages": hate["macro"]["f1"],
                "hate contrast-case FPR, macro": hate["macro"]["contrast_fpr"]}
    return out


def _compare_table(first: list[str], rows: Iterable[tuple[Any, str, float | None, float | None]]) -> list[str]:
    return _table(first + ["metric", "A", "B", "B − A"],
                  ([key, m, pct(va), pct(vb), _delta(va, vb)] for key, m, va, vb in rows
                   if va is not None or vb is not None))


def _delta(a: float | None, b: float | None) -> str:
    return DASH if a is None or b is None else f"{100 * (b - a):+.1f}"
