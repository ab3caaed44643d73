"""Purpose of every site: one label from the taxonomy, a confidence, and the evidence why.

Two halves agree or argue: cue lexicons a researcher can read (``crawler/data/lexicons``) and
a linear model trained on the shipped corpus.  The evidence names the words that decided, and
where they were found, so a label can be checked in Datasette.  Human labels (``labels``)
override both in every run until removed.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .classifier.cues import CueScores, Hit, fold, lexicon, taxonomy
from .classifier.model import Model, SiteDoc, read_corpus, shipped_model
from .db import get_run, utcnow
from .errors import CensusError

log = logging.getLogger(__name__)

__all__ = [
    "Classification",
    "Report",
    "SiteDoc",
    "UnknownLabel",
    "classify_docs",
    "classify_run",
    "classify_site",
    "evaluate",
    "remove_label",
    "set_label",
]

UNKNOWN = "unknown"
MODEL_SHARE = 0.55  # the rest of a label's score comes from the cues
GUESS_CEILING = 0.3  # a guess from the name alone never claims more than this
PAGE_TEXT_LIMIT = 3000
SITE_TEXT_LIMIT = 12000
WEAK_MODEL = 0.4  # below this, and with no cue words, the model is only guessing
UNRECOGNISED = "text in a language or script the classifier does not know"


class UnknownLabel(CensusError):
    """Not a label of the taxonomy."""


@dataclass
class Classification:
    domain: str
    label: str
    confidence: float
    evidence: dict[str, Any]
    source: str = "model"
    secondary: list[str] = field(default_factory=list)

    @property
    def guess(self) -> bool:
        """True when the label comes from the name alone, the site having no usable content."""
        return str(self.evidence.get("note", "")).startswith("guess from name")

    def row(self, run_id: int) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "domain": self.domain,
            "label": self.label,
            "confidence": round(self.confidence, 3),
            "evidence": json.dumps(self.evidence, ensure_ascii=False),
            "source": self.source,
            "secondary": json.dumps(self.secondary),
        }


def labels() -> list[str]:
    """The taxonomy's labels, in report order."""
    return list(taxonomy())


def _usable(doc: SiteDoc, content: CueScores, model: Model) -> str | None:
    """Why ``doc`` has no usable content, or None when it has."""
    if not doc.alive:
        return "site did not answer"
    body = " ".join(doc.fields().values())
    letters = sum(c.isalpha() for c in body)
    if letters < 12:
        return "no text"
    parked = lexicon().is_parked(body)
    if parked:
        return f"parked or default page ({parked!r})"
    if content.total < 2.0 and model.vocabulary_share(doc) < 0.35:
        return UNRECOGNISED
    return None


def _where(term: str, doc: SiteDoc) -> str:
    """The first field that holds ``term``, for the evidence of a model feature."""
    folded = fold(term)
    for name, text in doc.fields().items():
        if text and folded in fold(text):
            return name
    return "host" if folded in doc.domain.lower() else "text"


def _terms(hits: Sequence[Hit], label: str, limit: int = 6) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], float] = defaultdict(float)
    for hit in hits:
        if hit.label == label:
            merged[(hit.term, hit.where)] += hit.weight
    best = sorted(merged.items(), key=lambda kv: -kv[1])[:limit]
    return [{"term": t, "where": w, "weight": round(v, 2)} for (t, w), v in best]


def _guess(doc: SiteDoc, name: CueScores, suffix: str | None, why: str) -> Classification:
    evidence: dict[str, Any] = {"suffix": suffix, "lang": doc.lang}
    if name.total > 0:
        label = max(name.scores, key=name.scores.__getitem__)
        confidence = min(GUESS_CEILING, 0.1 + 0.04 * name.scores[label])
        evidence["terms"] = _terms(name.hits, label)
        evidence["note"] = f"guess from name and suffix only: {why}"
        return Classification(doc.domain, label, confidence, evidence)
    evidence["terms"] = []
    evidence["note"] = f"no usable content: {why}"
    # sure there is nothing, less sure that nothing we know is there
    return Classification(doc.domain, UNKNOWN, 0.5 if why == UNRECOGNISED else 1.0, evidence)


def _clear(content: CueScores, label: str, top_cue: float) -> bool:
    """A second purpose is clear when several of its own words weigh near the first's."""
    terms = {hit.term for hit in content.hits if hit.label == label}
    return len(terms) >= 2 and content.scores.get(label, 0.0) >= max(4.0, 0.35 * top_cue)


def classify_docs(docs: Sequence[SiteDoc], model: Model | None = None) -> list[Classification]:
    """Classify many sites at once; the model reads them in one batch, which is much faster."""
    model = model or shipped_model()
    lx = lexicon()
    prepared = []
    for doc in docs:
        name, content = CueScores(), CueScores()
        suffix = lx.name_cues(doc.domain, doc.suffix, name)
        for where, text in doc.fields().items():
            lx.match(text, where, content)
        prepared.append((doc, name, content, suffix, _usable(doc, content, model)))
    readable = [p[0] for p in prepared if p[4] is None]
    predictions = iter(model.predict(readable))
    results = []
    for doc, name, content, suffix, why in prepared:
        if why is not None:
            results.append(_guess(doc, name, suffix, why))
            continue
        pred = next(predictions)
        if content.total < 2.0 and max(pred.probabilities.values()) < WEAK_MODEL:
            results.append(_guess(doc, name, suffix, UNRECOGNISED))
            continue
        cue = dict(content.scores)
        for label, score in name.scores.items():
            cue[label] = cue.get(label, 0.0) + score
        total = sum(cue.values())
        combined = {
            label: MODEL_SHARE * p + (1 - MODEL_SHARE) * (cue.get(label, 0.0) / total)
            if total else p
            for label, p in pred.probabilities.items()
        }
        top = max(combined, key=combined.__getitem__)
        secondary = [
            label for label, score in sorted(combined.items(), key=lambda kv: -kv[1])
            if label != top and score >= max(0.2, 0.5 * combined[top])
            and _clear(content, label, cue.get(top, 0.0))
        ][:2]
        model_top = max(pred.probabilities, key=pred.probabilities.__getitem__)
        terms = _terms(content.hits + name.hits, top)
        if model_top == top:
            known = {fold(t["term"]) for t in terms}
            for term, weight in pred.terms[:4]:
                if fold(term) not in known:
                    terms.append({"term": term, "where": _where(term, doc),
                                  "weight": round(weight, 2), "by": "model"})
        evidence: dict[str, Any] = {
            "terms": terms,
            "suffix": suffix,
            "lang": doc.lang,
            "model": {"label": model_top, "p": round(pred.probabilities[model_top], 3)},
            "cues": {k: round(v, 1) for k, v in sorted(cue.items(), key=lambda kv: -kv[1])[:3]},
        }
        if secondary:
            evidence["secondary_terms"] = {s: _terms(content.hits, s, 3) for s in secondary}
        results.append(Classification(doc.domain, top, combined[top], evidence,
                                      secondary=secondary))
    return results


def classify_site(doc: SiteDoc) -> Classification:
    """Classify one site."""
    return classify_docs([doc])[0]


def _site_docs(db: sqlite_utils.Database, run_id: int) -> list[SiteDoc]:
    """One document per site of the run, from its site row and its pages."""
    pages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # a revisit keeps no text of its own: it is in the page revisited, maybe of an earlier run
    for row in db.execute_returning_dicts(
        "SELECT p.id, p.domain, p.title, p.lang, COALESCE(p.text, r.text) AS text, "
        "p.description, p.headings FROM pages p LEFT JOIN pages r ON r.id = p.revisit_of "
        "WHERE p.run_id = ? ORDER BY p.domain, p.id", [run_id]
    ):
        pages[row["domain"]].append(row)
    anchors: dict[str, list[str]] = defaultdict(list)
    for domain, anchor in db.execute(
        "SELECT p.domain, l.anchor FROM links l JOIN pages p ON p.id = l.page_id "
        "WHERE l.run_id = ? AND l.anchor IS NOT NULL AND l.anchor != ''", [run_id]
    ):
        if len(anchors[domain]) < 300:
            anchors[domain].append(anchor)
    suffixes = dict(db.execute("SELECT name, suffix FROM domains").fetchall())
    docs: dict[str, SiteDoc] = {}
    for site in db["sites"].rows_where("run_id = ?", [run_id], order_by="id"):
        domain = site["domain"]
        if domain in docs:
            doc = docs[domain]
            doc.alive = doc.alive or bool(site["alive"])
            doc.title = doc.title or site["title"] or ""
            continue
        docs[domain] = SiteDoc(domain=domain, title=site["title"] or "", lang=site["lang"],
                               suffix=suffixes.get(domain), alive=bool(site["alive"]))
    for domain, rows in pages.items():
        doc = docs.setdefault(domain, SiteDoc(domain=domain, suffix=suffixes.get(domain)))
        texts, size = [], 0
        for row in rows:
            if row["title"] and not doc.title:
                doc.title = row["title"]
            elif row["title"] and row["title"] != doc.title and len(doc.headings) < 30:
                doc.headings.append(row["title"])
            if row["description"] and not doc.description:
                doc.description = row["description"]
            if row["headings"] and len(doc.headings) < 100:
                doc.headings.extend(_as_list(row["headings"])[:20])
            if row["text"] and size < SITE_TEXT_LIMIT:
                texts.append(row["text"][:PAGE_TEXT_LIMIT])
                size += len(texts[-1])
            doc.lang = doc.lang or row["lang"]
        doc.text = "\n".join(texts)
        doc.anchors = anchors.get(domain, [])
        if texts or doc.title:
            doc.alive = True
    return list(docs.values())


def _as_list(value: str) -> list[str]:
    try:
        parsed = json.loads(value)
    except ValueError:
        return [value]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


def _labelled(result: Classification, label: dict[str, Any]) -> Classification:
    """A human label over the model's result; the model's own view stays in the evidence."""
    evidence = {
        "note": label["note"] or "human label",
        "set_at": label["set_at"],
        "model": {"label": result.label, "confidence": round(result.confidence, 3),
                  "secondary": result.secondary, "evidence": result.evidence},
    }
    return Classification(result.domain, label["label"], 1.0, evidence, source="label")


def classify_run(
    db: sqlite_utils.Database,
    run_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Classification]:
    """Classify every site of a run (default: the latest) into ``classifications``.

    The run's previous rows are replaced; a human label wins over the model.
    """
    run_id = get_run(db, run_id)["id"]
    docs = _site_docs(db, run_id)
    human = {row["domain"]: row for row in db["labels"].rows}
    results: list[Classification] = []
    batch = 500
    for start in range(0, len(docs), batch):
        results.extend(classify_docs(docs[start:start + batch]))
        if progress:
            progress(min(start + batch, len(docs)), len(docs))
    results = [_labelled(r, human[r.domain]) if r.domain in human else r for r in results]
    with db.conn:
        db.execute("DELETE FROM classifications WHERE run_id = ?", [run_id])
        db["classifications"].insert_all((r.row(run_id) for r in results), alter=False)
    log.info("classified %d sites of run %d", len(results), run_id)
    return results


def set_label(db: sqlite_utils.Database, domain: str, label: str, note: str | None = None) -> bool:
    """Record a human label; apply it to the latest run at once.  True if the census knows it."""
    if label not in taxonomy():
        raise UnknownLabel(f"{label!r} is not a label; choose one of: {', '.join(labels())}")
    domain = domain.strip().lower().rstrip(".")
    row = {"domain": domain, "label": label, "note": note, "set_at": utcnow()}
    with db.conn:
        db["labels"].upsert(row, pk="domain")
        for current in _latest_rows(db, domain):
            if current["source"] == "label":
                previous = json.loads(current["evidence"] or "{}").get("model")
                result = Classification(domain, previous["label"], previous["confidence"],
                                        previous["evidence"], secondary=previous["secondary"])
            else:
                result = Classification(domain, current["label"], current["confidence"],
                                        json.loads(current["evidence"] or "{}"),
                                        secondary=json.loads(current["secondary"] or "[]"))
            db["classifications"].update(current["id"], _labelled(result, row).row(
                current["run_id"]))
    known = db.execute("SELECT 1 FROM domains WHERE name = ?", [domain]).fetchone()
    return known is not None


def remove_label(db: sqlite_utils.Database, domain: str) -> bool:
    """Remove a human label and give the latest run back the model's view; True if it existed."""
    domain = domain.strip().lower().rstrip(".")
    with db.conn:
        existed = db.execute("DELETE FROM labels WHERE domain = ?", [domain]).rowcount > 0
        for current in _latest_rows(db, domain):
            if current["source"] != "label":
                continue
            previous = json.loads(current["evidence"] or "{}").get("model") or {}
            if "label" not in previous:
                continue
            restored = Classification(domain, previous["label"], previous["confidence"],
                                      previous["evidence"], secondary=previous["secondary"])
            db["classifications"].update(current["id"], restored.row(current["run_id"]))
    return existed


def _latest_rows(db: sqlite_utils.Database, domain: str) -> list[dict[str, Any]]:
    return list(db.execute_returning_dicts(
        "SELECT * FROM classifications WHERE domain = ? AND run_id = "
        "(SELECT MAX(run_id) FROM classifications WHERE domain = ?)", [domain, domain]
    ))


@dataclass
class Report:
    """How the classifier does on a labelled set it was not trained on."""

    source: str
    labels: list[str]
    truth: list[str]
    predicted: list[str]
    domains: list[str]

    @property
    def macro_f1(self) -> float:
        from sklearn.metrics import f1_score

        present = sorted(set(self.truth))
        return float(f1_score(self.truth, self.predicted, labels=present, average="macro",
                              zero_division=0))

    def per_label(self) -> dict[str, dict[str, float]]:
        from sklearn.metrics import precision_recall_fscore_support

        p, r, f, s = precision_recall_fscore_support(
            self.truth, self.predicted, labels=self.labels, zero_division=0
        )
        return {label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                        "support": int(s[i])} for i, label in enumerate(self.labels)}

    def confusion(self) -> list[list[int]]:
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.truth, self.predicted, labels=self.labels).tolist()

    def errors(self) -> list[tuple[str, str, str]]:
        return [(d, t, p) for d, t, p in zip(self.domains, self.truth, self.predicted,
                                              strict=True) if t != p]

    def format(self) -> str:
        lines = [f"evaluation set: {self.source} ({len(self.truth)} documents)",
                 f"macro-F1: {self.macro_f1:.3f}  (a guess from the name alone counts as unknown)",
                 "",
                 f"{'label':<20}{'precision':>10}{'recall':>8}{'f1':>7}{'n':>5}"]
        for label, m in self.per_label().items():
            if m["support"] or label in self.predicted:
                lines.append(f"{label:<20}{m['precision']:>10.2f}{m['recall']:>8.2f}"
                             f"{m['f1']:>7.2f}{m['support']:>5}")
        short = [label[:4] for label in self.labels]
        lines += ["", "confusion (rows: truth, columns: predicted)",
                  " " * 20 + "".join(f"{s:>5}" for s in short)]
        for label, row in zip(self.labels, self.confusion(), strict=True):
            lines.append(f"{label:<20}" + "".join(f"{n:>5}" for n in row))
        if self.errors():
            lines += ["", "misclassified:"]
            lines += [f"  {d}: {t} -> {p}" for d, t, p in self.errors()]
        return "\n".join(lines)


def evaluate(path: str | Path | None = None) -> Report:
    """Classify a labelled JSON-lines set (a file, or every ``*.jsonl`` of a folder).

    Default: the shipped ``corpus/eval.jsonl``, which training never reads.
    """
    if path is None:
        records, source = read_corpus(name="eval.jsonl"), "shipped eval.jsonl"
    else:
        path = Path(path)
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        if path.is_dir() and (path / "eval.jsonl").exists():
            files = [path / "eval.jsonl"]
        if not files or not all(f.exists() for f in files):
            raise CensusError(f"no labelled .jsonl documents at {path}")
        records = [r for f in files for r in read_corpus(f)]
        source = str(path)
    results = classify_docs([SiteDoc.from_record(r) for r in records])
    # a guess from the name alone says it is only that: it scores as "no usable content"
    predicted = [UNKNOWN if c.guess else c.label for c in results]
    return Report(source, labels(), [r["label"] for r in records], predicted,
                  [r.get("domain", "") for r in records])
