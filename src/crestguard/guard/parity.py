"""Alias of :mod:`crestguard.guard.onnx.parity` (moved there)."""
import sys

from crestguard.guard.onnx import parity

sys.modules[__name__] = parity
