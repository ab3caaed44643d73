"""The real corpus's rules: every document names its source, its licence and why it has its
label, and no registrable domain appears twice, so grouped cross-validation never sees one site
on both sides.  ``python -m crawler.classify.corpus IN OUT`` copies a harvested file into
``corpus/real`` keeping only the lines that follow the rules, and says which it dropped.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cues import taxonomy
from .model import real_corpus, site_group

log = logging.getLogger(__name__)

# Saved pages of web-extraction libraries' tests: reserved for an independent check, never
# trained or tuned on (issue 11).
RESERVED = ("trafilatura", "htmldate", "readability", "newspaper", "goose", "postlight",
            "mercury-parser")
# Characters of title and text below which a document says too little (a CJK character
# counts twice: it says about as much as two Latin letters).
MIN_TEXT = 80
# Page kinds a harvester may record; only training weights read it, the crawl has no such field.
PAGE_KINDS = {"home", "section", "article", "other"}


def problem(record: Any) -> str | None:
    """Why ``record`` may not be in the real corpus, or None when it may."""
    if not isinstance(record, dict):
        return "not a JSON object"
    labels = set(taxonomy()) - {"unknown"}
    for key in ("domain", "lang", "label", "text", "source", "licence", "reason"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"no {key}"
    if record["label"] not in labels:
        return f"label {record['label']!r} not in the taxonomy"
    if not record["source"].startswith(("github:", "web page http")):
        return "source is neither a repository path nor a web page address"
    if any(name in record["source"].lower() for name in RESERVED):
        return "source is a reserved extraction-library test page"
    if _size(str(record.get("title") or "") + record["text"]) < MIN_TEXT:
        return "under 80 characters of text"
    if record.get("page_kind", "home") not in PAGE_KINDS:
        return f"page_kind {record['page_kind']!r}"
    return None


def _size(text: str) -> int:
    return len(text) + sum("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3" for c in text)


def problems(records: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(domain, why) of every document that breaks a rule, a repeated site included."""
    seen: set[str] = set()
    found = []
    for record in records:
        why = problem(record)
        if why is None:
            group = site_group(record["domain"])
            if group in seen:
                why = f"site {group} already in the corpus"
            seen.add(group)
        if why:
            found.append((str(record.get("domain", "?") if isinstance(record, dict) else "?"),
                          why))
    return found


def admit(lines: Iterable[str], existing: Iterable[dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The documents of ``lines`` that may join ``existing``, and (line number, why) of the rest."""
    seen = {site_group(r["domain"]) for r in existing}
    kept, dropped = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped.append((number, "not JSON"))
            continue
        why = problem(record)
        if why is None:
            record["domain"] = record["domain"].strip().lower().removeprefix("www.")
            group = site_group(record["domain"])
            why = f"site {group} already in the corpus" if group in seen else None
            seen.add(group)
        if why:
            dropped.append((number, why))
        else:
            kept.append(record)
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    """Copy a harvested JSON-lines file to ``corpus/real/<name>``, dropping bad lines."""
    source, target = (argv or sys.argv[1:])[:2]
    out = Path(target)
    own = _read(out) if out.exists() else []
    others = [r for r in real_corpus() if r not in own]
    kept, dropped = admit(Path(source).read_text(encoding="utf-8").splitlines(), others)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
                   encoding="utf-8")
    print(f"{source}: kept {len(kept)}, dropped {len(dropped)}")
    for number, why in dropped:
        print(f"  line {number}: {why}")
    return 0


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
