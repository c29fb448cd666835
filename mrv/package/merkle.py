"""Binary Merkle tree over artifact digests, with inclusion proofs.

Construction (algorithm id :data:`MERKLE_ALGORITHM_ID`), exactly:

1. **Leaves.** The ``sha256:<hex>`` digests of the package's artifacts, one per manifest entry
   (duplicates are kept), decoded to their 32 raw bytes and **sorted ascending** (bytewise, which
   is the same order as sorting the lowercase hex strings). The order the caller gives does not
   matter.
2. **Leaf hash.** ``SHA-256(0x00 || digest bytes)``.
3. **Interior node.** ``SHA-256(0x01 || left || right)``. The ``0x00``/``0x01`` prefixes are the
   RFC 6962 domain separation: a leaf can never be passed off as an interior node.
4. **Levels.** Built bottom-up by pairing nodes left to right. When a level has an odd number of
   nodes, the last one is **promoted** unchanged to the next level (it is neither duplicated nor
   hashed again).
5. **Root.** The single node left, written ``sha256:<hex>``. The root of no leaves is
   ``SHA-256("")`` (RFC 6962's hash of the empty list).

Pairing with promotion builds the same tree as RFC 6962 section 2.1 (split at the largest power of
two smaller than n), so the root is the RFC 6962 Merkle Tree Hash of the sorted list of raw
digests, and an inclusion proof is an RFC 9162 section 2.1.3 audit path (sibling hashes from the
leaf up; which side each sibling is on follows from the leaf index and the tree size). Any
implementation of that verification algorithm can check a single artifact against a root without
the rest of the package.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mrv.errors import PackageError

MERKLE_ALGORITHM_ID = "open-dmrv/merkle-sha256-sorted-digests/v1"
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
_PREFIX = "sha256:"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # with fullmatch: 'sha256:' and 64 lowercase hex digits


def _raw(digest: str, *, what: str = "digest") -> bytes:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise PackageError(f"not a sha256 {what}: {digest!r} (expected 'sha256:' and 64 lowercase hex digits)")
    return bytes.fromhex(digest[len(_PREFIX):])


def _fmt(raw: bytes) -> str:
    return _PREFIX + raw.hex()


def leaf_hash(digest: str) -> bytes:
    """``SHA-256(0x00 || raw digest bytes)`` of one artifact digest."""
    return hashlib.sha256(LEAF_PREFIX + _raw(digest)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def sorted_digests(digests: Iterable[str]) -> list[str]:
    """The leaf order: digests validated and sorted (duplicates kept)."""
    items = list(digests)
    for d in items:
        _raw(d)
    return sorted(items)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])  # odd node promoted unchanged
        levels.append(nxt)
    return levels


def merkle_root(digests: Iterable[str]) -> str:
    """The root (``sha256:<hex>``) over ``digests`` in sorted order; see the module docstring."""
    leaves = [leaf_hash(d) for d in sorted_digests(digests)]
    if not leaves:
        return _fmt(hashlib.sha256(b"").digest())
    return _fmt(_levels(leaves)[-1][0])


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """An RFC 9162 inclusion proof: the leaf's position in sorted order, the number of leaves,
    and the sibling hashes from the leaf up to (not including) the root."""

    index: int
    tree_size: int
    path: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": MERKLE_ALGORITHM_ID, "index": self.index, "tree_size": self.tree_size, "path": list(self.path)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MerkleProof:
        try:
            algorithm = data.get("algorithm", MERKLE_ALGORITHM_ID)
            index, size, path = data["index"], data["tree_size"], data["path"]
        except (KeyError, AttributeError, TypeError) as exc:
            raise PackageError(f"malformed Merkle proof: {exc!r}") from None
        if algorithm != MERKLE_ALGORITHM_ID:
            raise PackageError(f"unsupported Merkle proof algorithm {algorithm!r}; expected {MERKLE_ALGORITHM_ID!r}")
        if not (isinstance(index, int) and isinstance(size, int) and isinstance(path, list)):
            raise PackageError("malformed Merkle proof: index and tree_size must be integers and path a list")
        for p in path:
            _raw(p, what="proof hash")
        return cls(index=index, tree_size=size, path=tuple(path))


def merkle_proof(digests: Sequence[str], index: int) -> MerkleProof:
    """Inclusion proof for the leaf at ``index`` of the **sorted** digests (``sorted_digests``).

    Use :func:`proof_for_digest` to address the leaf by its digest instead.
    """
    leaves = [leaf_hash(d) for d in sorted_digests(digests)]
    if not isinstance(index, int) or not 0 <= index < len(leaves):
        raise PackageError(f"leaf index {index!r} out of range for a tree of {len(leaves)} leaves")
    path: list[str] = []
    i = index
    for level in _levels(leaves)[:-1]:
        if i % 2:
            path.append(_fmt(level[i - 1]))
        elif i + 1 < len(level):
            path.append(_fmt(level[i + 1]))
        # else: the last, unpaired node is promoted; no sibling at this level
        i //= 2
    return MerkleProof(index=index, tree_size=len(leaves), path=tuple(path))


def proof_for_digest(digests: Sequence[str], digest: str) -> MerkleProof:
    """Inclusion proof for ``digest`` (its first occurrence in sorted order)."""
    ordered = sorted_digests(digests)
    _raw(digest)
    try:
        return merkle_proof(ordered, ordered.index(digest))
    except ValueError:
        raise PackageError(f"{digest} is not one of the {len(ordered)} digests") from None


def verify_inclusion(*, digest: str, proof: MerkleProof, root: str) -> bool:
    """True when ``digest`` is leaf ``proof.index`` of a tree of ``proof.tree_size`` leaves with
    this ``root`` (RFC 9162 section 2.1.3.2). Malformed input gives False, never an exception."""
    try:
        r = leaf_hash(digest)
        expected = _raw(root, what="root")
        siblings = [_raw(p, what="proof hash") for p in proof.path]
    except PackageError:
        return False
    fn, sn = proof.index, proof.tree_size - 1
    if not (isinstance(fn, int) and isinstance(sn, int)) or fn < 0 or fn > sn:
        return False
    for p in siblings:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected
