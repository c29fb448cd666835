"""Merkle tree over artifact digests: hand-computed small trees, odd counts, sorting, inclusion proofs.

Expected values are computed here from first principles with hashlib (leaf = SHA-256(0x00 || d),
node = SHA-256(0x01 || l || r)), independently of the code under test.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from mrv.errors import PackageError
from mrv.package.merkle import (
    MerkleProof,
    merkle_proof,
    merkle_root,
    proof_for_digest,
    sorted_digests,
    verify_inclusion,
)


def H(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def raw(d: str) -> bytes:
    return bytes.fromhex(d.removeprefix("sha256:"))


def L(d: str) -> bytes:
    return H(b"\x00" + raw(d))


def N(left: bytes, right: bytes) -> bytes:
    return H(b"\x01" + left + right)


def fmt(b: bytes) -> str:
    return "sha256:" + b.hex()


def rfc6962_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, recursively: split at the largest power of two smaller than n."""
    n = len(leaves)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return N(rfc6962_mth(leaves[:k]), rfc6962_mth(leaves[k:]))


# Five digests; sorted order is fixed by their hex, computed once here.
DIGESTS = [digest_of(t) for t in ("alpha", "bravo", "charlie", "delta", "echo")]
S = sorted(DIGESTS)


def test_empty_and_single_leaf():
    assert merkle_root([]) == fmt(H(b""))
    assert merkle_root([S[0]]) == fmt(L(S[0]))
    # a leaf hash is never the bare digest (domain separation)
    assert merkle_root([S[0]]) != S[0]


def test_two_three_four_five_leaves_by_hand():
    a, b, c, d, e = (L(x) for x in S)
    assert merkle_root(S[:2]) == fmt(N(a, b))
    # three: (a b) pair, c promoted unchanged
    assert merkle_root(S[:3]) == fmt(N(N(a, b), c))
    assert merkle_root(S[:4]) == fmt(N(N(a, b), N(c, d)))
    # five: level 1 = [ab, cd, e]; level 2 = [abcd, e]; root = H(abcd, e)
    assert merkle_root(S) == fmt(N(N(N(a, b), N(c, d)), e))


def test_odd_node_is_promoted_not_duplicated():
    a, b, c = (L(x) for x in S[:3])
    assert merkle_root(S[:3]) != fmt(N(N(a, b), N(c, c)))  # Bitcoin-style duplication is NOT used


def test_order_independent_because_leaves_are_sorted():
    rng = random.Random(1)
    for _ in range(10):
        shuffled = DIGESTS[:]
        rng.shuffle(shuffled)
        assert merkle_root(shuffled) == merkle_root(S)
    assert sorted_digests(reversed(DIGESTS)) == S


def test_duplicates_are_kept_as_leaves():
    a = L(S[0])
    assert merkle_root([S[0], S[0]]) == fmt(N(a, a))
    assert merkle_root([S[0], S[0]]) != merkle_root([S[0]])


def test_same_as_rfc6962_tree_hash_for_many_sizes():
    for n in range(0, 41):
        ds = sorted(digest_of(f"leaf-{i}") for i in range(n))
        assert merkle_root(ds) == fmt(rfc6962_mth([raw(d) for d in ds])), n


def test_rejects_malformed_digests():
    for bad in ["abc", "sha256:" + "A" * 64, "sha256:" + "0" * 63, "md5:" + "0" * 64, 42]:
        with pytest.raises(PackageError, match="not a sha256 digest"):
            merkle_root([S[0], bad])  # type: ignore[list-item]


def test_inclusion_proofs_by_hand():
    a, b, c, d, e = (L(x) for x in S)
    # tree of 3: c's sibling at level 0 is missing (promoted), at level 1 it is (ab)
    assert merkle_proof(S[:3], 2) == MerkleProof(index=2, tree_size=3, path=(fmt(N(a, b)),))
    assert merkle_proof(S[:3], 0).path == (fmt(b), fmt(c))
    # tree of 5: e is promoted twice, then paired with abcd
    assert merkle_proof(S, 4).path == (fmt(N(N(a, b), N(c, d))),)
    assert merkle_proof(S, 3).path == (fmt(c), fmt(N(a, b)), fmt(e))


def test_every_proof_verifies_and_wrong_inputs_do_not():
    for n in range(1, 34):
        ds = sorted(digest_of(f"x{i}") for i in range(n))
        root = merkle_root(ds)
        other_root = merkle_root(ds + [digest_of("extra")])
        for i, d in enumerate(ds):
            proof = merkle_proof(ds, i)
            assert verify_inclusion(digest=d, proof=proof, root=root), (n, i)
            assert not verify_inclusion(digest=digest_of("not in tree"), proof=proof, root=root)
            assert not verify_inclusion(digest=d, proof=proof, root=other_root)
            if n > 1:
                wrong_index = MerkleProof((i + 1) % n, n, proof.path)
                assert not verify_inclusion(digest=d, proof=wrong_index, root=root)
                # (a larger tree_size can give the same walk: RFC 9162 authenticates the root, and
                # the leaf is in the tree with that root either way; an impossible one must fail)
                assert not verify_inclusion(digest=d, proof=MerkleProof(i, i, proof.path), root=root)
                bent = list(proof.path)
                bent[0] = fmt(H(b"tampered"))
                assert not verify_inclusion(digest=d, proof=MerkleProof(i, n, tuple(bent)), root=root)
                assert not verify_inclusion(digest=d, proof=MerkleProof(i, n, proof.path[:-1]), root=root)


def test_proof_for_digest_and_json_round_trip():
    root = merkle_root(DIGESTS)
    target = digest_of("charlie")
    proof = proof_for_digest(DIGESTS, target)  # input order does not matter
    assert proof.index == S.index(target)
    again = MerkleProof.from_dict(json.loads(json.dumps(proof.to_dict())))
    assert again == proof
    assert verify_inclusion(digest=target, proof=again, root=root)
    with pytest.raises(PackageError, match="is not one of"):
        proof_for_digest(DIGESTS, digest_of("zulu"))
    with pytest.raises(PackageError, match="out of range"):
        merkle_proof(DIGESTS, 5)


def test_verify_inclusion_never_raises_on_garbage():
    proof = merkle_proof(S, 1)
    assert not verify_inclusion(digest="garbage", proof=proof, root=merkle_root(S))
    assert not verify_inclusion(digest=S[1], proof=proof, root="sha256:xyz")
    assert not verify_inclusion(digest=S[1], proof=MerkleProof(-1, 5, proof.path), root=merkle_root(S))
    assert not verify_inclusion(digest=S[1], proof=MerkleProof(1, 5, ("nope",)), root=merkle_root(S))
