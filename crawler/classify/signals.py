"""What the classifier reads of each site of a run: its site rows, its pages' titles,
descriptions, headings and text, the anchor text of its links, and its top-level sections
each on its own (``sections``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlite_utils

from .model import SiteDoc
from .sections import PAGE_TEXT_LIMIT, as_list, section_pages

SITE_TEXT_LIMIT = 12000


def site_docs(db: sqlite_utils.Database, run_id: int) -> list[SiteDoc]:
    """One document per site of the run, from its site row and its pages."""
    pages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # a revisit keeps no text of its own: it is in the page revisited, maybe of an earlier run;
    # a site's pages by depth and URL, not in the order they were stored, which a crawl killed
    # and resumed changes (the pages lost at the kill are stored last), and with it the text
    # that fits in SITE_TEXT_LIMIT and the label;
    # an error page ("Not Found", a server's default) is the server's words, not the site's
    for row in db.execute_returning_dicts(
        "SELECT p.id, p.domain, p.title, p.lang, COALESCE(p.text, r.text) AS text, "
        "p.description, p.headings, COALESCE(p.site_name, r.site_name) AS site_name, "
        "COALESCE(p.schema_types, r.schema_types) AS schema_types "
        "FROM pages p LEFT JOIN pages r ON r.id = p.revisit_of "
        "WHERE p.run_id = ? AND NOT COALESCE(p.http_status >= 400, 0) "
        "ORDER BY p.domain, p.depth, p.url, p.id", [run_id]
    ):
        pages[row["domain"]].append(row)
    anchors: dict[str, list[str]] = defaultdict(list)
    for domain, anchor in db.execute(
        "SELECT p.domain, l.anchor FROM links l JOIN pages p ON p.id = l.page_id "
        "WHERE l.run_id = ? AND l.anchor IS NOT NULL AND l.anchor != '' "
        "AND NOT COALESCE(p.http_status >= 400, 0)", [run_id]
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
            if row["site_name"] and not doc.site_name:
                doc.site_name = row["site_name"]
            for kind in as_list(row["schema_types"]) if row["schema_types"] else []:
                if kind not in doc.schema_types and len(doc.schema_types) < 20:
                    doc.schema_types.append(kind)
            if row["headings"] and len(doc.headings) < 100:
                doc.headings.extend(as_list(row["headings"])[:20])
            if row["text"] and size < SITE_TEXT_LIMIT:
                texts.append(row["text"][:PAGE_TEXT_LIMIT])
                size += len(texts[-1])
            doc.lang = doc.lang or row["lang"]
        doc.text = "\n".join(texts)
        doc.anchors = anchors.get(domain, [])
        if texts or doc.title:
            doc.alive = True
    for domain, found in section_pages(db, run_id).items():
        if domain in docs:
            docs[domain].sections = found
    return list(docs.values())
