"""Fingerprints: what makes a build of a node what it is.

A node's fingerprint combines its code fingerprint (normalised AST plus the
config that changes its output; computed by the loader) with the *content
identity* of each upstream: the order-independent content fingerprint of the
upstream's built table where known. Because upstream content, not upstream
code, is hashed in, a rebuilt upstream whose rows did not change leaves its
downstream fingerprints, and so their physical tables, as they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def combine(kind: str, code_fp: str, upstream: Mapping[str, str], extra: str = "") -> str:
    """The fingerprint of a node from its code and its upstreams' identities."""
    h = hashlib.sha256()
    h.update(f"{kind}\0{code_fp}\0{extra}\0".encode())
    for name in sorted(upstream):
        h.update(f"{name}={upstream[name]}\n".encode())
    return h.hexdigest()


def physical_name(node: str, fingerprint: str) -> str:
    """The content-addressed name of a node's physical table."""
    return f"{node}__{fingerprint[:12]}"
