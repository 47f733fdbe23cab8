"""Which files changed, cheaply: a file's digest is reused while its stat is unchanged.

Like git's index, a cached digest is trusted only when the file's size, modification
time, change time, inode and device all match what they were when it was hashed. The
change time (``st_ctime``) cannot be set by a program: restoring a file's modification
time after editing it in place (``touch -d``, ``os.utime``) still changes its ctime, so
such an edit is noticed.

Timestamps have a granularity (the kernel's clock tick, a few milliseconds, on Linux
file systems with nanosecond timestamps; a second or two on others): a file written
again within the same tick as the write before keeps its timestamps. So a digest
computed too soon after the file was last written (:func:`racy_margin`) is "racy"
(git's word) and is not trusted by later processes: the next plan hashes that file
again. Within one plan-and-run the digests just computed are reused as they are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

COARSE_NS = 2_000_000_000  # file systems keeping whole seconds (FAT keeps 2 s)
FINE_NS = 100_000_000  # ten times the coarsest kernel clock tick (HZ=100)
_RACY = "?"  # suffix of the stamp of a racily hashed file: it never matches a live stamp

Entry = tuple[int, str, str]  # (size, stamp, digest)


def stamp(st: os.stat_result) -> str:
    """What must stay the same for a file's cached digest to be trusted."""
    return f"{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"


def racy_margin(st: os.stat_result) -> int:
    """How long after its last write a file's timestamps may still not tell a new write."""
    whole = st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0
    return COARSE_NS if whole else FINE_NS


class FileDigests:
    """File digests by path: the ones kept in the state store plus this run's."""

    def __init__(self, stored: dict[str, Entry] | None = None) -> None:
        self.stored: dict[str, Entry] = dict(stored or {})
        self.fresh: dict[str, Entry] = {}  # hashed or confirmed by this process

    def digest(self, key: str, st: os.stat_result, compute: Callable[[], str]) -> str:
        """The digest of the file ``key`` whose stat is ``st``, hashing it only if needed."""
        live = stamp(st)
        for entry in (self.fresh.get(key), self.stored.get(key)):
            if entry is not None and entry[0] == st.st_size and entry[1] == live:
                return entry[2]
        started = time.time_ns()
        digest = compute()
        racy = started - max(st.st_mtime_ns, st.st_ctime_ns) < racy_margin(st)
        self.fresh[key] = (st.st_size, live, digest)
        self.stored[key] = (st.st_size, live + _RACY if racy else live, digest)
        return digest

    def copy(self) -> FileDigests:
        """An independent copy (each source loads in its own thread)."""
        out = FileDigests(self.stored)
        out.fresh = dict(self.fresh)
        return out

    def changed(self, before: dict[str, Entry]) -> dict[str, Entry]:
        """Entries to write back to the state store (new or different from ``before``)."""
        return {k: v for k, v in self.stored.items() if before.get(k) != v}
