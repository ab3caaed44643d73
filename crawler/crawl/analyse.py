"""What the spider learns from one fetched page, as one pure function a worker process can run.

Extraction (decode, text, language), the script sandbox and the requisite scan cost about
1.5 ms a page of CPU, as much as Scrapy spends fetching it; in the reactor's process they
held the crawl to one core.  ``analyse`` takes the page as plain data (URL, status, headers,
body and the scripts it needs) and hands back plain data, so ``workers.Workers`` can run it
in another process while the reactor goes on fetching and writing.  Run in the reactor's
process instead (``CENSUS_EXTRACT_WORKERS = 0``), it gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .extract import MAX_BODY, Extracted, extract
from .extract.links import absolute
from .requisites import page_requisites
from .scripts import navigations, needs_engine

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")


@dataclass
class PageJob:
    """A fetched page as the spider has it, without Scrapy objects (they stay behind)."""

    url: str
    status: int
    headers: dict[str, str]
    """Header names lower-cased, repeated values joined by ``, ``."""
    body: bytes
    text_response: bool
    """Scrapy took the body for text (``TextResponse``): requisites are looked for in it."""
    raw_headers: dict[bytes, list[bytes]] = field(default_factory=dict)
    """The response's headers as Scrapy has them, to decode the body exactly as its
    ``response.text`` does."""
    scripts: dict[str, str | None] | None = None
    """The page's same-site scripts by URL (fetched first), or None: no script sandbox."""


@dataclass
class Analysis:
    content_type: str
    is_html: bool
    page: Extracted
    script_links: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(url, host, how, text)`` of the places the page's scripts and forms lead to."""
    requisites: list[tuple[str, str]] = field(default_factory=list)
    """``(url, kind)`` of what the page needs to render (images, stylesheets...)."""


def content_type_of(headers: dict[str, str]) -> tuple[str, bool]:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type, content_type in HTML_TYPES or content_type.endswith("+xml")


def analyse(job: PageJob) -> Analysis:
    """Everything the census keeps about a page and where it leads; never raises on the body
    (``extract`` keeps its contract, and the sandbox has its own bounds)."""
    content_type, is_html = content_type_of(job.headers)
    page = extract(job.body, job.url, job.headers) if is_html else Extracted()
    out = Analysis(content_type, is_html, page)
    if not is_html:
        return out
    if job.scripts is not None and needs_engine(job.body[:MAX_BODY]):
        out.script_links = script_links(job, page.charset)
    if job.status < 400 and job.text_response:
        out.requisites = page_requisites(response_text(job)[:MAX_BODY], job.url)
    return out


def analyse_safely(job: PageJob) -> Analysis:
    """``analyse`` in a helper process: a bug it raises on (not the page: ``extract`` keeps
    its contract) becomes the page's ``extract_error``, and the process goes on."""
    try:
        return analyse(job)
    except Exception as exc:
        content_type, is_html = content_type_of(job.headers)
        return Analysis(content_type, is_html, Extracted(
            extract_error=f"worker: {type(exc).__name__}: {exc}"[:500]))


def script_links(job: PageJob, charset: str | None) -> list[tuple[str, str, str, str]]:
    """Links the page's scripts, handlers and GET forms lead to (``scripts.py``)."""
    body = job.body[:MAX_BODY]
    try:
        text = body.decode(charset or "utf-8", "replace")
    except LookupError:  # KPS 9566 has no codec; URLs are ASCII
        text = body.decode("latin-1")
    out = []
    for nav in navigations(text, job.url, job.scripts):
        resolved = absolute(job.url, nav.url)
        if resolved:
            out.append((resolved[0], resolved[1], nav.how, nav.text))
    return out


def response_text(job: PageJob) -> str:
    """The body decoded as Scrapy's ``response.text`` decodes it.

    The same w3lib calls as ``TextResponse`` makes, in its order (a byte order mark, the
    header's charset, the body's declaration, else w3lib's inference with Scrapy's
    detector), without building a ``TextResponse``: importing Scrapy cost each analysis
    worker 0.2 s of CPU at its start, while the crawl process starts on the same cores.
    ``tests/crawl/test_analyse.py`` holds it to ``TextResponse`` on real responses.
    """
    from w3lib.encoding import (
        html_body_declared_encoding,
        html_to_unicode,
        http_content_type_encoding,
        read_bom,
    )

    body = job.body
    content_type = ""
    for name, values in job.raw_headers.items():
        if name.lower() == b"content-type" and values:
            content_type = values[-1].decode("latin-1")  # Scrapy's Headers: the last one
    declared = (read_bom(body)[0] or http_content_type_encoding(content_type)
                or html_body_declared_encoding(body))
    if declared:
        return html_to_unicode(f"charset={declared}", body)[1]
    return html_to_unicode(content_type, body, auto_detect_fun=_detect_encoding,
                           default_encoding=TEXT_DEFAULT_ENCODING)[1]


TEXT_DEFAULT_ENCODING = "ascii"
"""``TextResponse._DEFAULT_ENCODING``."""


def _detect_encoding(body: bytes) -> str | None:
    """``TextResponse._auto_detect_fun``: ASCII, UTF-8, else charset-normalizer's guess."""
    from w3lib.encoding import resolve_encoding

    for encoding in (TEXT_DEFAULT_ENCODING, "utf-8"):
        try:
            body.decode(encoding)
        except UnicodeError:
            continue
        return resolve_encoding(encoding)
    from charset_normalizer import from_bytes

    match = from_bytes(body).best()
    return resolve_encoding(match.encoding) if match else None


def warm() -> None:
    """Load what the first pages would otherwise wait for: the language model, and the
    decoding of ``response_text``."""
    import w3lib.encoding  # noqa: F401

    from .extract.language import _identifier

    _identifier()
