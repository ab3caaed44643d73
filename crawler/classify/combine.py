"""One label per site from two halves that agree or argue: cue lexicons a researcher can read
and the linear model; the evidence names the words that decided and where they were found."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .cues import CueScores, Hit, fold, lexicon, taxonomy
from .model import Model, SiteDoc, shipped_model

UNKNOWN = "unknown"
MODEL_SHARE = 0.55  # the rest of a label's score comes from the cues
GUESS_CEILING = 0.3  # a guess from the name alone never claims more than this
WEAK_MODEL = 0.4  # below this, and with no cue words, the model is only guessing
UNRECOGNISED = "text in a language or script the classifier does not know"


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
