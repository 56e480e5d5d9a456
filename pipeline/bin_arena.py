"""One buffer for the bin numbers of a reply's histograms, so that the store writes them without a copy.

A snapshot's Parquet `values` column needs every histogram's numbers in one buffer. Decoded one by one
into arrays of their own, they were copied into one (~1.5 ms for the EMC-like reply's 10.8 MB: a sixth
of what building the table and encoding it cost). Instead, the fast decoder writes each histogram's
numbers straight into an arena, one after the other (`BinArena.take`), and `store_schema` hands that
buffer to Arrow as it is (`numbers_of`) when the rows to store are exactly the arena's arrays in the
arena's order: the usual reply, whose objects come sorted by name and are all stored. Anything else (an
object refused, one decoded by the generic path, a reply in another order) is copied as before.

Each array is a view of the arena: one histogram kept alive keeps its reply's whole arena alive (the
receivers keep none once stored). Copy a histogram's numbers to keep them alone.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa


@dataclass
class _Handed:
    """What an arena handed out, kept while any of its arrays lives. It holds no array itself (only
    weak references), so the arena's memory goes with its last array."""

    buffer: pa.Buffer
    used: int = 0
    arrays: list[weakref.ref[np.ndarray]] = field(default_factory=list)


# By the id of an arena's whole array, which is every handed-out array's `.base`: the store finds the
# arena of a reply's arrays without being told about it. An entry leaves when that array dies.
_HANDED: dict[int, _Handed] = {}


class BinArena:
    """Room for `capacity` float64 numbers, handed out in order; see the module doc."""

    def __init__(self, capacity: int) -> None:
        # Arrow's memory pool keeps freed memory for the next reply: a fresh numpy array of MBs would be
        # new pages from the kernel every time (page faults cost more than the copy saved).
        buffer = pa.allocate_buffer(max(0, capacity) * 8)
        self._whole = np.frombuffer(buffer, np.float64)
        self._handed = _HANDED[id(self._whole)] = _Handed(buffer)
        weakref.finalize(self._whole, _HANDED.pop, id(self._whole), None)

    def take(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The next numbers, as a writable C-ordered array of `shape`; None when they do not fit."""
        size = 1
        for length in shape:
            size *= length
        handed = self._handed
        start = handed.used
        if start + size > self._whole.size:
            return None
        handed.used = start + size
        array = self._whole[start : handed.used].reshape(shape)
        handed.arrays.append(weakref.ref(array))
        return array


def numbers_of(arrays: list[np.ndarray | None]) -> pa.Array | None:
    """A float64 Arrow array over the numbers of `arrays` in their order, without a copy, if they are
    every array one arena handed out, in the order it did; None otherwise."""
    base = getattr(arrays[0], "base", None) if arrays else None
    handed = _HANDED.get(id(base)) if base is not None else None
    if handed is None or len(arrays) != len(handed.arrays):
        return None
    for array, handed_array in zip(arrays, handed.arrays, strict=True):
        if handed_array() is not array:
            return None
    return pa.Array.from_buffers(pa.float64(), handed.used, [None, handed.buffer])


class ReplyArenas:
    """The arenas of one reply: contents, and sums of squared weights (weighted fills) apart, so each
    column's numbers lie together. Sized from the reply's bytes: an object's numbers take at least 4
    bytes each on the wire (TH*F: float32) and 8 in an arena; objects of 1- or 2-byte bins may not fit,
    and are then decoded into arrays of their own."""

    def __init__(self, payload_bytes: int) -> None:
        self.capacity = payload_bytes // 4
        self.values = BinArena(self.capacity)
        self._variances: BinArena | None = None

    @property
    def variances(self) -> BinArena:
        if self._variances is None:  # unweighted replies (the usual ones) never need it
            self._variances = BinArena(self.capacity)
        return self._variances
