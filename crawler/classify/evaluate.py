"""How the classifier does on a labelled set it was not trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
