"""Check a backbone against reference token ids and embeddings (``shared/reference/me5_small_reference.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crestguard.errors import DataError
from crestguard.paths import REPO_ROOT


def default_reference() -> Path:
    return REPO_ROOT.parent / "shared" / "reference" / "me5_small_reference.json"


@dataclass
class CheckResult:
    items: int
    ids_equal: int
    min_cosine: float
    mean_cosine: float
    rows: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"items": self.items, "ids_equal": self.ids_equal,
                "min_cosine": round(self.min_cosine, 6), "mean_cosine": round(self.mean_cosine, 6)}


def load_reference(path: Path) -> list[dict]:
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))["items"]
        for it in items:
            it["input"], it["token_ids"], it["embedding"]  # noqa: B018 - presence check
    except FileNotFoundError:
        raise DataError(f"Reference file not found: {path} (pass --reference PATH).") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a reference file (needs items with input, token_ids, embedding): {exc}") from exc
    return items


def check_backbone(backbone, reference: Path | None = None) -> CheckResult:
    """Compare token ids exactly and mean-pooled (all tokens incl. <s> and </s>), L2-normalized embeddings by cosine."""
    items = load_reference(reference or default_reference())
    texts = [it["input"] for it in items]
    ids = backbone.tokenizer([backbone.normalize_text(t) for t in texts], truncation=False)["input_ids"]
    emb = backbone.encode(texts, batch_size=16, pooling="mean", normalize=True)
    rows = []
    for it, got_ids, vec in zip(items, ids, emb):
        ref = np.asarray(it["embedding"], dtype=np.float32)
        cos = float(vec @ ref / (np.linalg.norm(ref) * np.linalg.norm(vec)))
        rows.append({"key": it.get("key"), "ids_equal": list(got_ids) == list(it["token_ids"]), "cosine": cos})
    cosines = [r["cosine"] for r in rows]
    return CheckResult(len(rows), sum(r["ids_equal"] for r in rows), min(cosines), float(np.mean(cosines)), rows)
