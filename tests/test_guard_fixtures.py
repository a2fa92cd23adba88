"""Classifiers for the guard tests, built from real data in seconds, and a check that they really classify.

- ``head_model_dir``: the offline backbone ``me5-small-q4`` with its CREST head (pooler dense + classifier) fit on
  first-token states of 300 AdvBench requests (unsafe) and 300 benign instructions (safe). Saved in the delta format
  (head tensors only) under ``$CRESTGUARD_HOME/test-models/`` so that later sessions reuse it (~30 s the first time).
- ``head_guard``: that classifier loaded once per session as a guard (torch fp32).
- ``tiny_model_dir``: a random tiny XLM-R classifier in the Hugging Face format (for fast export/format tests).

Other guard test modules import these fixtures (``from test_guard_fixtures import head_guard``).
"""

from __future__ import annotations

import pytest

HEAD_RECIPE = "me5-head-v1"
N_PER_CLASS = 300


def _head_training_texts(n: int = N_PER_CLASS) -> tuple[list[str], list[int]]:
    from crestguard.data import load_dataset

    unsafe = [r.text for r in load_dataset("advbench").records][:n]
    safe = [r.text for r in load_dataset("benign_instructions").records if r.lang == "en"][:n]
    return unsafe + safe, [1] * len(unsafe) + [0] * len(safe)


def build_head_model(out_dir) -> None:
    """Fit the CREST head of a me5-small-q4 classifier on first-token states; save it as a delta."""
    import torch

    from crestguard.modeling import build_classifier, save_classifier

    bundle = build_classifier("me5-small-q4")
    model = bundle.model.eval()
    texts, labels = _head_training_texts()
    with torch.inference_mode():
        states = []
        for i in range(0, len(texts), 64):
            enc = bundle.tokenizer(texts[i : i + 64], padding=True, truncation=True, max_length=128,
                                   return_tensors="pt")
            states.append(model.bert(**enc).last_hidden_state[:, 0])
    x, y = torch.cat(states), torch.tensor(labels)
    torch.manual_seed(0)
    head = [model.bert.pooler.dense, model.classifier]
    params = [p for layer in head for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3, weight_decay=1e-4)
    for _ in range(200):
        opt.zero_grad()
        logits = model.classifier(torch.tanh(model.bert.pooler.dense(x)))
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()
    save_classifier(bundle, out_dir, extra={"threshold": 0.5, "train_languages": ["en"],
                                            "train_sources": ["advbench", "benign_instructions"],
                                            "notes": "test fixture: head fit on frozen first-token states"})


@pytest.fixture(scope="session")
def head_model_dir():
    """A real (if weak) classifier on me5-small-q4, cached across sessions."""
    import os
    import shutil
    import tempfile

    from crestguard.backbones import offline
    from crestguard.paths import cache_dir

    weights_sha = offline.file_sha256(offline.source_files()[0])[:16]
    target = cache_dir() / "test-models" / f"{HEAD_RECIPE}-{weights_sha}"
    if not (target / "crest_config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=target.parent)
        try:
            build_head_model(tmp)
            os.rename(tmp, target)
        except OSError:
            if not (target / "crest_config.json").is_file():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_xlmr_dir, tmp_path_factory):
    """A random tiny XLM-R classifier saved in the Hugging Face format with a crest_config.json."""
    import torch

    from crestguard.modeling import build_classifier, save_classifier

    torch.manual_seed(0)
    bundle = build_classifier(str(tiny_xlmr_dir))
    return save_classifier(bundle, tmp_path_factory.mktemp("tiny-clf"), extra={"threshold": 0.5})


def test_head_fixture_separates_held_out_requests(head_guard):
    """The fixture is a real classifier: held-out AdvBench requests score above held-out benign instructions."""
    from crestguard.data import load_dataset

    guard = head_guard
    unsafe = [r.text for r in load_dataset("advbench").records][N_PER_CLASS : N_PER_CLASS + 40]
    safe = [r.text for r in load_dataset("benign_instructions").records if r.lang == "en"][-40:]
    s_unsafe, s_safe = guard.predict_scores(unsafe), guard.predict_scores(safe)
    assert (s_unsafe >= 0.5).mean() >= 0.85
    assert (s_safe < 0.5).mean() >= 0.85


@pytest.fixture(scope="session")
def head_guard(head_model_dir):
    """The fixture classifier loaded as a guard (torch fp32, language ID on), shared by the guard tests."""
    from crestguard.guard import load_guard

    return load_guard(head_model_dir, backend="torch")  # the default would be ONNX (a delta on the offline backbone)
