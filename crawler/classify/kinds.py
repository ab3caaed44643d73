"""What kind of page a section is: a news list or article, or a reference page.

The purpose model reads what a page is about, and a national portal's informational pages (a
country's society, its traditions, its companies) are about the same things news is about:
it reads them as news.  Whether a page is *news* is a matter of its kind, not its topic: a
list of dated headlines and teasers, a ticker, a report of what happened on a day, against a
descriptive, encyclopaedic, guide, service, help or catalogue page.  This reader tells the two
apart from the same sentence embedding of a section's text that the purpose model already
computes (the body half of ``model.embed``), with a logistic regression trained on real,
labelled pages of many sites and languages (``corpus/section_kinds.jsonl``), once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from .model import SiteDoc, read_corpus, site_group, training_vectors

log = logging.getLogger(__name__)

NEWS = "news"
BODY = slice(512, 1024)  # the body passage's half of model.embed's 1024 columns
C = 1.0


def kind_corpus() -> list[dict[str, Any]]:
    """The labelled pages (``corpus/section_kinds.jsonl``)."""
    return read_corpus(name="section_kinds.jsonl")


def kind_doc(record: dict[str, Any]) -> SiteDoc:
    """A labelled page as a section's reading view shows it: its text (no title: the corpus's
    pages have none of their own, and a section's body passage is its text)."""
    return SiteDoc(domain=record["domain"], text=record["text"], lang=record.get("lang"))


def _fit(x: np.ndarray, truth: Sequence[int]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(x, truth)


class KindModel:
    """P(news) of a section from the body half of its purpose-model embedding."""

    def __init__(self, records: Sequence[dict[str, Any]], vectors: np.ndarray | None = None):
        if vectors is None:
            vectors = training_vectors([kind_doc(r) for r in records])
        self.clf = _fit(vectors[:, BODY], [int(r["kind"] == NEWS) for r in records])

    def p_news(self, vectors: np.ndarray) -> list[float]:
        """P(news) of each row of ``model.embed`` vectors (1024 columns)."""
        if len(vectors) == 0:
            return []
        return [float(p) for p in self.clf.predict_proba(vectors[:, BODY])[:, 1]]


@cache
def kind_model() -> KindModel:
    """The reader trained on the whole shipped kind corpus, once per process."""
    records = kind_corpus()
    model = KindModel(records)
    log.info("section kind reader trained on %d pages", len(records))
    return model


@dataclass
class KindValidation:
    """Grouped cross-validation of the kind reader: no registrable domain in both halves."""

    truth: list[int]
    p_news: list[float]
    langs: list[str]
    folds: int

    def _predicted(self) -> list[int]:
        return [int(p >= 0.5) for p in self.p_news]

    def _headline(self) -> list[str]:
        from sklearn.metrics import f1_score

        pred = self._predicted()
        right = sum(t == p for t, p in zip(self.truth, pred, strict=True))
        f1 = f1_score(self.truth, pred, average=None, labels=[1, 0])
        return [f"section kind reader, grouped {self.folds}-fold CV on {len(self.truth)} pages "
                f"({sum(self.truth)} news, {len(self.truth) - sum(self.truth)} reference)",
                f"accuracy {right / len(self.truth):.3f}; F1 news {f1[0]:.2f}, "
                f"reference {f1[1]:.2f}"]

    def summary(self) -> str:
        """The figures in one line (what the multi-page evaluation reports of the reader)."""
        return "; ".join(self._headline())

    def format(self) -> str:
        pred = self._predicted()
        lines = self._headline()
        for lang in sorted(set(self.langs)):
            idx = [i for i, g in enumerate(self.langs) if g == lang]
            ok = sum(self.truth[i] == pred[i] for i in idx)
            lines.append(f"  {lang:<4}{len(idx):>4}{ok / len(idx):>7.2f}")
        return "\n".join(lines)


def cross_validate_kinds(folds: int = 5) -> KindValidation:
    """Grouped k-fold CV of the kind reader on ``corpus/section_kinds.jsonl``."""
    from sklearn.model_selection import GroupKFold

    records = kind_corpus()
    x = training_vectors([kind_doc(r) for r in records])
    truth = [int(r["kind"] == NEWS) for r in records]
    groups = [site_group(r["domain"]) for r in records]
    p = [0.0] * len(records)
    for train, test in GroupKFold(n_splits=folds).split(x, truth, groups):
        clf = _fit(x[train][:, BODY], [truth[i] for i in train])
        for i, q in zip(test, clf.predict_proba(x[test][:, BODY])[:, 1], strict=True):
            p[i] = float(q)
    return KindValidation(truth, p, [r.get("lang") or "?" for r in records], folds)
