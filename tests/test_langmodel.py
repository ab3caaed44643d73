"""The language model read from its unpacked copy answers as py3langid's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from crawler import langmodel

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
