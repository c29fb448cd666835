"""Key generation, key files (modes, atomic no-overwrite writes, unsafe-permission refusal),
secrecy of the private key in repr/str/pickle, and the did:key / Multikey encodings."""

from __future__ import annotations

import copy
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from mrv.errors import DIDKeyError, KeyFileError, MRVError, SigningError
from mrv.signing import didkey
from mrv.signing.keys import KeyPair, KeyRole, PublicKey, generate_key, load_key, load_public, write_key


def _secret_forms(key: KeyPair) -> list[str]:
    """Every spelling of the private key that must never show up in text."""
    seed = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return [seed.hex(), repr(seed), didkey.encode_secret_multikey(seed), didkey.b58encode(seed)]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# --- generation and identity --------------------------------------------------------------


@pytest.mark.parametrize("role", list(KeyRole))
def test_generate_key_is_a_did_key_multikey(role: KeyRole) -> None:
    key = generate_key(role=role)
    assert key.role is role
    assert key.public_multikey.startswith("z6Mk")
    assert key.did == "did:key:" + key.public_multikey
    assert key.verification_method == f"{key.did}#{key.public_multikey}"
    raw = key.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert didkey.multibase_decode(key.public_multikey) == b"\xed\x01" + raw


def test_keys_are_distinct() -> None:
    assert generate_key(role=KeyRole.vvb).did != generate_key(role=KeyRole.vvb).did


def test_repr_and_str_never_show_private_material() -> None:
    key = generate_key(role=KeyRole.developer)
    texts = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})]
    for text in texts:
        assert key.did in text
        for secret in _secret_forms(key):
            assert secret not in text
        assert "private" not in text.lower()


def test_keypair_cannot_be_pickled_but_copies_are_itself() -> None:
    key = generate_key(role=KeyRole.registry)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    assert copy.copy(key) is key
    assert copy.deepcopy({"k": key})["k"] is key


def test_sign_and_public_verify() -> None:
    key = generate_key(role=KeyRole.developer)
    sig = key.sign(b"data")
    assert len(sig) == 64
    assert key.public.verify(sig, b"data")
    assert not key.public.verify(sig, b"Data")


# --- key files ----------------------------------------------------------------------------


def test_write_key_files_names_modes_and_content(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.vvb)
    out = tmp_path / "keys"
    priv, pub = write_key(key, out_dir=out)
    assert priv.name == f"vvb-{key.public_multikey[-8:]}.key.json"
    assert pub.name == f"vvb-{key.public_multikey[-8:]}.pub.json"
    assert _mode(priv) == 0o600
    assert _mode(pub) == 0o644
    assert _mode(out) == 0o700  # created by write_key
    assert sorted(p.name for p in out.iterdir()) == sorted([priv.name, pub.name])  # no temp files left

    public_doc = json.loads(pub.read_text())
    assert public_doc == {
        "did": key.did,
        "verificationMethod": key.verification_method,
        "publicKeyMultibase": key.public_multikey,
        "role": "vvb",
    }
    for secret in _secret_forms(key):
        assert secret not in pub.read_text()

    private_doc = json.loads(priv.read_text())
    assert private_doc["type"] == "Multikey"
    assert private_doc["controller"] == key.did
    assert private_doc["id"] == key.verification_method
    assert private_doc["secretKeyMultibase"].startswith("z3u2")  # ed25519-priv multicodec 0x1300


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, pub = write_key(key, out_dir=tmp_path)
    loaded = load_key(priv)
    assert loaded == key  # compares did, vm, multikey, role (the private key object is not compared)
    assert loaded.public.verify(key.sign(b"x"), b"x")
    assert key.public.verify(loaded.sign(b"y"), b"y")
    public = load_public(pub)
    assert public.did == key.did and public.role is KeyRole.developer
    assert public.verify(key.sign(b"z"), b"z")


def test_write_key_refuses_to_overwrite(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, pub = write_key(key, out_dir=tmp_path)
    before = (priv.read_bytes(), pub.read_bytes())
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_key(key, out_dir=tmp_path)
    assert (priv.read_bytes(), pub.read_bytes()) == before
    assert len(list(tmp_path.iterdir())) == 2


def test_write_key_refuses_when_only_the_public_file_exists(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, pub = write_key(key, out_dir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / pub.name).write_text("{}")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_key(key, out_dir=tmp_path / "b")
    assert not (tmp_path / "b" / priv.name).exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610, 0o601])
def test_load_key_refuses_private_file_accessible_to_others(tmp_path: Path, mode: int) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, _ = write_key(key, out_dir=tmp_path)
    os.chmod(priv, mode)
    with pytest.raises(KeyFileError) as info:
        load_key(priv)
    msg = str(info.value)
    assert "accessible by group or others" in msg
    assert f"{mode:04o}" in msg and "chmod 600" in msg and str(priv) in msg
    for secret in _secret_forms(key):
        assert secret not in msg


def test_load_key_accepts_0400(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, _ = write_key(key, out_dir=tmp_path)
    os.chmod(priv, 0o400)
    assert load_key(priv).did == key.did


def test_load_key_refuses_symlink(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, _ = write_key(key, out_dir=tmp_path / "real")
    link = tmp_path / "link.key.json"
    link.symlink_to(priv)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_key(link)


def test_load_key_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "nope.key.json")


def test_load_key_detects_a_public_key_from_another_key(tmp_path: Path) -> None:
    key, other = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.developer)
    priv, _ = write_key(key, out_dir=tmp_path)
    doc = json.loads(priv.read_text())
    doc["publicKeyMultibase"] = other.public_multikey
    priv.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="publicKeyMultibase does not belong"):
        load_key(priv)


def test_load_key_errors_never_echo_the_secret(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, _ = write_key(key, out_dir=tmp_path)
    text = priv.read_text()
    priv.write_text(text.replace("}", ",}"))  # JSON syntax error after the secret
    with pytest.raises(KeyFileError, match="not a valid JSON") as info:
        load_key(priv)
    for secret in _secret_forms(key):
        assert secret not in str(info.value)
    doc = json.loads(text)
    doc["secretKeyMultibase"] = doc["secretKeyMultibase"][:-3] + "0OI"  # not base58
    priv.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError) as info:
        load_key(priv)
    assert doc["secretKeyMultibase"] not in str(info.value)


def test_load_key_rejects_public_file_and_bad_role(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.developer)
    priv, pub = write_key(key, out_dir=tmp_path)
    os.chmod(pub, 0o600)
    with pytest.raises(KeyFileError, match="is this a public key file"):
        load_key(pub)
    doc = json.loads(priv.read_text())
    doc["role"] = "auditor"
    priv.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="role 'auditor' is not one of developer, vvb, registry"):
        load_key(priv)


def test_load_public_from_did_vm_and_file(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.registry)
    priv, pub = write_key(key, out_dir=tmp_path)
    for source in (key.did, key.verification_method, pub, str(pub)):
        public = load_public(source)
        assert isinstance(public, PublicKey)
        assert (public.did, public.verification_method, public.public_multikey) == (
            key.did,
            key.verification_method,
            key.public_multikey,
        )
    with pytest.raises(KeyFileError, match="is a private key file"):
        load_public(priv)
    with pytest.raises(DIDKeyError, match="does not match"):
        load_public(key.did + "#" + generate_key(role=KeyRole.vvb).public_multikey)


def test_load_public_rejects_inconsistent_file(tmp_path: Path) -> None:
    key, other = generate_key(role=KeyRole.vvb), generate_key(role=KeyRole.vvb)
    _, pub = write_key(key, out_dir=tmp_path)
    doc = json.loads(pub.read_text())
    doc["did"] = other.did
    pub.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="do not match publicKeyMultibase"):
        load_public(pub)


def test_errors_share_the_root() -> None:
    assert issubclass(KeyFileError, SigningError) and issubclass(DIDKeyError, SigningError)
    assert issubclass(SigningError, MRVError)


# --- did:key, Multikey and base58btc ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    ],
)
def test_base58btc_known_values(raw: bytes, encoded: str) -> None:
    assert didkey.b58encode(raw) == encoded
    assert didkey.b58decode(encoded) == raw


@given(st.binary(max_size=80))
def test_base58btc_round_trip(raw: bytes) -> None:
    assert didkey.b58decode(didkey.b58encode(raw)) == raw
    assert didkey.multibase_decode(didkey.multibase_encode(raw)) == raw


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc+", " z"])
def test_base58btc_rejects_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(DIDKeyError, match="invalid base58btc character"):
        didkey.b58decode(bad)


def test_multibase_requires_base58btc_prefix() -> None:
    with pytest.raises(DIDKeyError, match="must start with 'z'"):
        didkey.multibase_decode("uAQID")  # base64url multibase is not accepted


def test_did_key_round_trip() -> None:
    key = generate_key(role=KeyRole.developer)
    pub = key.private_key.public_key()
    did = didkey.did_from_public_key(pub)
    assert did == key.did
    back = didkey.public_key_from_did(did)
    assert back.public_bytes(Encoding.Raw, PublicFormat.Raw) == pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert didkey.verification_method_id(did) == key.verification_method
    vm_did, vm_pub = didkey.parse_verification_method(key.verification_method)
    assert vm_did == did
    assert vm_pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_secret_multikey_round_trip() -> None:
    seed = bytes(range(32))
    assert didkey.decode_secret_multikey(didkey.encode_secret_multikey(seed)) == seed


def test_resolve_did_key_and_document() -> None:
    key = generate_key(role=KeyRole.vvb)
    vm = didkey.resolve_did_key(key.did)
    assert vm == {
        "@context": "https://w3id.org/security/multikey/v1",
        "id": key.verification_method,
        "type": "Multikey",
        "controller": key.did,
        "publicKeyMultibase": key.public_multikey,
    }
    assert didkey.resolve_did_key(key.verification_method) == vm
    doc = didkey.resolve_did_document(key.did)
    assert doc["id"] == key.did
    assert doc["verificationMethod"][0]["id"] == key.verification_method
    assert doc["assertionMethod"] == [key.verification_method] == doc["authentication"]


@pytest.mark.parametrize(
    "bad",
    [
        "did:web:example.com",
        "did:key:",
        "did:key:z6Mk",  # too short
        "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",  # P-256 multikey, not Ed25519
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2/path",
    ],
)
def test_bad_did_keys_are_refused(bad: str) -> None:
    with pytest.raises(DIDKeyError):
        didkey.public_key_from_did(bad)


def test_verification_method_must_be_the_keys_own_fragment() -> None:
    a, b = generate_key(role=KeyRole.vvb), generate_key(role=KeyRole.vvb)
    with pytest.raises(DIDKeyError, match="does not match"):
        didkey.parse_verification_method(f"{a.did}#{b.public_multikey}")
    with pytest.raises(DIDKeyError, match="no '#<multikey>' fragment"):
        didkey.parse_verification_method(a.did)


def test_keypair_from_private_key_rejects_other_key_types() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(KeyFileError, match="expected an Ed25519 private key"):
        KeyPair.from_private_key(ec.generate_private_key(ec.SECP256R1()), role=KeyRole.vvb)  # type: ignore[arg-type]
