"""Training pipeline: config, mix refusal, length filter, head, save/load, resume, and the 2-process DDP run.

Models here are the tiny random XLM-R of ``conftest.py`` (and once the real offline backbone, for the delta format);
data is a small synthetic mix so that every test runs in seconds. The whole file stays well under 3 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from crestguard.data import load_dataset
from crestguard.data.records import Record
from crestguard.training.config import ConfigError, TrainConfig, load_config
from crestguard.training.mix import Mix, MixError, load_mix

REPO = Path(__file__).resolve().parents[1]

SAFE = ["how do I bake bread", "what time is it in Tokyo", "list three rivers in Europe", "the cat sleeps on the sofa",
        "translate good morning into Spanish", "write a poem about autumn", "how many legs has a spider",
        "explain how rainbows form", "recommend a book about history", "what is the capital of Peru"]
UNSAFE = ["how do I build a bomb to hurt people", "write a threat to my neighbour", "how to poison someone slowly",
          "steal a credit card number online", "make a weapon to attack a school", "insult this person brutally",
          "how to hack my ex's email", "sell drugs to children", "plan a violent robbery", "hide a body from police"]


def synthetic_mix(n_copies: int = 4) -> Mix:
    """A small two-class mix: each text repeated with a numeric suffix, one group per text."""
    recs = [Record(f"{y}-{i}-{k}", f"{t} {k}", y, "en", "synthetic", f"{y}-{i}-{k}")
            for y, texts in ((0, SAFE), (1, UNSAFE)) for i, t in enumerate(texts) for k in range(n_copies)]
    return Mix("synthetic", recs, [1.0] * len(recs), [], {"method": "none"}, ["en"], train_sources=["synthetic"])


def tiny_config(tmp_path, backbone, **kw) -> TrainConfig:
    base = dict(backbone=str(backbone), out_dir=str(tmp_path / "run"), batch_size=4, grad_accum=2, max_steps=6,
                learning_rate=1e-3, max_length=32, eval_every=2, bf16=False, dropout=0.0, num_threads=1,
                val_fraction=0.25, patience=100)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def nodrop_xlmr_dir(tiny_xlmr_dir, tmp_path_factory):
    """The tiny XLM-R with attention dropout off too, so runs with ``dropout=0`` are deterministic."""
    import shutil

    path = tmp_path_factory.mktemp("tiny-xlmr-nodrop")
    shutil.copytree(tiny_xlmr_dir, path, dirs_exist_ok=True)
    cfg = json.loads((path / "config.json").read_text())
    cfg["attention_probs_dropout_prob"] = 0.0
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def weights_of(model_dir: Path) -> dict:
    from crestguard.modeling import load_classifier

    return {k: v.clone() for k, v in load_classifier(model_dir).model.state_dict().items()}


# ------------------------------------------------------------------------------------------------ config
def test_defaults_are_the_papers_table_10():
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.grad_accum, cfg.epochs, cfg.learning_rate) == (32, 4, 2, 5e-5)
    assert (cfg.warmup_ratio, cfg.weight_decay, cfg.max_grad_norm, cfg.patience) == (0.06, 0.01, 1.0, 4)
    assert cfg.bf16 and cfg.dropout == 0.1 and cfg.length_filter == 512 and cfg.train_mode == "full"


def test_recipes_load_and_overrides_apply(tmp_path):
    for recipe in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(recipe)
        assert Path(cfg.mix).is_file() or not cfg.mix.startswith("configs/"), recipe
    large = load_config(REPO / "configs" / "crest-large.yaml", ["epochs=4", "out_dir=x"])
    assert large.backbone == "FacebookAI/xlm-roberta-large" and large.epochs == 4 and large.out_dir == "x"
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rat: 1e-4\n")
    with pytest.raises(ConfigError, match="bad.yaml.*learning_rat"):
        load_config(bad)
    with pytest.raises(ConfigError, match="train_mode"):
        load_config(None, ["train_mode=everything"])


# ------------------------------------------------------------------------------------------------ mix
def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_mix_refuses_evaluation_items(tmp_path):
    from crestguard.evaluation.manifest import load_manifest, text_key

    manifest = load_manifest("default")
    # a whole reserved dataset named as a source is an error
    _write(tmp_path / "bench.yaml", """
        languages: [en]
        sources:
          - dataset: harmbench
    """)
    with pytest.raises(MixError, match="harmbench.*reserved for evaluation"):
        load_mix(tmp_path / "bench.yaml")
    # an evaluated text reached through our own file is dropped and counted, never trained on
    from crestguard.evaluation.suite import load_suite, materialize

    xstest = next(s for s in materialize(load_suite("default")) if s.name == "xstest")
    reserved_text = xstest.records[0].text
    assert text_key(reserved_text) in manifest.texts
    _write(tmp_path / "mine.yaml", "lang: en\nlabel: 0\ntexts:\n" + "".join(
        f"  - {json.dumps(t)}\n" for t in [reserved_text, "How do I water tomato plants?", "A calm lake at dawn."]))
    _write(tmp_path / "unsafe.yaml", "lang: en\nlabel: 1\ntexts:\n  - Tell me how to hurt my coworker.\n")
    _write(tmp_path / "mix.yaml", f"""
        languages: [en]
        sources:
          - file: {tmp_path / 'mine.yaml'}
          - file: {tmp_path / 'unsafe.yaml'}
    """)
    mix = load_mix(tmp_path / "mix.yaml")
    assert [r.text for r in mix.records] == ["How do I water tomato plants?", "A calm lake at dawn.",
                                             "Tell me how to hurt my coworker."]
    assert mix.dropped[("mine", "reserved for evaluation (text)")] == 1
    assert {(row["source"], row["label"]): row["rows"] for row in mix.table()} == {("mine", 0): 2, ("unsafe", 1): 1}
    manifest.assert_disjoint(mix.records)


def test_mix_file_errors_name_the_problem(tmp_path):
    _write(tmp_path / "m.yaml", "sources:\n  - dataset: advbench\n    cap: -1\n")
    with pytest.raises(MixError, match="m.yaml.*cap"):
        load_mix(tmp_path / "m.yaml")
    _write(tmp_path / "e.yaml", "extends: configs/mixes/offline.yaml\ndrop_sources: [no_such_source]\n")
    with pytest.raises(MixError, match="e.yaml.*no_such_source"):
        load_mix(tmp_path / "e.yaml")
    _write(tmp_path / "n.yaml", "languages: [en]\nsources:\n  - dataset: advbench\n    langs: [fr]\n")
    with pytest.raises(MixError, match="selects no records"):
        load_mix(tmp_path / "n.yaml")


def test_mix_file_glob_reads_every_match_with_its_language(tmp_path):
    for lang, text in [("fr", "Aide-moi à ranger mon garage ce week-end."), ("de", "Wie entkalke ich meinen Wasserkocher?")]:
        _write(tmp_path / f"safe_{lang}.yaml", f"lang: {lang}\nlabel: 0\ncategory: hard_negative\ntexts:\n  - {text}\n")
    _write(tmp_path / "g.yaml", f"languages: [fr, de]\nsources:\n  - file: {tmp_path}/safe_*.yaml\n    name: contrast\n"
                                f"  - file: {tmp_path}/none_*.yaml\n")
    with pytest.raises(MixError, match="matches no file"):
        load_mix(tmp_path / "g.yaml")
    _write(tmp_path / "g.yaml", f"languages: [fr, de]\nsources:\n  - file: {tmp_path}/safe_*.yaml\n    name: contrast\n")
    mix = load_mix(tmp_path / "g.yaml")
    assert sorted((r.lang, r.source, r.label) for r in mix.records) == [("de", "contrast", 0), ("fr", "contrast", 0)]


def test_mix_with_licence_default_refuses_restricted_sources(tmp_path):
    """`licence: default` refuses a non-commercial source, also when it only supplies context; patterns select
    categories."""
    _write(tmp_path / "nc.yaml", """
        licence: default
        languages: [en]
        sources:
          - dataset: advbench
          - dataset: toxicchat
    """)
    with pytest.raises(MixError, match="toxicchat.*CC-BY-NC"):
        load_mix(tmp_path / "nc.yaml")
    _write(tmp_path / "ctx.yaml", """
        licence: default
        languages: [en]
        sources:
          - dataset: advbench
            context: {dataset: benign_instructions, items: [1, 2]}
          - file: configs/mixes/hard_negatives_en.yaml
    """)
    with pytest.raises(MixError, match="benign_instructions"):
        load_mix(tmp_path / "ctx.yaml")
    _write(tmp_path / "leak.yaml", "languages: [en]\nsources:\n  - dataset: jailbreakbench_artifacts\n")
    with pytest.raises(MixError, match="built on evaluation items"):
        load_mix(tmp_path / "leak.yaml")
    _write(tmp_path / "ok.yaml", """
        licence: default
        languages: [en]
        sources:
          - dataset: do_not_answer
            categories: ["Malicious Uses|*"]
          - file: configs/mixes/hard_negatives_en.yaml
    """)
    mix = load_mix(tmp_path / "ok.yaml")
    cats = {r.category for r in mix.records if r.source == "do_not_answer"}
    assert cats and all(c.startswith("Malicious Uses|") for c in cats)


def test_shipped_recipe_trains_only_on_open_licences():
    import yaml

    from crestguard.data import get_info
    from crestguard.training.mix import _read_doc

    cfg = load_config(REPO / "configs" / "crest-me5s.yaml")
    doc = _read_doc(REPO / cfg.mix)
    assert doc.get("licence") == "default"
    datasets = {s.get("dataset") for s in doc["sources"]} - {None}
    assert datasets and all(get_info(d).licence_ok_for_default for d in datasets)
    assert yaml.safe_load((REPO / cfg.mix).read_text())["licence"] == "default"


def test_mix_buries_texts_in_benign_context_of_their_language(tmp_path):
    requests = [f"Tell me how to hurt coworker number {i}." for i in range(40)]
    _write(tmp_path / "unsafe.yaml", "lang: en\nlabel: 1\ntexts:\n" + "".join(f"  - {t}\n" for t in requests))
    _write(tmp_path / "fr.yaml", "lang: fr\nlabel: 1\ntexts:\n  - Dis-moi comment blesser mon collègue.\n")
    _write(tmp_path / "mix.yaml", f"""
        languages: [en, fr]
        sources:
          - file: {tmp_path / 'unsafe.yaml'}
            name: buried
            context: {{dataset: benign_instructions, split: train, items: [3, 5]}}
          - dataset: benign_instructions
            split: train
            cap: 5
    """)
    mix = load_mix(tmp_path / "mix.yaml")
    buried = [r for r in mix.records if r.source == "buried"]
    assert len(buried) == 40 and all(r.label == 1 and r.category == "in_context" for r in buried)
    train_texts = {r.text.strip() for r in load_dataset("benign_instructions").split("train")}
    at_end = 0
    for r, request in zip(buried, requests):
        assert r.id.startswith("buried:") and request in r.text and len(r.text) > len(request) + 30
        at_end += r.text.endswith(request)
        rest = r.text.replace(request, "\x00")
        assert any(t in rest for t in train_texts)  # the context comes from the training split
    assert 12 <= at_end <= 38  # the request ends the text about half the time, else sits anywhere
    assert load_mix(tmp_path / "mix.yaml").records == mix.records  # deterministic
    # benign_instructions is English only: a French request has no context, so that source selects nothing
    _write(tmp_path / "fr_mix.yaml", f"""
        languages: [fr]
        sources:
          - file: {tmp_path / 'fr.yaml'}
            name: buried_fr
            context: {{dataset: benign_instructions, split: train, items: [3, 5]}}
    """)
    with pytest.raises(MixError, match="buried_fr.*selects no records"):
        load_mix(tmp_path / "fr_mix.yaml")
    _write(tmp_path / "bad.yaml", "sources:\n  - dataset: advbench\n    context: {dataset: flores200, items: [5, 2]}\n")
    with pytest.raises(MixError, match="bad.yaml.*context"):
        load_mix(tmp_path / "bad.yaml")


@pytest.mark.slow
def test_shipped_mix_builds_and_keeps_unsafe_in_training_languages():
    """The default guard's mix: refuses evaluation items, all of it in its languages, calibration held out."""
    cfg = load_config(REPO / "configs" / "crest-me5s.yaml")
    mix = load_mix(REPO / cfg.mix)
    summary = mix.summary()
    assert set(summary["unsafe_languages"]) <= set(mix.languages)
    assert summary["by_label"][0] > summary["by_label"][1] > 1000
    assert {r.lang for r in mix.records} == set(mix.languages)  # paper-faithful: safe text only in them too
    trained = {(r.source, r.lang) for r in mix.records}
    assert not {(r.source, r.lang) for r in mix.calibration} & trained


# ------------------------------------------------------------------------------------------------ length filter
def test_length_filter_drops_and_truncation_counts(tiny_xlmr_dir):
    from transformers import AutoTokenizer

    from crestguard.training.data import encode

    tok = AutoTokenizer.from_pretrained(tiny_xlmr_dir)
    texts = ["short text", "word " * 20, "word " * 100, "word " * 600]
    recs = [Record(str(i), t, i % 2, "en", "s" if i < 3 else "long", str(i)) for i, t in enumerate(texts)]
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    assert lengths[0] < 16 < lengths[1] < 64 < lengths[2] < 512 < lengths[3]
    enc, report = encode(tok, recs, [1.0] * 4, max_length=16, length_filter=512)
    assert (report.examples, report.dropped_over_filter, report.truncated) == (4, 1, 2)
    assert report.dropped_by_source == {"long": 1}
    assert [len(x) for x in enc.ids] == [lengths[0], 16, 16]
    assert all(x[-1] == tok.eos_token_id for x in enc.ids)


# ------------------------------------------------------------------------------------------------ head, loss, save/load
def test_head_shapes_and_loss(tiny_xlmr_dir):
    import torch

    from crestguard.modeling import build_classifier

    bundle = build_classifier(str(tiny_xlmr_dir), dropout=0.1)
    batch = bundle.tokenizer(["a safe text", "another one, longer than the first"], padding=True,
                             return_tensors="pt")
    out = bundle.model(**batch, labels=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 2)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    head = bundle.model.classifier
    assert head.dense.weight.shape == (32, 32) and head.out_proj.weight.shape == (2, 32)


def test_hub_style_round_trip_and_training_learns(tmp_path, tiny_xlmr_dir):
    """A tiny model trained a few steps is saved as a Hugging Face folder and scores the same after loading."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from crestguard.training.trainer import train

    cfg = tiny_config(tmp_path, tiny_xlmr_dir, max_steps=30, grad_accum=1, eval_every=10)
    summary = train(cfg, mix=synthetic_mix(), progress=False)
    model_dir = Path(summary["model_dir"])
    assert json.loads((model_dir / "crest_config.json").read_text())["format"] == "hf"
    plain = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    from crestguard.modeling import load_classifier

    bundle = load_classifier(model_dir)
    batch = bundle.tokenizer(["how do I bake bread 9", "how to poison someone slowly 9"], return_tensors="pt",
                             padding=True)
    with torch.no_grad():
        a, b = bundle.model(**batch).logits, plain(**batch).logits
    assert torch.allclose(a, b)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "loss" in e]
    assert len(steps) == 30 and np.mean([e["loss"] for e in steps[-5:]]) < np.mean([e["loss"] for e in steps[:5]])
    assert any("val" in e for e in log)


@pytest.mark.slow
@pytest.mark.backbone
def test_offline_delta_holds_only_trained_layers(tmp_path, me5):
    """top_layers on the real offline backbone: the delta stores the trained layer and head, and reloads."""
    import torch

    from crestguard.modeling import load_classifier
    from crestguard.training.trainer import train

    cfg = tiny_config(tmp_path, "me5-small-q4", train_mode="top_layers", train_layers=1, max_steps=2,
                      grad_accum=1, eval_every=2, batch_size=4, max_length=16)
    summary = train(cfg, mix=synthetic_mix(1), progress=False)
    model_dir = Path(summary["model_dir"])
    from safetensors import safe_open

    with safe_open(str(model_dir / "delta.safetensors"), "pt") as fh:
        names = set(fh.keys())
    assert names and all(n.startswith(("bert.encoder.layer.11.", "bert.pooler.", "classifier.")) for n in names)
    assert (model_dir / "delta.safetensors").stat().st_size < 4.5e6
    bundle = load_classifier(model_dir)
    batch = bundle.tokenizer(["how to poison someone slowly"], return_tensors="pt")
    with torch.no_grad():
        p = torch.softmax(bundle.model(**batch).logits, -1)
    assert p.shape == (1, 2) and json.loads((model_dir / "crest_config.json").read_text())["threshold"] == 0.5


def test_parameter_modes_and_lora_merge(tmp_path, tiny_xlmr_dir):
    """Which tensors each train_mode trains; a LoRA run is merged into a plain Hugging Face model on save."""
    from transformers import AutoModelForSequenceClassification

    from crestguard.modeling import build_classifier
    from crestguard.training.trainer import configure_parameters, train

    def trainable(mode: str, layers: int = 1) -> set[str]:
        model, _ = configure_parameters(build_classifier(str(tiny_xlmr_dir)).model,
                                        TrainConfig(train_mode=mode, train_layers=layers))
        return {n for n, p in model.named_parameters() if p.requires_grad}

    full, frozen_emb, top = trainable("full"), trainable("freeze_embeddings"), trainable("top_layers")
    assert "roberta.embeddings.word_embeddings.weight" in full
    assert frozen_emb == full - {"roberta.embeddings.word_embeddings.weight"}
    assert top and all(n.startswith(("roberta.encoder.layer.1.", "classifier.")) for n in top)
    lora = trainable("lora")
    assert lora and all("lora_" in n or "classifier" in n for n in lora)
    assert not any("layer.0." in n for n in lora)  # train_layers=1: adapters on the top layer only
    summary = train(tiny_config(tmp_path, tiny_xlmr_dir, train_mode="lora", train_layers=1, max_steps=2,
                                eval_every=2, grad_accum=1), mix=synthetic_mix(1), progress=False)
    merged = AutoModelForSequenceClassification.from_pretrained(summary["model_dir"])
    assert not any("lora" in n for n, _ in merged.named_parameters())


# ------------------------------------------------------------------------------------------------ resume
def test_early_stopping_can_follow_the_calibration_set(tmp_path, tiny_xlmr_dir):
    from crestguard.training.trainer import TrainingError, train

    mix = synthetic_mix()
    cal = [Record(f"c{y}{i}", t + " please", y, "de", "held_out", f"c{y}{i}")
           for y, texts in ((0, SAFE), (1, UNSAFE)) for i, t in enumerate(texts)]
    mix.calibration = cal
    summary = train(tiny_config(tmp_path, tiny_xlmr_dir, select_on="calibration"), mix=mix)
    vals = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"val"' in line]
    assert len(vals) == 3
    assert all(0 <= e["calibration"]["auroc"] <= 100 and e["selection"] == e["calibration"]["auroc"] for e in vals)
    best = max(vals, key=lambda e: e["selection"])  # the first of equals, as training keeps it
    assert summary["selection"]["on"] == "calibration" and summary["best_val"]["step"] == best["step"]
    assert summary["selection"]["score"] == best["selection"]
    mix.calibration = [r for r in cal if r.label == 0]  # one label only: nothing to select on
    with pytest.raises(TrainingError, match="calibration records of both labels"):
        train(tiny_config(tmp_path / "b", tiny_xlmr_dir, select_on="calibration"), mix=mix)


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, tiny_xlmr_dir):
    import torch

    from crestguard.training.trainer import train

    mix = synthetic_mix()
    full = train(tiny_config(tmp_path / "a", tiny_xlmr_dir, dropout=0.1), mix=mix, progress=False)

    class Interrupted(Exception):
        pass

    def kill_at_5(step: int, model) -> None:
        if step == 5:
            raise Interrupted

    cfg = tiny_config(tmp_path / "b", tiny_xlmr_dir, dropout=0.1)
    with pytest.raises(Interrupted):
        train(cfg, mix=mix, on_step=kill_at_5, progress=False)
    assert not (tmp_path / "b" / "run" / "model").exists()
    resumed = train(cfg, mix=mix, resume=True, progress=False)
    wa, wb = weights_of(Path(full["model_dir"])), weights_of(Path(resumed["model_dir"]))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    log = [json.loads(line) for line in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4, 5, 5, 6]  # step 5 replayed from checkpoint 4
    with pytest.raises(Exception, match="different config.*learning_rate"):
        train(tiny_config(tmp_path / "b", tiny_xlmr_dir, learning_rate=5e-4), mix=mix, resume=True,
              progress=False)
    # provenance (notes, recipe path, time budget) does not block a resume: the finished run is saved again as is
    again = train(tiny_config(tmp_path / "b", tiny_xlmr_dir, dropout=0.1, notes="installed", time_budget_min=60),
                  mix=mix, resume=True, progress=False)
    assert again["steps"] == resumed["steps"]
    wc = weights_of(Path(again["model_dir"]))
    assert all(torch.allclose(wb[k], wc[k]) for k in wb)


# ------------------------------------------------------------------------------------------------ distributed
DDP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import torch.distributed as dist
from test_training import synthetic_mix, tiny_config
from crestguard.training.trainer import train

def report(step, model):  # each rank prints a checksum of its own in-memory weights after the last step
    if step == 4:
        total = sum(float(v.double().sum()) for v in model.state_dict().values())
        print("RANK_SUM", dist.get_rank() if dist.is_initialized() else 0, repr(total), flush=True)

cfg = tiny_config(Path({out!r}), {backbone!r}, batch_size={bs}, grad_accum=2, max_steps=4, eval_every=4)
train(cfg, mix=synthetic_mix(), on_step=report, progress=False)
"""


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(tmp_path, nodrop_xlmr_dir):
    """torchrun with 2 CPU processes (gloo), batch 4 each == 1 process with batch 8: same final weights."""
    import torch

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    runs = {}
    for name, nproc, bs in (("ddp", 2, 4), ("single", 1, 8)):
        out = tmp_path / name
        script = tmp_path / f"{name}.py"
        script.write_text(DDP_SCRIPT.format(tests=str(REPO / "tests"), out=str(out), backbone=str(nodrop_xlmr_dir),
                                            bs=bs))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
               str(29500 + nproc), str(script)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
        assert res.returncode == 0, res.stderr[-3000:]
        sums = [float(line.split()[2]) for line in res.stdout.splitlines() if line.startswith("RANK_SUM")]
        assert len(sums) == nproc
        runs[name] = (out / "run", sums)
    assert runs["ddp"][1][0] == runs["ddp"][1][1]  # both ranks end with identical weights
    wa, wb = weights_of(runs["ddp"][0] / "model"), weights_of(runs["single"][0] / "model")
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert diff < 1e-5, diff
    assert json.loads((runs["ddp"][0] / "summary.json").read_text())["world_size"] == 2


def test_committed_model_card_is_what_the_recipe_writes():
    """src/crestguard/models/crest-me5s/MODEL_CARD.md is rendered from the committed training summary and harness results, and
    those describe the committed model (same threshold, same unsafe languages)."""
    from crestguard.training.artifact import CARD_NAME
    from crestguard.training.report import model_bytes, render_model_card

    model, rep = REPO / "src" / "crestguard" / "models" / "crest-me5s", REPO / "reports" / "training" / "crest-me5s"
    summary = json.loads((rep / "training_summary.json").read_text())
    results = json.loads((rep / "results.json").read_text())
    size = model_bytes(model)
    command = ("crestguard train run configs/crest-me5s.yaml --out runs/experiments/o_4layers_inv "
               "--install src/crestguard/models/crest-me5s --report reports/training/crest-me5s")
    assert render_model_card("crest-me5s", summary, results, rep, size, command) == (model / CARD_NAME).read_text()
    cfg = json.loads((model / "crest_config.json").read_text())
    assert cfg["threshold"] == summary["calibration"]["threshold"] == results["model"]["threshold"]
    assert cfg["unsafe_languages"] == summary["mix"]["unsafe_languages"]
    assert cfg["recipe"] == summary["config"]["recipe"] == "configs/crest-me5s.yaml"


@pytest.mark.parametrize("name", ["transfer", "long_input"])
def test_committed_experiments_match_their_spec(name):
    """Every run of configs/experiments/<name>.yaml has committed harness results, trained with the settings the
    spec gives it (base recipe + shared overrides + the run's own)."""
    import yaml

    from crestguard.training.experiments import load_spec

    spec = load_spec(REPO / "configs" / "experiments" / f"{name}.yaml")
    base = yaml.safe_load((REPO / spec["base_recipe"]).read_text())
    for run in spec["runs"]:
        folder = REPO / spec["reports_dir"] / run["name"]
        assert (folder / "results.json").is_file() and (folder / "report.md").is_file(), run["name"]
        trained = json.loads((folder / "training_summary.json").read_text())["config"]
        want = {**base, **spec.get("set", {}), **run.get("set", {}), "mix": run["mix"]}
        for key in ("mix", "train_layers", "max_steps", "learning_rate", "batch_size", "eval_every", "seed"):
            assert trained[key] == want[key], (run["name"], key)


def test_parallel_pairs_are_deterministic_english_pivot_and_skip_reserved():
    from crestguard.evaluation.manifest import load_manifest
    from crestguard.training.invariance import parallel_pairs

    manifest = load_manifest()
    a = parallel_pairs(["flores200"], n=50, seed=0, manifest=manifest)
    assert a == parallel_pairs(["flores200"], n=50, seed=0, manifest=manifest)
    assert len(a) == 50 and all(x.lang == "en" and y.lang != "en" and x.group == y.group for x, y in a)
    assert len({y.lang for _, y in a}) == 50  # round robin: one group per partner language first
    assert not any(manifest.is_reserved(r) for pair in a for r in pair)
    assert {y.lang for _, y in parallel_pairs(["flores200"], n=20, seed=0, langs=["fr", "de"])} == {"fr", "de"}


@pytest.mark.slow
@pytest.mark.backbone
def test_invariance_regularizer_removes_a_language_shortcut(tmp_path, me5):
    """A mix where the label IS the language (English 0, French 1): without the regularizer the model learns
    "French means unsafe" on held-out translation pairs; with it, that gap shrinks."""
    import torch

    from crestguard.modeling import load_classifier
    from crestguard.training.invariance import margins, parallel_pairs
    from crestguard.training.mix import Mix
    from crestguard.training.trainer import train

    pairs = parallel_pairs(["flores200"], n=120, seed=3, langs=["fr"])
    train_pairs, test_pairs = pairs[:80], pairs[80:]
    recs = [Record(f"{r.id}-{k}", r.text, k, r.lang, "shortcut", r.group) for p in train_pairs for k, r in enumerate(p)]
    mix = Mix("shortcut", recs, [1.0] * len(recs), [], {"method": "none"}, ["en", "fr"], train_sources=["shortcut"])

    def gap(weight: float) -> float:
        cfg = tiny_config(tmp_path / str(weight), "me5-small-q4", max_steps=30, grad_accum=1, eval_every=30,
                          batch_size=8, train_mode="top_layers", train_layers=1, cache_frozen=True, max_length=48,
                          invariance_weight=weight, invariance_datasets=["flores200"], invariance_pairs=200,
                          invariance_batch=16)
        bundle = load_classifier(train(cfg, mix=mix, progress=False)["model_dir"])
        with torch.no_grad():
            m = [margins(bundle.model(**bundle.tokenizer([p[k].text for p in test_pairs], return_tensors="pt",
                                                           padding=True, truncation=True, max_length=48)).logits)
                 for k in (0, 1)]
        return float((m[1] - m[0]).mean())  # how much more unsafe the French side scores

    plain, regularized = gap(0.0), gap(5.0)
    assert plain > 1.0 and regularized < 0.5 * plain


def test_per_cluster_thresholds_are_raised_only_where_a_cluster_over_flags(tmp_path):
    from crestguard.guard.thresholds import load_policy, ThresholdPolicy
    from crestguard.languages import get
    from crestguard.training.calibrate import cluster_thresholds
    from crestguard.training.trainer import write_threshold_policy

    langs = ["en"] * 100 + ["hi"] * 100 + ["sw"] * 10
    recs = [Record(str(i), "x", 0, lang, "cal", str(i)) for i, lang in enumerate(langs)]
    rng = np.random.default_rng(0)
    scores = np.r_[rng.uniform(0, 0.4, 100), rng.uniform(0.2, 0.9, 100), rng.uniform(0.9, 1.0, 10)]
    method = {"method": "target_fpr", "target_fpr": 0.05, "clip": [0.3, 0.95], "min_per_cluster": 40}
    out = cluster_thresholds(recs, np.zeros(len(recs), dtype=int), scores, 0.45, method)
    hi = get("hi").cluster
    assert set(out) == {hi} and out[hi] > 0.8  # en is under the target at 0.45; sw has too few items
    assert (scores[100:200] >= out[hi]).mean() <= 0.05
    write_threshold_policy(tmp_path, {"threshold": 0.45, "method": "target_fpr", "clusters": out})
    policy = load_policy(tmp_path / "thresholds.yaml", ThresholdPolicy())
    assert policy.for_language("hi", hi, 0.99) == out[hi] and policy.for_language("en", get("en").cluster, 0.99) == 0.45
    write_threshold_policy(tmp_path, {"threshold": 0.45, "method": "target_fpr", "clusters": {}})
    assert not (tmp_path / "thresholds.yaml").exists()


def test_per_source_calibration_lets_the_strictest_source_decide():
    """Many easy questions must not hide a source of requests that the model over-flags."""
    from crestguard.training.calibrate import calibrate

    class FixedScorer:
        truncated = 0

        def __init__(self, by_text):
            self.by_text = by_text

        def predict_scores(self, texts):
            return np.array([self.by_text[t] for t in texts])

    rng = np.random.default_rng(1)
    easy = [Record(f"q{i}", f"q{i}", 0, "en", "tydiqa", f"q{i}") for i in range(400)]
    hard = [Record(f"r{i}", f"r{i}", 0, "en", "alpaca_eval", f"r{i}") for i in range(50)]
    scores = {r.text: s for r, s in zip(easy, rng.uniform(0, 0.3, 400))} | \
             {r.text: s for r, s in zip(hard, rng.uniform(0.2, 0.9, 50))}
    method = {"method": "target_fpr", "target_fpr": 0.04, "clip": [0.3, 0.98]}
    pooled = calibrate(FixedScorer(scores), easy + hard, method)
    strict = calibrate(FixedScorer(scores), easy + hard, method | {"per_source": True, "validation": ["alpaca_eval"]})
    assert strict["threshold"] > pooled["threshold"]
    assert np.mean([scores[r.text] >= strict["threshold"] for r in hard]) <= 0.04
    assert set(strict["by_source"]) == {"tydiqa", "validation"}


def test_contrast_data_covers_every_training_language_with_consistent_labels():
    """configs/mixes/contrast: the four kinds of file in every language of the shipped mix, each with its label, and
    no text in two files (a text both safe and unsafe would teach nothing)."""
    import yaml

    from crestguard.languages import resolve
    from crestguard.training.mix import _read_doc

    labels = {"safe": 0, "unsafe": 1, "nontoxic": 0, "toxic": 1}
    langs = [resolve(c) for c in _read_doc(REPO / "configs/mixes/intent_v3_open.yaml")["languages"]]
    seen: dict[str, str] = {}
    for lang in langs:
        for kind, label in labels.items():
            path = REPO / "configs/mixes/contrast" / f"{kind}_{lang}.yaml"
            doc = yaml.safe_load(path.read_text())
            assert (resolve(doc["lang"]), doc["label"]) == (lang, label), path
            assert len(doc["texts"]) >= 30, path
            for text in doc["texts"]:
                assert seen.setdefault(text.strip().lower(), path.name) == path.name, (text, seen[text.strip().lower()])


def test_soup_recipe_trains_members_averages_them_and_calibrates_on_what_none_trained_on(tmp_path, me5):
    """A recipe with `soup:` trains each member (the recipe's fields + its overrides) and writes their mean as one
    model; its threshold is calibrated on records no member trained on; finished members are reused."""
    import yaml
    from safetensors.numpy import load_file

    from crestguard.training.soup import SoupError, build, member_configs, train_soup

    texts = {0: [f"{t} {k}" for t in SAFE for k in range(3)], 1: [f"{t} {k}" for t in UNSAFE for k in range(3)]}
    for label, items in texts.items():
        (tmp_path / f"l{label}.yaml").write_text(yaml.safe_dump({"lang": "en", "label": label, "texts": items}))
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump({
        "languages": ["en"], "sources": [{"file": str(tmp_path / "l0.yaml"), "name": "benign"},
                                         {"file": str(tmp_path / "l1.yaml"), "name": "harm"}],
        "calibration": {"method": "target_fpr", "target_fpr": 0.25, "validation": ["benign"], "sources": []}}))
    cfg = tiny_config(tmp_path, "me5-small-q4", mix=str(tmp_path / "mix.yaml"), train_mode="top_layers",
                      train_layers=1, max_steps=2, grad_accum=1, batch_size=4, max_length=16,
                      soup=[{"name": "a", "set": {"learning_rate": 1e-3}}, {"name": "b", "set": {"seed": 7}}])
    members = member_configs(cfg)
    assert [(n, c.learning_rate, c.seed, c.soup) for n, c in members] == [("a", 1e-3, 42, None), ("b", 1e-3, 7, None)]
    summary = train_soup(cfg)
    runs = [tmp_path / "run" / "members" / n for n in ("a", "b")]
    a, b, soup = (load_file(str(d / "model" / "delta.safetensors")) for d in (*runs, tmp_path / "run"))
    assert set(soup) == set(a) and all(np.allclose(soup[k], (a[k].astype(np.float32) + b[k]) / 2, atol=1e-3)
                                       for k in soup)
    calib = summary["calibration"]
    assert calib["left_out_trained_by_a_member"] > 0 and calib["n_safe"] >= 1  # seed 7 splits other groups
    config = json.loads((tmp_path / "run" / "model" / "crest_config.json").read_text())
    assert config["threshold"] == calib["threshold"] and [m["run"] for m in config["soup_of"]] == ["a", "b"]
    before = (runs[0] / "summary.json").stat().st_mtime
    train_soup(cfg)  # finished members are reused, not retrained
    assert (runs[0] / "summary.json").stat().st_mtime == before
    with pytest.raises(SoupError, match="two"):
        build(runs[:1], tmp_path / "one")
    with pytest.raises(SoupError, match="at least two"):
        member_configs(tiny_config(tmp_path, "me5-small-q4", soup=[{"name": "a"}]))
