"""How the classifier does on a labelled set it was not trained on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CensusError
from .combine import UNKNOWN, classify_docs, labels
from .model import SiteDoc, read_corpus


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


def evaluate(path: str | Path | None = None) -> Report | SiteEvaluation:
    """Classify a labelled JSON-lines set (a file, or every ``*.jsonl`` of a folder).

    Default: the shipped ``corpus/eval.jsonl``, which training never reads.  A file of
    multi-page sites (records with ``sections``, like ``corpus/sites.jsonl``) scores the
    section rule instead (``evaluate_sites``).
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
        if not path.is_dir() and any(r.get("sections") for r in records):
            return evaluate_sites(path)
    results = classify_docs([SiteDoc.from_record(r) for r in records])
    # a guess from the name alone says it is only that: it scores as "no usable content"
    predicted = [UNKNOWN if c.guess else c.label for c in results]
    return Report(source, labels(), [r["label"] for r in records], predicted,
                  [r.get("domain", "") for r in records])


@dataclass
class CrossValidation:
    """Grouped cross-validation on the real corpus: no site (registrable domain) is ever in
    both the training and the test half; the self-written smoke corpus is tested never (and
    trained on only if ``SMOKE_WEIGHT`` > 0)."""

    report: Report
    confidence: list[float]
    langs: list[str]
    sources: list[str]
    folds: int
    seed: int = 11
    groups: list[str] | None = None  # each document's ``group`` ("" for none)

    def macro_f1_interval(self, rounds: int = 1000) -> tuple[float, float]:
        """95 % bootstrap interval of macro-F1, resampling test documents."""
        import numpy as np
        from sklearn.metrics import f1_score

        truth, pred = np.array(self.report.truth), np.array(self.report.predicted)
        present = sorted(set(self.report.truth))
        rng = np.random.default_rng(self.seed)
        scores = []
        for _ in range(rounds):
            idx = rng.integers(0, len(truth), len(truth))
            scores.append(f1_score(truth[idx], pred[idx], labels=present, average="macro",
                                   zero_division=0))
        low, high = np.percentile(scores, [2.5, 97.5])
        return float(low), float(high)

    def calibration(self) -> list[tuple[str, int, float, float]]:
        """(confidence bin, documents, mean confidence, share right) of labelled answers."""
        bins = [(0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)]
        rows = []
        answered = [(c, t == p) for c, t, p in zip(self.confidence, self.report.truth,
                                                   self.report.predicted, strict=True)
                    if p != UNKNOWN]
        for low, high in bins:
            inside = [(c, ok) for c, ok in answered if low <= c < high]
            if inside:
                rows.append((f"{low:.1f}-{min(high, 1.0):.1f}", len(inside),
                             sum(c for c, _ in inside) / len(inside),
                             sum(ok for _, ok in inside) / len(inside)))
        return rows

    def format(self) -> str:
        low, high = self.macro_f1_interval()
        unknown = sum(p == UNKNOWN for p in self.report.predicted)
        lines = [f"grouped {self.folds}-fold cross-validation on the real corpus "
                 f"({len(self.report.truth)} sites, no site in both halves)",
                 f"macro-F1: {self.report.macro_f1:.3f}  (95% bootstrap interval "
                 f"{low:.3f}-{high:.3f}); unknown answers: {unknown}",
                 self.report.format().split("\n", 2)[2].split("\nmisclassified:")[0],
                 "", "calibration (answers other than unknown)",
                 f"{'confidence':<12}{'n':>5}{'mean conf':>11}{'right':>8}"]
        for name, n, conf, right in self.calibration():
            lines.append(f"{name:<12}{n:>5}{conf:>11.2f}{right:>8.2f}")
        lines += ["", "by language (sites, share right)"]
        for lang in sorted(set(self.langs)):
            idx = [i for i, g in enumerate(self.langs) if g == lang]
            right = sum(self.report.truth[i] == self.report.predicted[i] for i in idx)
            lines.append(f"  {lang:<6}{len(idx):>5}{right / len(idx):>8.2f}")
        by_group = group_results(self.groups or [], self.report.truth, self.report.predicted)
        if by_group:
            lines += ["", "by group (what each group's sites got, held out)", *by_group]
        return "\n".join(lines)


def group_results(groups: list[str], truth: list[str], predicted: list[str]) -> list[str]:
    """One line per ``group`` of the corpus (a record's optional field: state_media,
    government_portal...): how many of its sites, held out, got their label and what the rest
    got, e.g. "state_media held out: 15 of 20 news_media, 2 portal, 2 unknown"."""
    lines = []
    for group in sorted({g for g in groups if g}):
        idx = [i for i, g in enumerate(groups) if g == group]
        label = Counter(truth[i] for i in idx).most_common(1)[0][0]
        got = Counter(predicted[i] for i in idx)
        rest = [f"{n} {other}" for other, n in got.most_common() if other != label]
        lines.append(f"  {group} held out: {got.get(label, 0)} of {len(idx)} {label}"
                     + "".join(f", {r}" for r in rest))
    return lines


def composition(records: list[dict]) -> str:
    """Labels x languages, and the sources, of a corpus: what the README shows."""
    langs = [lang for lang, _ in Counter(r.get("lang") or "?" for r in records).most_common()]
    lines = [f"{'label':<20}" + "".join(f"{lang:>5}" for lang in langs) + f"{'all':>6}"]
    for label in labels():
        row = [r for r in records if r["label"] == label]
        if row:
            counts = Counter(r.get("lang") or "?" for r in row)
            lines.append(f"{label:<20}" + "".join(f"{counts.get(lang, 0):>5}" for lang in langs)
                         + f"{len(row):>6}")
    origin = Counter(str(r.get("source", "")).split(":", 2)[1] if r.get("source", "").startswith(
        "github:") else "web pages (pages corpus)" for r in records)
    lines += ["", "sources: " + ", ".join(f"{k} {v}" for k, v in origin.most_common())]
    return "\n".join(lines)


def cross_validate(folds: int = 5) -> CrossValidation:
    """Grouped k-fold cross-validation of the whole classifier on ``corpus/real``."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    from .model import (
        Model,
        is_real,
        site_group,
        training_corpus,
        training_vectors,
        training_view,
    )

    records = training_corpus()
    real = [r for r in records if is_real(r)]
    smoke = [r for r in records if not is_real(r)]  # empty unless SMOKE_WEIGHT > 0
    records = real + smoke
    # trained on what every source shows (training_view), tested on the whole document
    taught = training_vectors([SiteDoc.from_record(training_view(r)) for r in records])
    docs = [SiteDoc.from_record(r) for r in real]
    vectors = training_vectors(docs + [SiteDoc.from_record(r) for r in smoke])
    n = len(real)
    groups = [site_group(r["domain"]) for r in real]
    truth = [r["label"] for r in real]
    predicted: list[str] = [UNKNOWN] * n
    confidence = [0.0] * n
    for train, test in GroupKFold(n_splits=folds).split(np.zeros(n), truth, groups):
        rows = list(train) + list(range(n, len(records)))
        model = Model([records[i] for i in rows], vectors=taught[rows], whole=vectors[rows])
        results = classify_docs([docs[i] for i in test], model=model, vectors=vectors[test])
        for i, result in zip(test, results, strict=True):
            predicted[i] = UNKNOWN if result.guess else result.label
            confidence[i] = result.confidence
    report = Report("real corpus, grouped CV", labels(), truth, predicted,
                    [r["domain"] for r in real])
    return CrossValidation(report, confidence, [r.get("lang") or "?" for r in real],
                           [r.get("source", "") for r in real], folds,
                           groups=[str(r.get("group") or "") for r in real])


# Thresholds tried when the section rule is tuned leave-one-site-out, strictest first (so of
# equally good ones the strictest is kept).
SECTION_GRID = [{"min_confidence": c, "min_purposes": k, "max_share": s, "portal_share": q}
                for q in (1.01, 0.66, 0.5) for c in (0.7, 0.6, 0.5, 0.0) for k in (4, 3, 2)
                for s in (0.34, 0.5, 0.67)]
# How much of each section the model reads (its title and this many characters), chosen
# leave-one-site-out with the thresholds; the shipped length first, so a tie keeps it.
TEXT_CHARS_GRID = (400, 150, 1000)
# The least P(news) of the kind reader (classify/kinds.py) for a section to count as news,
# chosen leave-one-site-out with the rest; 0 (the kind not used) first, so a tie keeps it off.
NEWS_KIND_GRID = (0.0, 0.4, 0.45, 0.5, 0.55)


def site_record_doc(record: dict[str, Any]) -> SiteDoc:
    """A multi-page site of ``corpus/sites.jsonl`` as the crawl's signals read it: its pages
    together (the first one's title, the others' as headings), and each section on its own."""
    from .sections import PAGE_TEXT_LIMIT

    pages = ([record["home"]] if record.get("home") else []) + list(record["sections"])
    sections = [SiteDoc(domain=record["domain"], url=p.get("url", ""), title=p.get("title", ""),
                        text=p.get("text", ""), lang=record.get("lang")) for p in
                record["sections"]]
    return SiteDoc(domain=record["domain"], title=pages[0].get("title", ""),
                   headings=[p.get("title", "") for p in pages[1:] if p.get("title")],
                   text="\n".join((p.get("text") or "")[:PAGE_TEXT_LIMIT] for p in pages),
                   lang=record.get("lang"), sections=sections)


@dataclass
class SiteEvaluation:
    """The section rule on real multi-page sites: what each site's pages together read as,
    what its sections read as, and the label with the shipped thresholds and with thresholds
    chosen leave-one-site-out (on the other sites only)."""

    records: list[dict[str, Any]]
    alone: list[str]  # the label without the section rule
    readings: list[list[dict[str, Any]]]
    declared: list[bool]
    shipped: list[str]
    held_out: list[str]
    chosen: list[dict[str, Any]]
    kind_cv: str = ""  # the section kind reader's own grouped CV (classify/kinds.py)

    def format(self) -> str:
        truth = [r["label"] for r in self.records]

        def right(pred: list[str]) -> str:
            ok = sum(t == p for t, p in zip(truth, pred, strict=True))
            portals = [i for i, t in enumerate(truth) if t == "portal"]
            others = [i for i, t in enumerate(truth) if t != "portal"]
            found = sum(pred[i] == "portal" for i in portals)
            wrong = sum(pred[i] == "portal" for i in others)
            return (f"{ok} of {len(truth)} right; portals {found} of {len(portals)}, "
                    f"other sites called portal {wrong} of {len(others)}")

        lines = [f"real multi-page sites: {len(truth)} "
                 f"({sum(t == 'portal' for t in truth)} portals); the model reading them was "
                 "trained without these sites",
                 f"pages together, no section rule: {right(self.alone)}",
                 f"section rule, shipped thresholds: {right(self.shipped)}",
                 f"section rule, thresholds chosen leave-one-site-out: {right(self.held_out)}",
                 "held-out choices of news_kind (the kind reader's least P(news) for a section "
                 "to count as news; 0 = not used): " + ", ".join(
                     f"{k} x{n}" for k, n in Counter(c.get("news_kind", 0.0)
                                                    for c in self.chosen).most_common()),
                 *([self.kind_cv] if self.kind_cv else []),
                 "", "site (truth): without / shipped / leave-one-out; its sections"]
        for i, record in enumerate(self.records):
            read = ", ".join(f"{x['label']} {x['p']:.2f}" + (
                f" (news-like {x['news_kind']:.2f})" if "news_kind" in x else "")
                for x in self.readings[i])
            lines.append(f"  {record['domain']} ({truth[i]}): {self.alone[i]} / "
                         f"{self.shipped[i]} / {self.held_out[i]}; {read}")
        return "\n".join(lines)


def evaluate_sites(path: str | Path) -> SiteEvaluation:
    """Score the section rule on labelled multi-page sites (``corpus/sites.jsonl``).

    The model that reads them is trained on the real corpus without these sites (no
    registrable domain in both), like a fold of the cross-validation."""
    from .kinds import cross_validate_kinds, kind_model
    from .model import Model, embed, site_group, training_corpus, training_vectors, training_view
    from .sections import PORTAL, reading_view, verdict

    records = [r for r in read_corpus(path) if r.get("sections")]
    held = {site_group(r["domain"]) for r in records}
    corpus = training_corpus()
    # the whole corpus's embeddings (cached), then the rows of the sites not held out
    views = training_vectors([SiteDoc.from_record(training_view(r)) for r in corpus])
    whole = training_vectors([SiteDoc.from_record(r) for r in corpus])
    rows = [i for i, r in enumerate(corpus) if site_group(r["domain"]) not in held]
    model = Model([corpus[i] for i in rows], vectors=views[rows], whole=whole[rows])
    docs = [site_record_doc(r) for r in records]
    alone = classify_docs([SiteDoc(**{**d.__dict__, "sections": []}) for d in docs], model=model)
    from .sections import readings as read_sections
    from .sections import rule

    # each section read at every length of TEXT_CHARS_GRID (and the shipped one), in one batch
    lengths = list(dict.fromkeys([rule()["text_chars"], *TEXT_CHARS_GRID]))
    flat = [reading_view(s, chars) for chars in lengths for d in docs for s in d.sections]
    x = embed(flat)
    preds = iter(model.predict(flat, x))
    kinds = iter(kind_model().p_news(x))  # trained on pages of no site here (its corpus note)
    read_at = {chars: [read_sections(d.sections, [next(preds) for _ in d.sections],
                                     [next(kinds) for _ in d.sections])
                       for d in docs] for chars in lengths}
    readings = read_at[rule()["text_chars"]]
    declared = [any(t["where"] == "json-ld" for t in a.evidence.get("terms", []))
                for a in alone]
    grid = [{**g, "text_chars": chars, "news_kind": kind} for kind in NEWS_KIND_GRID
            for chars in TEXT_CHARS_GRID for g in SECTION_GRID]

    def label(i: int, thresholds: dict[str, Any] | None) -> str:
        base = UNKNOWN if alone[i].guess else alone[i].label
        chars = (thresholds or {}).get("text_chars", rule()["text_chars"])
        fired = verdict(read_at[chars][i], thresholds).portal and not declared[i]
        return PORTAL if fired else base

    truth = [r["label"] for r in records]
    shipped = [label(i, None) for i in range(len(records))]
    held_out, chosen = [], []
    for i in range(len(records)):
        rest = [j for j in range(len(records)) if j != i]
        best = max(grid, key=lambda g: sum(label(j, g) == truth[j] for j in rest))
        chosen.append(best)
        held_out.append(label(i, best))
    return SiteEvaluation(records, [UNKNOWN if a.guess else a.label for a in alone], readings,
                          declared, shipped, held_out, chosen, cross_validate_kinds().summary())
