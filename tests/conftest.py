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
