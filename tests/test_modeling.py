"""The classifier head and both save formats (offline delta, Hugging Face folder)."""

from __future__ import annotations

import torch

from crestguard.modeling import CONFIG_NAME, DELTA_NAME, build_classifier, load_classifier, save_classifier


def _logits(bundle, texts):
    enc = bundle.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return bundle.model(**enc).logits


def test_head_shape_and_paper_dropout():
    bundle = build_classifier("me5-small-q4")
    assert bundle.model.config.num_labels == 2
    assert _logits(bundle, ["a", "bb b"]).shape == (2, 2)
    # the paper's first dropout is active in training mode only
    bundle.model.train()
    enc = bundle.tokenizer(["same text"], return_tensors="pt")
    torch.manual_seed(0)
    a = bundle.model(**enc).logits
    b = bundle.model(**enc).logits
    assert not torch.allclose(a, b)


def test_offline_delta_round_trip(tmp_path):
    bundle = build_classifier("me5-small-q4")
    with torch.no_grad():  # "train" the top layer and the head
        top = bundle.model.bert.encoder.layer[-1].output.dense.weight
        top.add_(0.01 * torch.randn_like(top))
    before = _logits(bundle.model.eval() and bundle, ["How do I make a bomb?", "What is the capital of France?"])
    out = save_classifier(bundle, tmp_path / "clf")
    assert (out / DELTA_NAME).stat().st_size < 5_000_000  # only the changed layer + head, in fp16
    loaded = load_classifier(out)
    assert loaded.meta["format"] == "delta" and loaded.meta["delta_tensors"] == 5
    after = _logits(loaded, ["How do I make a bomb?", "What is the capital of France?"])
    torch.testing.assert_close(before, after, atol=2e-2, rtol=0)
    assert (out / CONFIG_NAME).is_file()


def test_hub_format_loads_with_auto_class(tmp_path, tiny_xlmr_dir):
    from transformers import AutoModelForSequenceClassification

    bundle = build_classifier(str(tiny_xlmr_dir))
    assert type(bundle.model).__name__ == "XLMRobertaForSequenceClassification"
    bundle.model.eval()
    before = _logits(bundle, ["hello", "hola amigo"])
    out = save_classifier(bundle, tmp_path / "clf")
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    enc = bundle.tokenizer(["hello", "hola amigo"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(plain(**enc).logits, before)
    torch.testing.assert_close(_logits(load_classifier(out), ["hello", "hola amigo"]), before)
