"""The py3langid model, loaded from an unpacked copy: the crawl's pages and the classifier's
sites both need it, in every process that detects a language.

py3langid ships its model as an xz-compressed ``.npz``; unpacking it costs 0.7-1.3 s of CPU
in each process that loads it (the crawl's analysis worker, the classify stage), and pages
wait for it while a crawl starts.  The arrays it holds are written once, uncompressed, as
``.npy`` files under the user's cache folder, and mapped from there (about 0.07 s); anything
wrong with the copy (no cache folder, a partial write, another py3langid) falls back to
py3langid's own loader.
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
        ptc, pc, classes, nextmove, row, output = _unpacked(model)
    except Exception as exc:  # the copy is a cache: never worse than no copy
        log.debug("language model read from the package (%s)", exc)
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output,
                              norm_probs=True, tk_row=row)


def _unpacked(model: Path) -> tuple[Any, ...]:
    import numpy as np

    stat = model.stat()
    key = hashlib.sha256(f"{model}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    folder = cache_root() / f"langid-{key[:16]}"
    if not (folder / "done").exists():
        _unpack(model, folder)
    # mapped, not read: the pages are the file's, shared by every process that loads it
    data = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in ARRAYS}
    return (data["ptc"], data["pc"], data["classes"].tolist(), _stdlib_array(data["nextmove"]),
            _stdlib_array(data["nextmove_row"]), data["out_feat"].tolist())


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
