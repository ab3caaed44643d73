"""The py3langid model, loaded from an unpacked copy: the crawl's pages and the classifier's
sites both need it, in every process that detects a language.

py3langid ships its model as an xz-compressed ``.npz``; unpacking it costs 0.7-1.3 s of CPU
in each process that loads it (the crawl's analysis worker, the classify stage), and pages
wait for it while a crawl starts.  The arrays it holds are written once, uncompressed, as
``.npy`` files under the user's cache folder, and mapped from there (about 0.07 s); anything
wrong with the copy (no cache folder, a partial write, another py3langid) falls back to
py3langid's own loader.

py3langid walks its byte automaton in a Python loop, one step a byte: on the crawl's pages
that declare no language it was most of the analysis worker's cost.  ``FastIdentifier`` gives
the same answers (the same features, counted in the same order, scored by the same float32
product) for less than half the CPU: the automaton is an Aho-Corasick one (the state after a
byte is the longest suffix of the text so far that is a node, at most ``depth`` bytes long),
so the state at every position is found by walking only the last ``depth`` bytes, all
positions at once in NumPy.  That property is checked for each model (``tests/
test_langmodel.py`` verifies every transition of the installed one); a model whose digest is
not in ``LOCAL_MODELS`` keeps py3langid's own walk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
"""What py3langid's ``load_model`` reads from the model, in its order."""
FORMAT = 2
"""Of the unpacked copy: 2 adds ``ptc32`` (the table as float32) and the model's digest, for
``langwalk``."""

LOCAL_MODELS = {
    # py3langid 0.4.0's model.npz.xz: 104,583 states, every transition checked
    "f4f4a2c3465ca1f081541037f9cac23021d68151c2f709c55ae5eedfca522963": 6,
}
"""Model digest -> the depth of its automaton (longest node), for models whose automaton was
verified to be Aho-Corasick (``local_depth``)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cctld-census"


def identifier() -> Any:  # py3langid has no type hints
    """A ``LanguageIdentifier`` with normalised probabilities, as
    ``LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)`` builds it."""
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    model = Path(MODEL_FILE)
    if not model.is_absolute():
        model = MODEL_DIR / model
    try:
        ptc, pc, classes, nextmove, row, output, ptc32, digest = _unpacked(model)
    except Exception as exc:  # the copy is a cache: never worse than no copy
        log.debug("language model read from the package (%s)", exc)
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    depth = LOCAL_MODELS.get(digest)
    if depth is None:
        log.debug("language model %s not verified: py3langid's own walk", digest[:12])
        return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output,
                                  norm_probs=True, tk_row=row)
    from .langwalk import FastIdentifier

    return FastIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output,
                          norm_probs=True, tk_row=row, depth=depth, ptc32=ptc32)


def _unpacked(model: Path) -> tuple[Any, ...]:
    import numpy as np

    stat = model.stat()
    key = hashlib.sha256(f"{model}:{stat.st_size}:{stat.st_mtime_ns}:{FORMAT}".encode())
    folder = cache_root() / f"langid-{key.hexdigest()[:16]}"
    if not (folder / "done").exists():
        _unpack(model, folder)
    # mapped, not read: the pages are the file's, shared by every process that loads it
    data = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in (*ARRAYS, "ptc32")}
    return (data["ptc"], data["pc"], data["classes"].tolist(), _stdlib_array(data["nextmove"]),
            _stdlib_array(data["nextmove_row"]), data["out_feat"].tolist(), data["ptc32"],
            (folder / "sha256").read_text().strip())


def _unpack(model: Path, folder: Path) -> None:
    """Unpack ``model`` into ``folder`` (written aside, then renamed: readers see all or
    nothing)."""
    import lzma

    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        with tempfile.TemporaryFile(dir=work) as npz:
            with lzma.open(model) as packed:
                shutil.copyfileobj(packed, npz, length=1 << 20)
            npz.seek(0)
            with np.load(npz, allow_pickle=False) as data:
                for name in ARRAYS:
                    np.save(work / f"{name}.npy", data[name], allow_pickle=False)
                # float16 -> float32 is exact; converting the rows a page needs cost more
                # than the rest of its scoring
                np.save(work / "ptc32.npy", data["ptc"].astype(np.float32), allow_pickle=False)
        (work / "sha256").write_text(hashlib.sha256(model.read_bytes()).hexdigest())
        (work / "done").touch()
        with contextlib.suppress(OSError):  # another process unpacked it first
            work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stdlib_array(values: Any) -> array:
    """An unsigned NumPy array as the stdlib ``array`` py3langid's tokenizer indexes."""
    import numpy as np

    codes = {2: "H", 4: "I", 8: "L"}
    out = array(codes[values.dtype.itemsize])
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out
