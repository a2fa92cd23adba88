"""``crestguard export hf``: the folder loads with plain transformers and gives the guard's scores."""

from __future__ import annotations

import numpy as np
import pytest

from crestguard.guard import GuardError, load_guard
from crestguard.guard.guard import resolve_model_dir

try:
    resolve_model_dir("crest-me5s")
except GuardError as exc:  # pragma: no cover - only before the model is installed
    pytest.skip(f"no default model: {exc}", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.backbone]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    from typer.testing import CliRunner

    from crestguard.cli import app

    out = tmp_path_factory.mktemp("hf") / "crest-me5s-hf"
    res = CliRunner().invoke(app, ["export", "hf", "--model", "crest-me5s", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _sample() -> list[str]:
    """Suite texts that the guard reads as one window with nothing to normalize (the guard's own input path,
    which a plain transformers model lacks, is then the identity)."""
    from crestguard.guard import normalize
    from crestguard.guard.onnx.parity import suite_sample

    texts = [t for _, t in suite_sample(4)]
    return [t for t in texts if normalize.normalize(t).text == t and len(t) < 600][:48]


def test_transformers_loads_the_folder_and_gives_the_guards_scores(hf_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    texts = _sample()
    assert len(texts) >= 30
    guard = load_guard("crest-me5s", backend="torch", langid=False)
    assert all(len(v.windows) == 1 for v in guard.check_batch(texts))
    want = guard.predict_scores(texts)

    model = AutoModelForSequenceClassification.from_pretrained(hf_dir).eval()
    tok = AutoTokenizer.from_pretrained(hf_dir)
    assert model.config.id2label == {0: "safe", 1: "unsafe"}
    with torch.no_grad():
        got = [float(model(**tok(t, return_tensors="pt")).logits.softmax(-1)[0, 1]) for t in texts]
    np.testing.assert_allclose(got, want, atol=1e-4)

    clf = pipeline("text-classification", model=str(hf_dir), top_k=None, truncation=True)
    out = clf(texts[:8])
    piped = [next(d["score"] for d in row if d["label"] == "unsafe") for row in out]
    np.testing.assert_allclose(piped, want[:8], atol=1e-4)
    assert np.array_equal(np.array(got) >= guard.threshold, want >= guard.threshold)


def test_the_folder_has_a_model_card(hf_dir):
    card = (hf_dir / "README.md").read_text()
    assert card.startswith("---\n") and "pipeline_tag: text-classification" in card
    assert "crestguard export hf" in card and "threshold" in card
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in hf_dir.iterdir()}
