"""One label per site: the content model decides, cues a researcher can read explain and break
ties, and a calibrated confidence below ``UNSURE`` says ``unknown`` with the runner-up named.

``evidence["decided_by"]`` says which signal decided: ``model`` (the embeddings of what the
site says about itself and shows), ``cues`` (lexicon, host, suffix or JSON-LD words breaking a
near tie), ``json-ld`` (the site's own schema.org type), ``sections`` (its top-level
sections, each read on its own, spread over several purposes: a portal; see ``sections``),
or ``below threshold``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from .cues import CueScores, Hit, fold, lexicon, taxonomy
from .kinds import kind_model
from .model import Model, SiteDoc, embed, shipped_model
from .sections import PORTAL, Verdict, judge, reading_view, rule

UNKNOWN = "unknown"
UNSURE = 0.3  # calibrated confidence below which the label is unknown (see README figures)
# Cue points are evidence fused with the model: a label's score is its log-probability plus
# CUE_BETA times its share of the site's cue points (the share taken of the points plus
# CUE_S0, so a handful of words moves little).  A near tie goes to the label with more of the
# site's own words; a confident model is overruled only by a large, one-sided share.  Both
# constants were chosen by grouped CV on the real corpus alone (README, "How a site's purpose
# is decided").
CUE_BETA, CUE_S0 = 3.0, 10.0
GUESS_CEILING = 0.3  # a guess from the name alone never claims more than this
UNRECOGNISED = "text in a language the classifier does not know"
UNCLEAR = "too little text to tell its language"
# The encoder's languages (USE-multilingual-v3) and those our lexicons cover.
LANGUAGES = {"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th",
             "tr", "zh",
             # near kin of those, which the encoder reads well enough: in grouped CV on the
             # real corpus 12 of 13 Ukrainian, Bulgarian, Czech, Slovak, Danish, Norwegian
             # and Swedish sites came out right (they were all unknown when left out)
             "uk", "bg", "be", "cs", "sk", "da", "no", "nb", "nn", "sv"}


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


@cache
def _identifier() -> Any:  # py3langid has no type hints
    from ..langmodel import identifier

    return identifier()


# Scripts only languages the encoder knows are written in: a page with this much of them is
# readable whatever a language detector makes of a few words (Korean amid "Login Sitemap").
KNOWN_SCRIPTS = {"ko": [("\uac00", "\ud7a3"), ("\u1100", "\u11ff"), ("\u3130", "\u318f")],
                 "ja": [("\u3040", "\u30ff")],
                 "zh": [("\u4e00", "\u9fff")],
                 "th": [("\u0e00", "\u0e7f")]}
SCRIPT_SHARE = 0.2


def _script(text: str) -> str | None:
    """The known-script language of ``text``, when a fifth of its letters are in that script
    (kana before Han: Japanese writes both)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    for lang, ranges in KNOWN_SCRIPTS.items():
        inside = sum(1 for c in letters if any(lo <= c <= hi for lo, hi in ranges))
        if inside >= 2 and inside >= SCRIPT_SHARE * len(letters):
            return lang
    return None


def language(doc: SiteDoc) -> tuple[str | None, float]:
    """The language of the site's text: its script when that says it, what the crawl found,
    else the detector's view."""
    sample = (doc.self_description() + "\n" + doc.body())[:1500]
    script = _script(sample)
    if script:
        return script, 1.0
    lang, conf = _identifier().classify(sample)
    if doc.lang and doc.lang.split("-")[0].lower() in LANGUAGES and conf < 0.99:
        return doc.lang.split("-")[0].lower(), 0.9
    return str(lang), float(conf)


def _weight(text: str) -> int:
    """Letters of ``text``, a CJK or Hangul character counting three (one says as much)."""
    return sum(3 if "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3" else 1
               for c in text if c.isalpha())


def _usable(doc: SiteDoc, content: CueScores) -> str | None:
    """Why ``doc`` has no usable content, or None when it has."""
    if not doc.alive:
        return "site did not answer"
    body = " ".join(doc.fields().values())
    if _weight(body) < 12:
        return "no text"
    parked = lexicon().is_parked(body)
    if parked:
        return f"parked or default page ({parked!r})"
    if content.total < 2.0:
        lang, conf = language(doc)
        if conf < 0.6:
            return UNCLEAR
        if lang not in LANGUAGES:
            return f"{UNRECOGNISED} ({lang})"
    return None


def _where(term: str, doc: SiteDoc) -> str:
    """The first field that holds ``term``."""
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
        evidence["decided_by"] = "name"
        return Classification(doc.domain, label, confidence, evidence)
    evidence["terms"] = []
    evidence["note"] = f"no usable content: {why}"
    # sure there is nothing, less sure that nothing we know is there
    unsure = why.startswith((UNRECOGNISED, UNCLEAR))
    return Classification(doc.domain, UNKNOWN, 0.5 if unsure else 1.0, evidence)


def _clear(content: CueScores, label: str, top_cue: float) -> bool:
    """A second purpose is clear when several of its own words weigh near the first's."""
    terms = {hit.term for hit in content.hits if hit.label == label}
    return len(terms) >= 2 and content.scores.get(label, 0.0) >= max(4.0, 0.35 * top_cue)


def decide(probs: dict[str, float], cue: dict[str, float], declared: dict[str, float]
           ) -> tuple[str, str, str]:
    """(label, runner-up, what decided) from calibrated model probabilities and cue points."""
    top = max(probs, key=probs.__getitem__)
    if declared:
        own = max(declared, key=declared.__getitem__)
        if own != top and probs.get(own, 0.0) >= 0.1:
            return own, top, "json-ld"
    total = sum(max(v, 0.0) for v in cue.values()) + CUE_S0
    score = {label: math.log(p + 1e-9) + CUE_BETA * max(cue.get(label, 0.0), 0.0) / total
             for label, p in probs.items()}
    first, second = sorted(score, key=score.__getitem__, reverse=True)[:2]
    return first, second, "model" if first == top else "cues"


def classify_docs(docs: Sequence[SiteDoc], model: Model | None = None,
                  vectors: np.ndarray | None = None) -> list[Classification]:
    """Classify many sites at once; the encoder reads them in one batch, which is faster."""
    model = model or shipped_model()
    lx = lexicon()
    prepared = []
    for doc in docs:
        name, content, declared = CueScores(), CueScores(), CueScores()
        suffix = lx.name_cues(doc.domain, doc.suffix, name)
        for where, text in doc.fields().items():
            lx.match(text, where, content)
        lx.schema_cues(doc.schema_types, declared)
        prepared.append((doc, name, content, declared, suffix, _usable(doc, content)))
    index = [i for i, p in enumerate(prepared) if p[5] is None]
    readable = [prepared[i][0] for i in index]
    predictions = iter(model.predict(readable, None if vectors is None else vectors[index]))
    verdicts = iter(_section_verdicts(readable, model))
    results = []
    for doc, name, content, declared, suffix, why in prepared:
        if why is not None:
            results.append(_guess(doc, name, suffix, why))
            continue
        pred, verdict = next(predictions), next(verdicts)
        cue = dict(content.scores)
        for label, score in [*name.scores.items(), *declared.scores.items()]:
            cue[label] = cue.get(label, 0.0) + score
        top, runner, decided_by = decide(pred.probabilities, cue, declared.scores)
        confidence = pred.probabilities[top]
        if decided_by != "model":
            # the words overruled the model: half its probability, half their share of points
            confidence = 0.5 * (confidence + cue.get(top, 0.0) / max(sum(cue.values()), 1e-9))
        secondary = [
            label for label, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1])
            if label not in (top, UNKNOWN) and (
                p >= max(0.2, 0.5 * confidence) or _clear(content, label, cue.get(top, 0.0)))
        ][:2]
        hits = content.hits + name.hits + declared.hits
        evidence: dict[str, Any] = {
            "decided_by": decided_by,
            "terms": _terms(hits, top),
            "suffix": suffix,
            "lang": doc.lang,
            "model": {"label": max(pred.probabilities, key=pred.probabilities.__getitem__),
                      "p": round(max(pred.probabilities.values()), 3)},
            "runner_up": {"label": runner, "p": round(pred.probabilities[runner], 3)},
            "cues": {k: round(v, 1) for k, v in sorted(cue.items(), key=lambda kv: -kv[1])[:3]},
            "read": "self-description (title, site name, description, @type, host), "
                    "then headings and body",
        }
        if secondary:
            evidence["secondary_terms"] = {s: _terms(content.hits, s, 3) for s in secondary}
        if verdict is not None:
            evidence["sections"] = verdict.evidence()
            if verdict.portal and not declared.scores and top != PORTAL:
                # the site's own schema.org type, when it declares one, still wins
                runner, top, decided_by = top, PORTAL, "sections"
                confidence = max(pred.probabilities[PORTAL], rule()["confidence"])
                secondary = [runner]
                evidence.update(decided_by=decided_by, terms=_terms(hits, top),
                                runner_up={"label": runner,
                                           "p": round(pred.probabilities[runner], 3)})
        if confidence < UNSURE:
            evidence["decided_by"] = "below threshold"
            evidence["runner_up"] = {"label": top, "p": round(confidence, 3)}
            evidence["note"] = f"confidence {confidence:.2f} below {UNSURE}: unknown"
            results.append(Classification(doc.domain, UNKNOWN, 1 - confidence, evidence,
                                          secondary=[top]))
            continue
        results.append(Classification(doc.domain, top, confidence, evidence,
                                      secondary=secondary))
    return results


def _section_verdicts(docs: Sequence[SiteDoc], model: Model) -> list[Verdict | None]:
    """What each site's sections say (None for a site with too few), read in one batch."""
    judged = [d for d in docs if len(d.sections) >= rule()["min_sections"]]
    flat = [reading_view(s) for d in judged for s in d.sections]
    verdicts: dict[int, Verdict] = {}
    if not flat:
        return [None for _ in docs]
    # one embedding of each section serves the purpose model and the kind reader
    x = embed(flat)
    readings = model.predict(flat, x)
    p_news = kind_model().p_news(x) if rule()["news_kind"] > 0 else None
    start = 0
    for doc in judged:
        end = start + len(doc.sections)
        verdicts[id(doc)] = judge(doc.sections, readings[start:end],
                                  kinds=None if p_news is None else p_news[start:end])
        start = end
    return [verdicts.get(id(d)) for d in docs]


def classify_site(doc: SiteDoc) -> Classification:
    """Classify one site."""
    return classify_docs([doc])[0]
