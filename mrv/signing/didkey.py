"""``did:key`` for Ed25519 keys, Multikey encoding and base58btc multibase.

A ``did:key`` Ed25519 identifier is ``did:key:`` followed by the public key as a Multikey:
the multibase base58btc prefix ``z`` over the bytes ``0xed 0x01`` (the unsigned-varint multicodec
``ed25519-pub``) and the 32 raw public-key bytes, so every one starts with ``z6Mk``. Its single
verification method is ``<did>#<multikey>`` (https://w3c-ccg.github.io/did-key-spec/).

Secret keys use the same scheme with the multicodec ``ed25519-priv`` (``0x1300``, varint bytes
``0x80 0x26``) over the 32-byte seed, which is how the W3C test vectors and the Multikey
``secretKeyMultibase`` property carry them.

Base58btc (the Bitcoin alphabet) is implemented here: it is twenty lines, and a dependency for it
would be larger than the code.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mrv.errors import DIDKeyError

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}

MULTIBASE_BASE58BTC = "z"
ED25519_PUB_HEADER = b"\xed\x01"  # multicodec ed25519-pub (0xed) as unsigned varint
ED25519_PRIV_HEADER = b"\x80\x26"  # multicodec ed25519-priv (0x1300) as unsigned varint
DID_KEY_PREFIX = "did:key:"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
DID_CONTEXT = "https://www.w3.org/ns/did/v1"


def b58encode(data: bytes) -> str:
    """Base58btc without multibase prefix; leading zero bytes become leading ``1``s."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, rem = divmod(n, 58)
        out.append(B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`DIDKeyError` on a character outside the alphabet."""
    n = 0
    for pos, ch in enumerate(text):
        try:
            n = n * 58 + _B58_INDEX[ch]
        except KeyError:
            raise DIDKeyError(f"invalid base58btc character {ch!r} at position {pos}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def multibase_encode(data: bytes) -> str:
    """Multibase base58btc: ``z`` + base58btc(data)."""
    return MULTIBASE_BASE58BTC + b58encode(data)


def multibase_decode(value: str) -> bytes:
    """Decode a multibase base58btc string (must start with ``z``; other bases are refused)."""
    if not isinstance(value, str) or not value.startswith(MULTIBASE_BASE58BTC):
        raise DIDKeyError(f"not a multibase base58btc value (must start with 'z'): {value!r:.80}")
    return b58decode(value[1:])


def encode_public_multikey(public_key: Ed25519PublicKey) -> str:
    """Ed25519 public key -> Multikey string (``z6Mk...``)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return multibase_encode(ED25519_PUB_HEADER + raw)


def decode_public_multikey(multikey: str) -> Ed25519PublicKey:
    """Multikey string -> Ed25519 public key. Only Ed25519 (``0xed01``) is accepted.

    Decoded keys are cached (immutable objects; a verifier sees the same few issuers over and
    over, and each verification decodes its key twice); errors are not cached."""
    if type(multikey) is str:
        return _decode_public_multikey_cached(multikey)
    return _decode_public_multikey(multikey)


def _decode_public_multikey(multikey: str) -> Ed25519PublicKey:
    raw = multibase_decode(multikey)
    if raw[:2] != ED25519_PUB_HEADER:
        raise DIDKeyError(
            f"multikey {multikey!r:.60} is not an Ed25519 public key (multicodec header {raw[:2].hex()}, expected ed01)"
        )
    if len(raw) != 34:
        raise DIDKeyError(f"Ed25519 multikey must hold 32 key bytes, got {len(raw) - 2}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw[2:])
    except ValueError as exc:  # pragma: no cover - every 32-byte string is accepted by cryptography
        raise DIDKeyError(f"invalid Ed25519 public key in {multikey!r:.60}: {exc}") from None


_decode_public_multikey_cached = functools.lru_cache(maxsize=4096)(_decode_public_multikey)


def encode_secret_multikey(seed: bytes) -> str:
    """32-byte Ed25519 seed -> ``secretKeyMultibase`` value (``z3u2...``)."""
    if len(seed) != 32:
        raise DIDKeyError("an Ed25519 secret key seed is 32 bytes")
    return multibase_encode(ED25519_PRIV_HEADER + seed)


def decode_secret_multikey(value: str) -> bytes:
    """``secretKeyMultibase`` value -> 32-byte Ed25519 seed. Error messages never echo the value."""
    try:
        raw = multibase_decode(value)
    except DIDKeyError:
        raise DIDKeyError("secret key is not a multibase base58btc value") from None
    if raw[:2] != ED25519_PRIV_HEADER or len(raw) != 34:
        raise DIDKeyError("secret key is not an Ed25519 secret multikey (multicodec 0x1300, 32 bytes)")
    return raw[2:]


def did_from_multikey(multikey: str) -> str:
    decode_public_multikey(multikey)  # validate
    return DID_KEY_PREFIX + multikey


def did_from_public_key(public_key: Ed25519PublicKey) -> str:
    return DID_KEY_PREFIX + encode_public_multikey(public_key)


def multikey_from_did(did: str) -> str:
    """The Multikey inside a ``did:key`` (no fragment allowed)."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise DIDKeyError(f"not a did:key identifier: {did!r:.80}")
    multikey = did[len(DID_KEY_PREFIX) :]
    if "#" in multikey or "?" in multikey or "/" in multikey:
        raise DIDKeyError(f"expected a bare did:key without fragment, path or query: {did!r:.100}")
    decode_public_multikey(multikey)
    return multikey


def public_key_from_did(did: str) -> Ed25519PublicKey:
    return decode_public_multikey(multikey_from_did(did))


def verification_method_id(did: str) -> str:
    """``did:key:z6Mk...`` -> ``did:key:z6Mk...#z6Mk...`` (the key's only verification method)."""
    return f"{did}#{multikey_from_did(did)}"


def parse_verification_method(vm: str) -> tuple[str, Ed25519PublicKey]:
    """Split a did:key verification method URL into (did, public key).

    The fragment must equal the multikey of the DID itself, as the did:key method defines exactly
    one verification method; anything else is refused rather than guessed.
    """
    if not isinstance(vm, str):
        raise DIDKeyError(f"verificationMethod must be a string, got {type(vm).__name__}")
    did, sep, fragment = vm.partition("#")
    if not sep:
        raise DIDKeyError(f"verificationMethod {vm!r:.100} has no '#<multikey>' fragment")
    multikey = multikey_from_did(did)
    if fragment != multikey:
        raise DIDKeyError(f"verificationMethod fragment {fragment!r:.60} does not match the did:key {did!r:.100}")
    return did, decode_public_multikey(multikey)


def resolve_did_key(did_or_vm: str) -> dict[str, Any]:
    """The Multikey verification method document of a did:key (or of its ``#fragment`` URL)."""
    if isinstance(did_or_vm, str) and "#" in did_or_vm:
        did, _ = parse_verification_method(did_or_vm)
    else:
        did = did_or_vm
    multikey = multikey_from_did(did)
    return {
        "@context": MULTIKEY_CONTEXT,
        "id": f"{did}#{multikey}",
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": multikey,
    }


def resolve_did_document(did: str) -> dict[str, Any]:
    """The DID document of an Ed25519 did:key, with its key as a Multikey verification method."""
    vm = resolve_did_key(did)
    vm_id = vm["id"]
    del vm["@context"]
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": vm["controller"],
        "verificationMethod": [vm],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityDelegation": [vm_id],
        "capabilityInvocation": [vm_id],
    }
