"""The learned half of the classifier: TF-IDF words and character n-grams, logistic regression.

Trained from ``crawler/data/corpus/train.jsonl`` at first use and cached in the process (it
takes well under two seconds), so nothing is downloaded and no pickle ships in the repository.
Character n-grams (``char_wb`` 2-4) carry Korean, Chinese and Japanese, whose compounds have
no reliable word spaces; word tokens carry the rest and give readable evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .cues import words

# Body text beyond this says little more about purpose and costs time.
TEXT_LIMIT = 6000


@dataclass
class SiteDoc:
    """What the classifier reads of one site: its name and the text of its fields."""

    domain: str
    title: str = ""
    description: str = ""
    headings: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    text: str = ""
    lang: str | None = None
    suffix: str | None = None
    alive: bool = True

    def fields(self) -> dict[str, str]:
        """Field name -> text, in the names the evidence uses."""
        return {
            "title": self.title or "",
            "description": self.description or "",
            "headings": " \n".join(self.headings),
            "anchors": " \n".join(self.anchors),
            "text": (self.text or "")[:TEXT_LIMIT],
        }

    def model_text(self) -> str:
        """One string for the model; the title twice because it says the most."""
        host = " ".join(words(self.domain.replace(".", " ").replace("-", " ")))
        f = self.fields()
        return "\n".join(
            [host, f["title"], f["title"], f["description"], f["headings"], f["anchors"], f["text"]]
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SiteDoc:
        return cls(
            domain=record.get("domain", ""),
            title=record.get("title", ""),
            description=record.get("description", ""),
            headings=list(record.get("headings", [])),
            anchors=list(record.get("anchors", [])),
            text=record.get("text", ""),
            lang=record.get("lang"),
        )


def read_corpus(path: str | Path | None = None, name: str = "train.jsonl") -> list[dict[str, Any]]:
    """Labelled documents of a JSON-lines file (default: the shipped ``corpus/<name>``)."""
    if path is None:
        source = resources.files("crawler") / "data" / "corpus" / name
        lines: Iterable[str] = source.read_text(encoding="utf-8").splitlines()
    else:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("//")]


@dataclass
class Prediction:
    probabilities: dict[str, float]
    terms: list[tuple[str, float]]  # features that pushed the top label, strongest first


class Model:
    """Vectorisers and a linear classifier trained on labelled site documents."""

    def __init__(self, records: Sequence[dict[str, Any]]):
        texts = [SiteDoc.from_record(r).model_text() for r in records]
        labels = [r["label"] for r in records]
        self.word = TfidfVectorizer(
            token_pattern=r"(?u)\b[^\W\d_]{2,}\b", sublinear_tf=True, min_df=1, max_df=0.5,
            lowercase=True, dtype=np.float32,
        )
        self.char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2,
            max_features=60000, lowercase=True, dtype=np.float32,
        )
        x = self._fit(texts)
        self.clf = LogisticRegression(C=20.0, max_iter=2000)
        self.clf.fit(x, labels)
        self.labels: list[str] = [str(c) for c in self.clf.classes_]
        self.names = np.array(
            list(self.word.get_feature_names_out())
            + [f"~{g}" for g in self.char.get_feature_names_out()]
        )
        self.n_word = len(self.word.vocabulary_)

    def _fit(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack(
            [self.word.fit_transform(texts), self.char.fit_transform(texts)], format="csr"
        )

    def _transform(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack(
            [self.word.transform(texts), self.char.transform(texts)], format="csr"
        )

    def predict(self, docs: Sequence[SiteDoc], top_terms: int = 6) -> list[Prediction]:
        if not docs:
            return []
        x = self._transform([d.model_text() for d in docs])
        probs = self.clf.predict_proba(x)
        out = []
        for i in range(len(docs)):
            row = x.getrow(i)
            k = int(np.argmax(probs[i]))
            contrib = row.data * self.clf.coef_[k, row.indices]
            order = np.argsort(-contrib)
            terms = []
            for j in order:
                if contrib[j] <= 0 or len(terms) >= top_terms:
                    break
                # word features read better; an n-gram shows only when it is CJK-sized
                name = str(self.names[row.indices[j]])
                if name.startswith("~") and not _is_cjk_gram(name[1:]):
                    continue
                terms.append((name.lstrip("~").strip(), float(contrib[j])))
            out.append(
                Prediction(dict(zip(self.labels, map(float, probs[i]), strict=True)), terms)
            )
        return out

    def vocabulary_share(self, doc: SiteDoc) -> float:
        """Share of the doc's words and n-grams the model has seen: near 0 for an unknown script."""
        analyse = self.char.build_analyzer()
        grams = analyse(doc.model_text()[:3000])
        if not grams:
            return 0.0
        vocab = self.char.vocabulary_
        return sum(g in vocab for g in grams) / len(grams)


def _is_cjk_gram(gram: str) -> bool:
    gram = gram.strip()
    return len(gram) >= 3 and all(ord(c) >= 0x1100 for c in gram)


@cache
def shipped_model() -> Model:
    """The model trained on the shipped corpus, once per process."""
    return Model(read_corpus())
