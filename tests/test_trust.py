"""Trust store: file format, rotation, revocation, predicate-type restrictions, corrupt files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from prov_core import _fs
from prov_core.canonical import canonical_json
from prov_core.errors import (
    ConfigError,
    InputError,
    RevokedKeyError,
    UntrustedKeyError,
)
from prov_core.signing import Ed25519Signer, Envelope, sign_envelope, verify_envelope
from prov_core.statement import INGEST_V1, SNAPSHOT_V1, STATEMENT_TYPE
from prov_core.trust import TrustStore


def record(signer: Ed25519Signer, predicate_type: str = INGEST_V1) -> Envelope:
    payload = canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "x", "digest": {"sha256": "b" * 64}}],
            "predicateType": predicate_type,
            "predicate": {},
        }
    )
    return Envelope.parse(sign_envelope(payload, signer).canonical_bytes())


def test_add_save_load_round_trip(tmp_path: Path) -> None:
    a, b = Ed25519Signer.generate(), Ed25519Signer.generate()
    store = TrustStore.empty()
    entry = store.add(a, note_name="origin.example")
    store.add(b.public_key_pem(), predicate_types=[INGEST_V1, SNAPSHOT_V1], status="retired")
    path = tmp_path / "trust.json"
    store.save(path)
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert doc["keys"][a.keyid] == {
        "public_key": a.public_key_pem(),
        "status": "active",
        "predicate_types": ["*"],
        "note_name": "origin.example",
        "created": entry.created,
    }
    assert entry.created.endswith("Z")
    loaded = TrustStore.load(path)
    assert loaded.entries() == store.entries()
    assert loaded.active() == a.keyid
    assert [(e.keyid, e.status) for e in loaded.entries()] == sorted(
        [(a.keyid, "active"), (b.keyid, "retired")],
        key=lambda x: (store.get(x[0]).created, x[0]),  # type: ignore[union-attr]
    )
    assert loaded.public_key(b.keyid).public_bytes_raw() == b.public_key.public_bytes_raw()
    entry_b = loaded.get(b.keyid)
    assert entry_b is not None
    assert entry_b.public_key.public_bytes_raw() == b.public_key.public_bytes_raw()
    assert "1 active, 1 retired, 0 revoked" in repr(loaded)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.empty()
    store.add(Ed25519Signer.generate())
    store.save(path)
    before = path.read_bytes()
    store.add(Ed25519Signer.generate())

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fs.os, "replace", broken_replace)
    with pytest.raises(ConfigError, match=rf"cannot write trust store {path}: No space"):
        store.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["trust.json"]


def test_rotation_keeps_old_records_valid() -> None:
    old, new = Ed25519Signer.generate(), Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(old, predicate_types=[INGEST_V1], note_name="o")
    before = record(old)
    entry = store.rotate(new)
    assert entry.keyid == new.keyid
    assert entry.status == "active"
    assert entry.predicate_types == (INGEST_V1,)
    assert entry.note_name == "o"
    assert store.get(old.keyid).status == "retired"  # type: ignore[union-attr]
    assert store.get(old.keyid).retired is not None  # type: ignore[union-attr]
    assert store.active() == new.keyid
    assert verify_envelope(before, store) == before.payload
    assert verify_envelope(record(new), store) == record(new).payload
    with pytest.raises(InputError, match="not active"):
        store.rotate(Ed25519Signer.generate(), old_keyid=old.keyid)


def test_rotate_without_active_key() -> None:
    with pytest.raises(InputError, match="no active key"):
        TrustStore.empty().rotate(Ed25519Signer.generate())


def test_revocation_fails_every_record_with_the_reason(tmp_path: Path) -> None:
    key, other = Ed25519Signer.generate(), Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(key)
    store.add(other)
    old_record = record(key)
    assert verify_envelope(old_record, store) == old_record.payload
    store.revoke(key.keyid, "key leaked in CI logs")
    path = tmp_path / "trust.json"
    store.save(path)
    reloaded = TrustStore.load(path)
    for s in (store, reloaded):
        with pytest.raises(RevokedKeyError, match="key leaked in CI logs") as info:
            verify_envelope(old_record, s)
        assert info.value.keyid == key.keyid  # type: ignore[attr-defined]
        assert info.value.reason == "key leaked in CI logs"  # type: ignore[attr-defined]
        assert verify_envelope(record(other), s) == record(other).payload
    entry = reloaded.get(key.keyid)
    assert entry is not None
    assert entry.status == "revoked"
    assert entry.revoked is not None
    with pytest.raises(InputError, match="reason"):
        store.revoke(other.keyid, " ")
    with pytest.raises(InputError, match="no key"):
        store.revoke("f" * 64, "x")


def test_revoked_retired_key_also_fails() -> None:
    old, new = Ed25519Signer.generate(), Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(old)
    signed = record(old)
    store.rotate(new)
    store.revoke(old.keyid, "compromised before rotation")
    with pytest.raises(RevokedKeyError, match="compromised before rotation"):
        verify_envelope(signed, store)


def test_predicate_type_restrictions() -> None:
    ingest_only = Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(ingest_only, predicate_types=[INGEST_V1])
    assert verify_envelope(record(ingest_only, INGEST_V1), store)
    with pytest.raises(UntrustedKeyError, match=f"not allowed to sign {SNAPSHOT_V1}") as info:
        verify_envelope(record(ingest_only, SNAPSHOT_V1), store)
    assert info.value.keyid == ingest_only.keyid  # type: ignore[attr-defined]
    store.check(ingest_only.keyid, INGEST_V1)
    with pytest.raises(UntrustedKeyError):
        store.check(ingest_only.keyid, SNAPSHOT_V1)
    with pytest.raises(UntrustedKeyError, match="not in the trust store"):
        store.check("0" * 64, INGEST_V1)
    with pytest.raises(UntrustedKeyError):
        store.public_key("0" * 64)


def test_add_refuses_duplicates_and_bad_input() -> None:
    key = Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(key)
    with pytest.raises(InputError, match="already in the trust store"):
        store.add(key.public_key_pem())
    with pytest.raises(InputError, match="cannot trust this key"):
        store.add("not a pem")
    with pytest.raises(InputError, match="predicate_types"):
        store.add(Ed25519Signer.generate(), predicate_types=[])
    with pytest.raises(InputError, match="see revoke"):
        store.add(Ed25519Signer.generate(), status="revoked")  # type: ignore[arg-type]


class LyingSigner:
    keyid = "0" * 64

    def __init__(self) -> None:
        self._inner = Ed25519Signer.generate()

    def sign(self, data: bytes) -> bytes:
        return self._inner.sign(data)

    def public_key_pem(self) -> str:
        return self._inner.public_key_pem()


def test_add_refuses_a_signer_whose_keyid_is_not_its_key() -> None:
    with pytest.raises(InputError, match="not the SHA-256 of its public key"):
        TrustStore.empty().add(LyingSigner())


def _valid_doc() -> tuple[dict[str, Any], Ed25519Signer]:
    key = Ed25519Signer.generate()
    store = TrustStore.empty()
    store.add(key)
    return json.loads(store.to_bytes()), key


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d, k: d.update(version=2), "version: expected 1"),
        (lambda d, k: d.update(keys=[]), "keys: expected an object"),
        (lambda d, k: d["keys"][k].update(status="trusted"), "status"),
        (lambda d, k: d["keys"][k].update(predicate_types=[]), "predicate_types"),
        (lambda d, k: d["keys"][k].update(created="yesterday"), "created"),
        (lambda d, k: d["keys"][k].pop("public_key"), "public_key"),
        (lambda d, k: d["keys"][k].update(public_key="junk"), "public_key"),
        (
            lambda d, k: d["keys"][k].update(public_key=Ed25519Signer.generate().public_key_pem()),
            "not to its id",
        ),
        (lambda d, k: d["keys"][k].update(status="revoked"), "revoked"),
    ],
)
def test_corrupt_trust_store_is_config_error_naming_the_file(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    doc, key = _valid_doc()
    mutate(doc, key.keyid)
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=rf"trust store {path} is corrupt: .*{message}"):
        TrustStore.load(path)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b'{"version":1,"keys":{},"keys":{}}'])
def test_unparseable_trust_store(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "trust.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=str(path)):
        TrustStore.load(path)


def test_missing_or_unreadable_trust_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*provgate init"):
        TrustStore.load(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=f"cannot read trust store {tmp_path}"):
        TrustStore.load(tmp_path)  # a directory


def test_saved_file_is_public_readable_only_keys(tmp_path: Path) -> None:
    store = TrustStore.empty()
    key = Ed25519Signer.generate()
    store.add(key)
    path = tmp_path / "trust.json"
    store.save(path)
    text = path.read_text()
    assert "PRIVATE" not in text
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_public_surface_is_pinned() -> None:
    import prov_core.trust as module

    assert sorted(module.__all__) == [
        "ANY_PREDICATE",
        "KeyStatus",
        "TrustEntry",
        "TrustStore",
    ]
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert defined <= set(module.__all__)
