"""py3langid's classifier with its byte automaton walked by NumPy (``langmodel`` builds it).

py3langid counts its features with a Python loop over the text's bytes (``visit_counts``):
one dictionary step per byte, about 0.25 ms for the 2,000 characters the crawl gives it, and
then converts the float16 rows of those features to float32 for its product.  Its automaton
is an Aho-Corasick one: after each byte the state is the longest suffix of the text so far
that is a node, and no node is longer than ``depth`` bytes, so the state at a position only
depends on the ``depth`` bytes that end there.  ``walk`` therefore starts every position at
the root and takes ``depth`` steps for all positions at once.  The features are then counted
by ``Counter`` in the order py3langid's loop meets them, and scored by the same float32
product over a float32 copy of the table: the same numbers in the same order, so the same
answers, bit for bit (``tests/test_langmodel.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from py3langid.langid import LanguageIdentifier


class FastIdentifier(LanguageIdentifier):
    """A ``LanguageIdentifier`` whose ``_raw_score`` is computed without a Python loop per
    byte; everything else (encoding, normalisation, aliases, ``set_languages``) is
    py3langid's."""

    __slots__ = ("_depth", "_next", "_out", "_ptc32", "_root_row", "_rows")

    def __init__(self, *args: Any, depth: int, ptc32: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._depth = depth
        self._next = np.frombuffer(self.tk_nextmove, dtype=f"u{self.tk_nextmove.itemsize}")
        self._rows = np.asarray(self.tk_row, dtype=np.int64) << 8
        self._root_row = int(self._rows[0])
        self._out = np.asarray(self.tk_output, dtype=np.int32)
        self._ptc32 = np.asarray(ptc32)  # a memmap's own indexing costs more than the rows

    def walk(self, text: bytes) -> Any:
        """The feature (or -1) of the state after each byte of ``text``, as an array."""
        data = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
        n = len(data)
        row = np.full(n, self._root_row, dtype=np.int64)
        for k in range(min(self._depth, n + 1) - 1, 0, -1):
            # the step k bytes before each position (positions before byte k have none)
            row[k:] = self._rows.take(self._next.take(row[k:] + data[:n - k]))
        return self._out.take(self._next.take(row + data))

    def visits(self, text: bytes) -> Counter[int] | None:
        """``visit_counts``: each feature met and how often, in the order first met."""
        features = self.walk(text)
        features = features[features >= 0]
        return Counter(features.tolist()) if len(features) else None

    def _raw_score(self, text: bytes) -> Any:
        visits = self.visits(text)
        if not visits:
            return super()._raw_score(text)  # py3langid's answer for featureless input
        table = self._ptc32 if self.nb_ptc is self._full_model[0] else self.nb_ptc
        return self._sparse_score(visits, table)


def local_depth(identifier: LanguageIdentifier) -> int | None:
    """The depth of ``identifier``'s automaton if it is Aho-Corasick, else None: what an entry
    of ``langmodel.LOCAL_MODELS`` needs (about 10 s; run by the tests for the installed model).

    Every state gets the string that first reaches it from the root (breadth first); then for
    every state and byte the transition must lead to the longest suffix of that string plus
    the byte that is some state's string.
    """
    nextmove = np.frombuffer(identifier.tk_nextmove,
                             dtype=f"u{identifier.tk_nextmove.itemsize}").astype(np.int64)
    rows = np.asarray(identifier.tk_row, dtype=np.int64) << 8
    states = len(rows)
    bytes_ = np.arange(256, dtype=np.int64)
    depth = np.full(states, -1, dtype=np.int64)
    code = np.zeros(states, dtype=np.int64)  # the string, big-endian, one byte each
    depth[0], front = 0, np.array([0])
    while len(front):
        to = nextmove[rows[front][:, None] + bytes_].ravel()
        new = depth[to] == -1
        reached, first = np.unique(to[new], return_index=True)
        source = np.repeat(front, 256)[new][first]
        depth[reached] = depth[source] + 1
        code[reached] = (code[source] << 8) | np.tile(bytes_, len(front))[new][first]
        front = reached
    longest = int(depth.max())
    if (depth < 0).any() or longest > 6:  # unreachable states; a string and a byte: 56 bits
        return None
    keys = (depth << 56) | code
    order = np.argsort(keys)
    sorted_keys = keys[order]
    for low in range(0, states, 2048):
        chunk = np.arange(low, min(states, low + 2048))
        to = nextmove[rows[chunk][:, None] + bytes_].ravel()
        text = ((code[chunk][:, None] << 8) | bytes_).ravel()
        length = np.repeat(depth[chunk] + 1, 256)
        expected = np.zeros(len(to), dtype=np.int64)  # the root when no suffix is a state
        found = np.zeros(len(to), dtype=bool)
        for n in range(longest + 1, 0, -1):
            key = (n << 56) | (text & ((1 << (8 * n)) - 1))
            at = np.minimum(np.searchsorted(sorted_keys, key), states - 1)
            hit = (length >= n) & ~found & (sorted_keys[at] == key)
            expected[hit] = order[at[hit]]
            found |= hit
        if (expected != to).any():
            return None
    return longest
