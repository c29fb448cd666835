"""Ed25519 signing keys for the three signing roles, as did:key Multikeys.

Key files
---------
``write_key`` produces two JSON files named ``<role>-<last 8 chars of the multikey>``:

* ``.key.json`` (private, mode 0600): a Multikey document with ``secretKeyMultibase``, the
  encoding the W3C Multikey / Data Integrity EdDSA specifications use, so other implementations
  (``@digitalbazaar/ed25519-multikey``) can import it directly.
* ``.pub.json`` (public, mode 0644): ``did``, ``verificationMethod``, ``publicKeyMultibase``, ``role``.

Both are written to a temporary file in the target directory and hard-linked into place, which is
atomic and refuses to replace an existing file. ``load_key`` refuses a private key file that group
or others can access (as ssh does). Nothing here logs, prints or puts the secret in an exception
message or ``repr``; :class:`KeyPair` cannot be pickled, so a task runner cannot persist it by
accident.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from mrv.errors import DIDKeyError, KeyFileError
from mrv.signing import didkey

PRIVATE_SUFFIX = ".key.json"
PUBLIC_SUFFIX = ".pub.json"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


class KeyRole(str, Enum):
    """Who signs with a key: the project developer (monitoring reports), the validation and
    verification body (verification statements) or the registry (issuance records)."""

    developer = "developer"
    vvb = "vvb"
    registry = "registry"


@dataclass(frozen=True)
class PublicKey:
    """A verification key: enough to check signatures, nothing secret."""

    did: str
    verification_method: str
    public_multikey: str
    role: KeyRole | None = None
    key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", didkey.decode_public_multikey(self.public_multikey))
        if self.did != didkey.DID_KEY_PREFIX + self.public_multikey or self.verification_method != (
            f"{self.did}#{self.public_multikey}"
        ):
            raise DIDKeyError(f"did/verificationMethod do not match the multikey {self.public_multikey!r}")

    @classmethod
    def from_did(cls, did: str, *, role: KeyRole | None = None) -> PublicKey:
        multikey = didkey.multikey_from_did(did)
        return cls(did=did, verification_method=f"{did}#{multikey}", public_multikey=multikey, role=role)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_public_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "did": self.did,
            "verificationMethod": self.verification_method,
            "publicKeyMultibase": self.public_multikey,
        }
        if self.role is not None:
            doc["role"] = self.role.value
        return doc


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 signing key with its did:key identity. The private key is never shown."""

    did: str
    verification_method: str
    public_multikey: str
    role: KeyRole
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey, *, role: KeyRole) -> KeyPair:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyFileError(f"expected an Ed25519 private key, got {type(private_key).__name__}")
        multikey = didkey.encode_public_multikey(private_key.public_key())
        did = didkey.DID_KEY_PREFIX + multikey
        return cls(
            did=did,
            verification_method=f"{did}#{multikey}",
            public_multikey=multikey,
            role=KeyRole(role),
            private_key=private_key,
        )

    @property
    def public(self) -> PublicKey:
        return PublicKey(
            did=self.did,
            verification_method=self.verification_method,
            public_multikey=self.public_multikey,
            role=self.role,
        )

    def sign(self, data: bytes) -> bytes:
        """Ed25519 (pure EdDSA, RFC 8032) signature over ``data``: 64 bytes, deterministic."""
        return self.private_key.sign(data)

    # A private key must not travel through pickle (task results, caches) by accident.
    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyPair holds a private key and cannot be pickled; pass its key file path instead")

    def __copy__(self) -> KeyPair:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> KeyPair:
        return self


def generate_key(*, role: KeyRole) -> KeyPair:
    """A fresh Ed25519 key pair from the operating system's CSPRNG."""
    return KeyPair.from_private_key(Ed25519PrivateKey.generate(), role=KeyRole(role))


def key_file_stem(key: KeyPair | PublicKey) -> str:
    role = key.role.value if key.role is not None else "key"
    return f"{role}-{key.public_multikey[-8:]}"


def _seed(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _write_new_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically; fail with FileExistsError if ``path`` exists.

    The bytes go to a temporary file (created 0600 by mkstemp) in the same directory, are
    flushed to disk, get their final mode, and are then hard-linked to the final name: link(2)
    never replaces an existing file, so a concurrent writer cannot be clobbered either.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def write_key(key: KeyPair, *, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<role>-<short>.key.json`` (0600) and ``<role>-<short>.pub.json``; return both paths.

    Refuses to overwrite either file. ``out_dir`` is created (mode 0700) if missing.
    """
    if not isinstance(key, KeyPair):
        raise KeyFileError(f"write_key needs a KeyPair, got {type(key).__name__}")
    out_dir = Path(out_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = key_file_stem(key)
    private_path = out_dir / (stem + PRIVATE_SUFFIX)
    public_path = out_dir / (stem + PUBLIC_SUFFIX)
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(f"refusing to overwrite existing key file {p}")

    private_doc = {
        "@context": didkey.MULTIKEY_CONTEXT,
        "id": key.verification_method,
        "type": "Multikey",
        "controller": key.did,
        "publicKeyMultibase": key.public_multikey,
        "secretKeyMultibase": didkey.encode_secret_multikey(_seed(key.private_key)),
        "role": key.role.value,
    }
    public_doc = key.public.to_public_dict()
    try:
        _write_new_file(private_path, (json.dumps(private_doc, indent=2) + "\n").encode(), mode=PRIVATE_MODE)
    except FileExistsError:
        raise KeyFileError(f"refusing to overwrite existing key file {private_path}") from None
    try:
        _write_new_file(public_path, (json.dumps(public_doc, indent=2) + "\n").encode(), mode=PUBLIC_MODE)
    except FileExistsError:
        private_path.unlink()  # ours, written a moment ago: do not leave half a key pair behind
        raise KeyFileError(f"refusing to overwrite existing key file {public_path}") from None
    return private_path, public_path


def _read_json(path: Path, raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The position is safe to show; the content (possibly a secret) is not.
        raise KeyFileError(
            f"{path}: not a valid JSON {what} file ({type(exc).__name__} at byte {getattr(exc, 'pos', '?')})"
        ) from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{path}: a {what} file must hold a JSON object")
    return doc


def _role(path: Path, value: Any) -> KeyRole:
    try:
        return KeyRole(value)
    except ValueError:
        allowed = ", ".join(r.value for r in KeyRole)
        raise KeyFileError(f"{path}: role {value!r} is not one of {allowed}") from None


def load_key(path: Path) -> KeyPair:
    """Load a private key file written by :func:`write_key`.

    Refuses (like ssh) a file that group or others can read or write, and checks that the stored
    public key, DID and verification method belong to the secret key.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"private key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open private key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"private key file {path} is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise KeyFileError(
                f"private key file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); it must be 0600: run `chmod 600 {path}`"
            )
        raw = fh.read()
    doc = _read_json(path, raw, "private key")
    secret = doc.get("secretKeyMultibase")
    if not isinstance(secret, str):
        raise KeyFileError(f"{path}: no secretKeyMultibase; is this a public key file?")
    try:
        seed = didkey.decode_secret_multikey(secret)
    except DIDKeyError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    key = KeyPair.from_private_key(Ed25519PrivateKey.from_private_bytes(seed), role=_role(path, doc.get("role")))
    for name, expected in (
        ("publicKeyMultibase", key.public_multikey),
        ("controller", key.did),
        ("id", key.verification_method),
    ):
        if doc.get(name) != expected:
            raise KeyFileError(f"{path}: {name} does not belong to the secret key in the file (file damaged?)")
    return key


def load_public(path_or_did: str | Path) -> PublicKey:
    """A public key from a ``did:key`` string, a ``did:key`` verification method URL, or a
    ``.pub.json`` file written by :func:`write_key` (its fields are cross-checked)."""
    if isinstance(path_or_did, str) and path_or_did.startswith(didkey.DID_KEY_PREFIX):
        did = path_or_did.partition("#")[0]
        if "#" in path_or_did:
            didkey.parse_verification_method(path_or_did)
        return PublicKey.from_did(did)
    path = Path(path_or_did)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"public key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read public key file {path}: {exc.strerror}") from None
    doc = _read_json(path, raw, "public key")
    if "secretKeyMultibase" in doc or "privateKeyMultibase" in doc:
        raise KeyFileError(f"{path} is a private key file; pass the {PUBLIC_SUFFIX} file or the DID")
    multikey = doc.get("publicKeyMultibase")
    if not isinstance(multikey, str):
        raise KeyFileError(f"{path}: no publicKeyMultibase")
    try:
        role = _role(path, doc["role"]) if doc.get("role") is not None else None
        pub = PublicKey.from_did(didkey.did_from_multikey(multikey), role=role)
    except DIDKeyError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if doc.get("did", pub.did) != pub.did or doc.get("verificationMethod", pub.verification_method) != (
        pub.verification_method
    ):
        raise KeyFileError(f"{path}: did/verificationMethod do not match publicKeyMultibase")
    return pub
