"""Alias of :mod:`crestguard.guard.onnx.export` (moved there)."""
import sys

from crestguard.guard.onnx import export

sys.modules[__name__] = export
