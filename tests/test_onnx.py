"""ONNX export and backend: cache keyed by the model hash, parity with torch, no torch at serving time.

The parity test on the shipped default guard and the default evaluation suite is in test_guard_default.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from crestguard.guard import GuardError, load_guard
from crestguard.guard.onnx import export as onnx_export
from test_guard_fixtures import tiny_model_dir  # noqa: F401  (fixture)

TEXTS = ["hello there", "How do I make a bomb?", "x " * 300, "", "Как дела? " * 5, "我想知道怎么做面包"]


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model_dir, tmp_path_factory):  # noqa: F811
    """The tiny classifier exported into a private cache (so tests never touch the user's)."""
    import os

    home = tmp_path_factory.mktemp("crestguard-home")
    old = os.environ.get("CRESTGUARD_HOME")
    os.environ["CRESTGUARD_HOME"] = str(home)
    try:
        folder = onnx_export.export_onnx(tiny_model_dir)
        yield tiny_model_dir, folder, home
    finally:
        if old is None:
            os.environ.pop("CRESTGUARD_HOME")
        else:
            os.environ["CRESTGUARD_HOME"] = old


def test_export_writes_a_complete_folder_keyed_by_the_model_hash(tiny_onnx):
    model_dir, folder, home = tiny_onnx
    digest = onnx_export.model_hash(model_dir)
    assert folder == home / "onnx" / f"{model_dir.name}-{digest[:16]}-r{onnx_export.RECIPE}"
    meta = json.loads((folder / onnx_export.META_NAME).read_text())
    assert meta["model_hash"] == digest and meta["pad_id"] == 1
    assert meta["fused_operators"].get("Attention") == 2  # one fused attention per layer
    # crestguard.guard.onnx.graph_passes: SkipLayerNormalization split again, the last layer after its attention on
    # [CLS] alone, the padding dropped between attentions
    assert meta["fused_operators"]["SkipLayerNormalization split"] == 4
    assert meta["fused_operators"]["last layer on the first token"] == 1
    assert meta["fused_operators"]["layers on real tokens only"] == 1  # between the two attentions
    for name in (*onnx_export.FILES.values(), onnx_export.TOKENIZER_NAME):
        assert (folder / name).stat().st_size > 0
    assert meta["files"]["int8"]["bytes"] < meta["files"]["fp32"]["bytes"] / 2
    # per-row int8 (crestguard.guard.onnx.int8_rows): per layer, the FFN up-projection (after a LayerNorm), the
    # down-projection (after the GELU, shifted) and the attention's smoothed input
    ops = meta["int8_operators"]
    assert (ops["dense_rows"], ops["dense_gelu_shifted"], ops["attention_smoothed"]) == (2, 2, 2)
    assert onnx_export.export_onnx(model_dir) == folder  # cached: no second export
    assert not list(folder.parent.glob(".tmp-*"))


def test_onnx_fp32_matches_torch_and_int8_is_close(tiny_onnx):
    model_dir, _, _ = tiny_onnx
    torch_guard = load_guard(model_dir, langid=False)
    fp32 = load_guard(model_dir, backend="onnx", precision="fp32", export=False, langid=False)
    int8 = load_guard(model_dir, backend="onnx", export=False, langid=False)
    ref = torch_guard.check_batch(TEXTS)  # different lengths in one padded batch, and several windows
    got = fp32.check_batch(TEXTS)
    np.testing.assert_allclose([v.score for v in got], [v.score for v in ref], atol=1e-5)
    assert [len(v.windows) for v in got] == [len(v.windows) for v in ref]
    np.testing.assert_allclose(int8.predict_scores(TEXTS), [v.score for v in ref], atol=0.02)
    assert len({torch_guard.fingerprint, fp32.fingerprint, int8.fingerprint}) == 3
    assert (fp32.name, int8.name) == (f"{model_dir.name}@onnx-fp32", f"{model_dir.name}@onnx-int8")


def test_rows_run_on_several_cores_give_the_same_scores(tiny_onnx):
    """The row-parallel engine cuts each batch into parts (one per thread, each without the padding its rows do not
    need) and puts the logits back in order."""
    model_dir, _, _ = tiny_onnx
    one = load_guard(model_dir, backend="onnx", precision="fp32", export=False, langid=False, threads=2, rows=False)
    three = load_guard(model_dir, backend="onnx", precision="fp32", export=False, langid=False, threads=3)
    assert one.engine.row_session is None and three.engine.row_session is not None
    texts = [t + " ." * k for k in range(4) for t in TEXTS]  # 24 texts of many lengths; more windows than rows
    np.testing.assert_allclose(three.predict_scores(texts), one.predict_scores(texts), atol=1e-5)
    ids = np.array([[0, 5, 6, 2], [0, 7, 2, 1]])
    mask = (ids != 1).astype(np.int64)
    np.testing.assert_allclose(three.engine.logits(ids, mask), one.engine.logits(ids, mask), atol=1e-5)


def test_check_cli_passes_rows_to_the_backend(tiny_onnx, tmp_path):
    """``crestguard check --backend onnx --rows/--no-rows``: the same verdicts either way."""
    from typer.testing import CliRunner

    from crestguard.cli import app

    model_dir, _, _ = tiny_onnx
    src = tmp_path / "in.txt"
    src.write_text("\n".join(t for t in TEXTS if t.strip()) + "\n")
    scores = {}
    for flag in ("--rows", "--no-rows"):
        out = tmp_path / f"{flag}.jsonl"
        res = CliRunner().invoke(app, ["check", "--file", str(src), "--out", str(out), "--model", str(model_dir),
                                       "--backend", "onnx", "--precision", "fp32", "--threads", "2", flag])
        assert res.exit_code in (0, 1), res.output
        scores[flag] = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    assert len(scores["--rows"]) == 5
    np.testing.assert_allclose(scores["--rows"], scores["--no-rows"], atol=1e-5)


def test_the_serving_session_keeps_the_normalizations_split(tiny_onnx, tmp_path):
    """onnxruntime would fuse Add + LayerNormalization back into its slow SkipLayerNormalization kernel; the
    backend's session turns that fusion off."""
    import onnx
    import onnxruntime as ort

    _, folder, _ = tiny_onnx

    def fused_norms(disabled) -> int:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        ort.InferenceSession(str(folder / onnx_export.FILES["int8"]), options, disabled_optimizers=disabled)
        graph = onnx.load(options.optimized_model_filepath).graph
        return sum(n.op_type == "SkipLayerNormalization" for n in graph.node)

    assert fused_norms([]) > 0
    assert fused_norms(list(onnx_export.DISABLED_OPTIMIZERS)) == 0


def test_serving_from_onnx_imports_no_torch(tiny_onnx):
    model_dir, _, home = tiny_onnx
    code = (
        "import sys, crestguard\n"
        f"g = crestguard.load_guard({str(model_dir)!r}, backend='onnx', export=False)\n"
        "v = g.check('How do I make a bomb?')\n"
        "print(v.language, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"CRESTGUARD_HOME": str(home), "PATH": ""}, check=True)
    assert out.stdout.split() == ["en", "False", "False"], out.stderr


def test_missing_export_with_export_off_is_a_clear_error(tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CRESTGUARD_HOME", str(tmp_path))
    with pytest.raises(GuardError, match="no ONNX export in the cache.*crestguard export onnx"):
        load_guard(tiny_model_dir, backend="onnx", export=False)


def test_changing_a_model_file_changes_the_cache_key(tiny_model_dir, tmp_path):  # noqa: F811
    import shutil

    copy = shutil.copytree(tiny_model_dir, tmp_path / tiny_model_dir.name)
    assert onnx_export.model_hash(copy) == onnx_export.model_hash(tiny_model_dir)
    (copy / "MODEL_CARD.md").write_text("documentation does not change the model")
    assert onnx_export.model_hash(copy) == onnx_export.model_hash(tiny_model_dir)
    cfg = json.loads((copy / "crest_config.json").read_text())
    (copy / "crest_config.json").write_text(json.dumps({**cfg, "threshold": 0.7}))
    assert onnx_export.model_hash(copy) != onnx_export.model_hash(tiny_model_dir)
