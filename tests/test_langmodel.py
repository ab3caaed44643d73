"""The language model read from its unpacked copy, and walked by NumPy, answers as py3langid's
own loader and walk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from crawler import langmodel
from crawler.langwalk import FastIdentifier, local_depth

TEXTS = [
    "The people built a railway station by the river and a school in every village.",
    "Le peuple a construit une gare au bord de la rivière et une école dans chaque village.",
    "Das Volk baute einen Bahnhof am Fluss und in jedem Dorf eine Schule.",
    "Народ построил вокзал у реки и школу в каждой деревне.",
    "조선인민은 강가에 철도역을 세웠다",
    "ok",
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "cctld-census"


def test_the_unpacked_model_answers_as_py3langid(cache: Path) -> None:
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    first = langmodel.identifier()  # unpacks
    [folder] = cache.glob("langid-*")
    assert (folder / "done").exists() and (folder / "ptc.npy").stat().st_size > 10**7
    again = langmodel.identifier()  # reads the copy
    for text in TEXTS:
        assert first.classify(text) == again.classify(text) == reference.classify(text)
        assert again.rank(text) == reference.rank(text)


def test_a_damaged_copy_falls_back_to_the_package(cache: Path) -> None:
    langmodel.identifier()
    [folder] = cache.glob("langid-*")
    (folder / "ptc.npy").write_bytes(b"not an array")
    assert langmodel.identifier().classify(TEXTS[0])[0] == "en"


def real_texts() -> dict[str, list[str]]:
    """Titles and texts of the real documents in the corpus, by their language."""
    by_lang: dict[str, list[str]] = {}
    for path in sorted((Path(langmodel.__file__).parent / "data" / "corpus").rglob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            doc = json.loads(line)
            for key in ("title", "text"):
                if doc.get(key):
                    by_lang.setdefault(doc["lang"], []).append(doc[key][:2000])
    return by_lang


def test_the_numpy_walk_answers_as_py3langid_on_real_text_in_many_scripts(
        cache: Path) -> None:
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    fast = langmodel.identifier()
    assert isinstance(fast, FastIdentifier)
    by_lang = real_texts()
    # Latin, Cyrillic, Hangul, kana and Han, Arabic, Greek, Hebrew, Thai, Devanagari
    assert {"en", "de", "ru", "ko", "ja", "zh", "ar", "el", "he", "th", "hi"} <= set(by_lang)
    texts = [t for texts in by_lang.values() for t in texts] + ["", "a", "ok", "\x00", "İı"]
    assert len(texts) > 1500
    for text in texts:
        assert fast.classify(text) == reference.classify(text), text  # bit for bit
    for text in texts[::10]:
        assert fast.rank(text) == reference.rank(text)
    # The comparison can fail: walking one byte less loses the longest (and rarest) features.
    short = langmodel.identifier()
    short._depth -= 1
    assert sum(short.classify(t) != reference.classify(t) for t in texts) >= 10


def test_a_model_not_known_to_be_aho_corasick_keeps_py3langid_s_walk(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(langmodel, "LOCAL_MODELS", {})
    ident = langmodel.identifier()
    assert type(ident) is LanguageIdentifier
    assert ident.classify(TEXTS[1])[0] == "fr"


@pytest.mark.slow
def test_the_installed_model_is_aho_corasick_to_the_depth_langmodel_knows(
        cache: Path) -> None:
    """The property the numpy walk rests on, checked on every transition (about 10 s)."""
    ident = langmodel.identifier()
    digest = hashlib.sha256(Path(MODEL_DIR / MODEL_FILE).read_bytes()).hexdigest()
    assert langmodel.LOCAL_MODELS[digest] == local_depth(ident) == 6
    # and the check can fail: a transition sent to the root is not the longest suffix
    nextmove = ident.tk_nextmove
    rows = ident.tk_row
    state = next(s for s in range(1, len(rows)) if nextmove[(rows[s] << 8) + ord("e")] != 0)
    nextmove[(rows[state] << 8) + ord("e")] = 0
    assert local_depth(ident) is None
