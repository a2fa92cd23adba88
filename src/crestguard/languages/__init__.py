"""The language table: XLM-R's 100 languages (codes, names, scripts, FLORES-200 codes, CC-100 sizes, the CREST
paper's clusters) plus the other languages in ``../shared/data``, and lookups from every code the data uses.

Example:
    >>> from crestguard import languages
    >>> languages.resolve("zh-CN"), languages.get("jw").name, languages.flores_code("fa")
    ('zh-Hans', 'Javanese', 'pes_Arab')
"""

from __future__ import annotations

from crestguard.languages.table import (
    TABLE_PATH,
    Language,
    all_languages,
    flores_code,
    get,
    paper_clusters,
    resolve,
    try_resolve,
)

__all__ = ["TABLE_PATH", "Language", "all_languages", "flores_code", "get", "paper_clusters", "resolve",
           "try_resolve"]
