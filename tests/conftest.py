"""Shared fixtures. Tests use real data from ../shared/data and the real offline backbone.

The backbone is materialized once per machine into the cache ($CRESTGUARD_HOME); the first test that needs it
pays ~20 s, the rest reuse it.
"""

from __future__ import annotations

import pytest

from crestguard.paths import data_dir as _data_dir


@pytest.fixture(scope="session")
def data_dir():
    """The real data directory (../shared/data or $CRESTGUARD_DATA)."""
    return _data_dir()


@pytest.fixture(scope="session")
def me5():
    """The offline backbone `me5-small-q4`, loaded once per test session."""
    from crestguard.backbones import load_backbone

    return load_backbone("me5-small-q4")


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory):
    """A tiny random XLM-R encoder (2 layers, hidden 32) with the genuine XLM-R tokenizer, saved as a local folder.

    Use it wherever a test needs *a* hub-style backbone quickly; it loads through the same registry as hub ids.
    """
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from crestguard.backbones import offline

    path = tmp_path_factory.mktemp("tiny-xlmr")
    tokenizer = offline.build_tokenizer(offline.source_files()[1])
    config = XLMRobertaConfig(vocab_size=tokenizer.vocab_size + 10, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                              pad_token_id=1)
    XLMRobertaModel(config).save_pretrained(path)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(path)
    return path
