"""Ed25519 keys and key files, DSSE PAE and envelopes, envelope verification."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pickle
import re
import select
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from prov_core import signing
from prov_core.canonical import canonical_json
from prov_core.errors import (
    CanonicalizationError,
    FormatError,
    InputError,
    KeyStoreError,
    ProvgateError,
    RevokedKeyError,
    SignatureError,
    UntrustedKeyError,
)
from prov_core.signing import (
    Ed25519Signer,
    Envelope,
    Signature,
    generate_key,
    keyid_of,
    load_signer,
    pae,
    sign_envelope,
    signer_from_env,
    verify_envelope,
)
from prov_core.statement import (
    INGEST_V1,
    SNAPSHOT_V1,
    STATEMENT_TYPE,
    Statement,
    Subject,
    ingest_predicate,
)
from prov_core.trust import TrustStore


def statement(predicate_type: str = INGEST_V1) -> bytes:
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
            "predicateType": predicate_type,
            "predicate": {"k": "v"},
        }
    )


def private_material(signer: Ed25519Signer) -> list[str]:
    """Strings that would reveal the private key if they appeared anywhere."""
    raw = signer.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = signer._private_pem().decode()
    body = "".join(pem.splitlines()[1:-1])
    return [raw.hex(), base64.b64encode(raw).decode(), body, body[:20]]


# ---------------------------------------------------------------------- keys


def test_keyid_is_sha256_of_der_subject_public_key_info() -> None:
    signer = Ed25519Signer.generate()
    der = serialization.load_pem_public_key(signer.public_key_pem().encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.keyid == hashlib.sha256(der).hexdigest() == keyid_of(signer.public_key)
    assert len(der) == 44  # 12-byte Ed25519 SPKI header + 32-byte key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_keyid_matches_openssl(tmp_path: Path) -> None:
    signer = generate_key(tmp_path)
    der = subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(tmp_path / f"{signer.keyid}.pem"),
            "-pubout",
            "-outform",
            "DER",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert hashlib.sha256(der).hexdigest() == signer.keyid


def test_generate_key_writes_0600_file_in_0700_dir(tmp_path: Path) -> None:
    keys = tmp_path / "home" / "keys"
    signer = generate_key(keys)
    path = keys / f"{signer.keyid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert sorted(p.name for p in keys.iterdir()) == [path.name]  # no temp file left
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_signer(path).keyid == signer.keyid


def test_generate_key_tightens_an_open_keys_dir(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    keys.chmod(0o755)
    generate_key(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700


def test_generate_key_creates_file_0600_from_the_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        calls.append((str(path), flags, mode))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(signing.os, "open", spy)
    old_umask = os.umask(0)  # with no umask the creation mode is the file's mode
    try:
        signer = generate_key(tmp_path)
    finally:
        os.umask(old_umask)
    created = [c for c in calls if c[1] & os.O_CREAT]
    assert len(created) == 1
    _, flags, mode = created[0]
    assert flags & os.O_EXCL
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / f"{signer.keyid}.pem").stat().st_mode) == 0o600


def test_load_signer_refuses_group_or_world_readable_key(tmp_path: Path) -> None:
    signer = generate_key(tmp_path)
    path = tmp_path / f"{signer.keyid}.pem"
    for mode in (0o644, 0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(KeyStoreError, match=rf"{path}.*mode {mode:04o}.*chmod 600 {path}"):
            load_signer(path)
    path.chmod(0o400)
    assert load_signer(path).keyid == signer.keyid


def test_load_signer_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="does not exist"):
        load_signer(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n"
    )
    garbage.chmod(0o600)
    with pytest.raises(KeyStoreError, match="not an unencrypted PKCS#8 PEM Ed25519") as info:
        load_signer(garbage)
    assert "c2VjcmV0" not in str(info.value)
    assert info.value.__cause__ is None
    rsa_path = tmp_path / "rsa.pem"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    rsa_path.chmod(0o600)
    with pytest.raises(KeyStoreError, match="not an Ed25519 key"):
        load_signer(rsa_path)


def test_load_signer_does_not_follow_symlinks(tmp_path: Path) -> None:
    signer = generate_key(tmp_path / "keys")
    link = tmp_path / "link.pem"
    link.symlink_to(tmp_path / "keys" / f"{signer.keyid}.pem")
    with pytest.raises(KeyStoreError, match="cannot open"):
        load_signer(link)


def test_signer_from_env() -> None:
    signer = Ed25519Signer.generate()
    pem = signer._private_pem().decode()
    assert signer_from_env({"PROVGATE_SIGNING_KEY": pem}).keyid == signer.keyid
    flattened = pem.replace("\n", "\\n")
    assert signer_from_env({"PROVGATE_SIGNING_KEY": flattened}).keyid == signer.keyid
    with pytest.raises(KeyStoreError, match="PROVGATE_SIGNING_KEY is not set"):
        signer_from_env({})
    with pytest.raises(KeyStoreError, match=r"\$PROVGATE_SIGNING_KEY is not") as info:
        signer_from_env({"PROVGATE_SIGNING_KEY": "hunter2-secret"})
    assert "hunter2" not in str(info.value)


def test_signer_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Ed25519Signer.generate()
    monkeypatch.setenv("PROVGATE_SIGNING_KEY", signer._private_pem().decode())
    assert signer_from_env().keyid == signer.keyid


def test_repr_and_str_reveal_no_key_material() -> None:
    signer = Ed25519Signer.generate()
    shown = " ".join([repr(signer), str(signer), f"{signer}", f"{signer!r}", repr([signer])])
    assert signer.keyid in repr(signer)
    for secret in private_material(signer):
        assert secret not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(signer)


def test_sign_and_verify_raw() -> None:
    signer = Ed25519Signer.generate()
    sig = signer.sign(b"data")
    assert len(sig) == 64
    signer.public_key.verify(sig, b"data")


# ---------------------------------------------------------------------- DSSE


def test_pae_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t\u00e9", b"\x00") == b"DSSEv1 3 t\xc3\xa9 1 \x00"  # lengths in bytes


def test_envelope_dict_and_canonical_bytes() -> None:
    signer = Ed25519Signer.generate()
    env = sign_envelope(b"hello world", signer, payload_type="http://example.com/HelloWorld")
    d = env.to_dict()
    assert d == {
        "payload": "aGVsbG8gd29ybGQ=",
        "payloadType": "http://example.com/HelloWorld",
        "signatures": [
            {"keyid": signer.keyid, "sig": base64.b64encode(env.signatures[0].sig).decode()}
        ],
    }
    assert env.canonical_bytes() == canonical_json(d)
    assert env.sha256() == hashlib.sha256(env.canonical_bytes()).hexdigest()
    signer.public_key.verify(env.signatures[0].sig, env.pae())


@given(
    payload=st.binary(max_size=64),
    payload_type=st.text(max_size=20),
    sigs=st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=70)), max_size=3),
)
@settings(max_examples=300)
def test_canonical_bytes_equals_rfc8785_of_the_dict(
    payload: bytes, payload_type: str, sigs: list[tuple[str, bytes]]
) -> None:
    env = Envelope(payload, payload_type, tuple(Signature(k, s) for k, s in sigs))
    assert env.canonical_bytes() == canonical_json(env.to_dict())


def test_parse_round_trip_keeps_original_bytes() -> None:
    signer = Ed25519Signer.generate()
    env = sign_envelope(statement(), signer)
    leaf = env.canonical_bytes()
    parsed = Envelope.parse(leaf)
    assert parsed == env
    assert parsed.raw == leaf
    assert parsed.canonical_bytes() == leaf
    pretty = json.dumps(env.to_dict(), indent=2).encode()
    reparsed = Envelope.parse(pretty)
    assert reparsed.raw == pretty
    assert reparsed == env


def test_parse_accepts_url_safe_and_unpadded_base64() -> None:
    payload = b"\xfb\xff\xfe?>"  # standard base64 '+//+Pz4=' has both + and /
    signer = Ed25519Signer.generate()
    env = sign_envelope(payload, signer)
    d = env.to_dict()
    assert "+" in d["payload"]
    assert "/" in d["payload"]
    for encode in (base64.urlsafe_b64encode, base64.b64encode):
        for strip in (False, True):
            text = encode(payload).decode()
            sig = encode(env.signatures[0].sig).decode()
            if strip:
                text, sig = text.rstrip("="), sig.rstrip("=")
            doc = dict(d, payload=text, signatures=[{"keyid": signer.keyid, "sig": sig}])
            parsed = Envelope.parse(json.dumps(doc).encode())
            assert parsed.payload == payload
            assert parsed.signatures == env.signatures


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected a JSON object"),
        ({"payloadType": "t", "signatures": [{"sig": "AA=="}]}, "envelope.payload: required"),
        ({"payload": "", "signatures": [{"sig": "AA=="}]}, "envelope.payloadType: required"),
        ({"payload": "", "payloadType": "t"}, "envelope.signatures: required"),
        ({"payload": "", "payloadType": "t", "signatures": []}, "non-empty array"),
        ({"payload": "", "payloadType": "", "signatures": [{"sig": ""}]}, "payloadType"),
        ({"payload": 5, "payloadType": "t", "signatures": [{"sig": ""}]}, "payload: expected"),
        ({"payload": "a+b_", "payloadType": "t", "signatures": [{"sig": ""}]}, "mixes"),
        ({"payload": "QQ=", "payloadType": "t", "signatures": [{"sig": ""}]}, "padding"),
        ({"payload": "Q", "payloadType": "t", "signatures": [{"sig": ""}]}, "length"),
        ({"payload": "QR==", "payloadType": "t", "signatures": [{"sig": ""}]}, "non-canonical"),
        ({"payload": "Q Q=", "payloadType": "t", "signatures": [{"sig": ""}]}, "invalid base64"),
        ({"payload": "QQ==\n", "payloadType": "t", "signatures": [{"sig": ""}]}, "length"),
        ({"payload": "", "payloadType": "t", "signatures": [{"sig": "", "x": 1}]}, r"\.x: unknown"),
        ({"payload": "", "payloadType": "t", "signatures": [{"keyid": "k"}]}, r"\.sig: required"),
        ({"payload": "", "payloadType": "t", "signatures": [{"sig": "", "keyid": 1}]}, "keyid"),
        ({"payload": "", "payloadType": "t", "signatures": ["x"]}, r"signatures\[0\]"),
        ({"payload": "", "payloadType": "t", "signatures": [{"sig": ""}], "extra": 1}, "extra"),
    ],
)
def test_parse_refuses_malformed_envelopes(doc: Any, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Envelope.parse(json.dumps(doc).encode())


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_parse_fuzz_bytes(data: bytes) -> None:
    with contextlib.suppress(ProvgateError):
        Envelope.parse(data)


@given(
    st.dictionaries(
        st.sampled_from(["payload", "payloadType", "signatures", "x"]),
        st.none()
        | st.text(max_size=12)
        | st.lists(st.dictionaries(st.sampled_from(["keyid", "sig"]), st.text(max_size=12))),
    )
)
@settings(max_examples=300)
def test_parse_fuzz_structured(doc: dict[str, Any]) -> None:
    with contextlib.suppress(ProvgateError):
        Envelope.parse(json.dumps(doc).encode())


# -------------------------------------------------------------- verification


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def store(signer: Ed25519Signer) -> TrustStore:
    store = TrustStore.empty()
    store.add(signer, note_name="test")
    return store


def test_verify_returns_the_payload(signer: Ed25519Signer, store: TrustStore) -> None:
    env = Envelope.parse(sign_envelope(statement(), signer).canonical_bytes())
    assert verify_envelope(env, store) == statement()
    assert verify_envelope(env, store, predicate_type=INGEST_V1) == statement()


def test_verify_detects_tampering(signer: Ed25519Signer, store: TrustStore) -> None:
    env = sign_envelope(statement(), signer)
    forged = Envelope(statement(SNAPSHOT_V1), env.payload_type, env.signatures)
    with pytest.raises(SignatureError) as info:
        verify_envelope(forged, store)
    assert info.value.keyid == signer.keyid  # type: ignore[attr-defined]
    assert "does not verify" in info.value.reason  # type: ignore[attr-defined]
    retyped = Envelope(env.payload, "application/json", env.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(retyped, store)


def test_verify_unknown_key(store: TrustStore) -> None:
    stranger = Ed25519Signer.generate()
    with pytest.raises(UntrustedKeyError, match=stranger.keyid) as info:
        verify_envelope(sign_envelope(statement(), stranger), store)
    assert info.value.keyid == stranger.keyid  # type: ignore[attr-defined]
    assert info.value.reason == "not in the trust store"  # type: ignore[attr-defined]


def test_verify_no_signatures(store: TrustStore) -> None:
    with pytest.raises(SignatureError, match="no signatures"):
        verify_envelope(Envelope(statement(), "application/vnd.in-toto+json", ()), store)


def test_verify_multiple_signatures(signer: Ed25519Signer, store: TrustStore) -> None:
    stranger = Ed25519Signer.generate()
    good = sign_envelope(statement(), signer).signatures[0]
    unknown = sign_envelope(statement(), stranger).signatures[0]
    both = Envelope(statement(), "application/vnd.in-toto+json", (unknown, good))
    assert verify_envelope(both, store) == statement()
    bad = Signature(signer.keyid, bytes(64))
    with pytest.raises(SignatureError):
        verify_envelope(Envelope(statement(), both.payload_type, (good, bad)), store)
    revoked = Ed25519Signer.generate()
    store.add(revoked)
    store.revoke(revoked.keyid, "stolen laptop")
    rev_sig = sign_envelope(statement(), revoked).signatures[0]
    with pytest.raises(RevokedKeyError, match="stolen laptop"):
        verify_envelope(Envelope(statement(), both.payload_type, (good, rev_sig)), store)


def test_verify_non_in_toto_payload_needs_a_wildcard_key(
    signer: Ed25519Signer, store: TrustStore
) -> None:
    env = sign_envelope(b"hello", signer, payload_type="text/plain")
    assert verify_envelope(env, store) == b"hello"
    narrow = Ed25519Signer.generate()
    store.add(narrow, predicate_types=[INGEST_V1])
    with pytest.raises(UntrustedKeyError, match="not in-toto statements"):
        verify_envelope(sign_envelope(b"hello", narrow, payload_type="text/plain"), store)


def test_verify_malformed_in_toto_payload_is_format_error(
    signer: Ed25519Signer, store: TrustStore
) -> None:
    with pytest.raises(FormatError, match="predicateType"):
        verify_envelope(sign_envelope(b'{"a":1}', signer), store)
    with pytest.raises(FormatError):
        verify_envelope(sign_envelope(b"not json", signer), store)


# ------------------------------------------------------- docs/record-format.md

RECORD_FORMAT = Path(__file__).resolve().parents[1] / "docs" / "record-format.md"


def _doc_example(name: str) -> str:
    text = RECORD_FORMAT.read_text()
    match = re.search(rf"<!-- example:{name} -->\s*(?:```\n(.*?)\n```|`([^`]*)`)", text, re.S)
    assert match is not None, name
    return match.group(1) or match.group(2)


def test_record_format_page_example_is_exact() -> None:
    signer = Ed25519Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    predicate = ingest_predicate(
        source_uri="https://example.org/reviews.csv",
        issuer="Example Org",
        retrieved_at="2025-01-02T03:04:05Z",
        collection_method="download",
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        origin_geography="DE",
        confidentiality="public",
        intended_use="sentiment classifier training",
        collector="alice@worker-1",
        samples={"count": 3, "algorithm": "blake3", "leafEncoding": "row-v1", "root": "1" * 64},
        manifest={"blake3": "2" * 64, "files": 1, "bytes": 2048},
    )
    payload = Statement.of([Subject("reviews.csv", "3" * 64)], predicate).canonical_bytes()
    leaf = sign_envelope(payload, signer).canonical_bytes()

    assert _doc_example("public-key") == signer.public_key_pem().strip()
    assert _doc_example("keyid") == signer.keyid
    assert _doc_example("statement").encode() == payload
    assert _doc_example("envelope").encode() == leaf
    assert _doc_example("envelope_sha256") == hashlib.sha256(leaf).hexdigest()
    assert _doc_example("leaf_hash") == hashlib.sha256(b"\x00" + leaf).hexdigest()
    store = TrustStore.empty()
    store.add(_doc_example("public-key"))
    assert verify_envelope(Envelope.parse(_doc_example("envelope").encode()), store) == payload


def test_public_surface_is_pinned() -> None:
    import prov_core.signing as module

    assert sorted(module.__all__) == [
        "ENV_SIGNING_KEY",
        "Ed25519Signer",
        "Envelope",
        "KeyPolicy",
        "Signature",
        "Signer",
        "SigningPool",
        "generate_key",
        "keyid_of",
        "load_signer",
        "pae",
        "public_key_from_pem",
        "public_key_pem",
        "sign_envelope",
        "sign_leaves",
        "signer_from_env",
        "verify_envelope",
    ]
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert defined <= set(module.__all__)


# --------------------------------------------------------------------------
# Batch signing: sign_leaves and the worker-process pool


class _NoKeyid:
    """A signer without a key id (DSSE allows one)."""

    def __init__(self) -> None:
        self._inner = Ed25519Signer.generate()

    @property
    def keyid(self) -> str:
        return ""

    def sign(self, data: bytes) -> bytes:
        return self._inner.sign(data)

    def public_key_pem(self) -> str:
        return self._inner.public_key_pem()


_PAYLOADS = [b"", b"{}", "é\u2028\x00".encode(), bytes(range(256)), b'{"a":1}' * 300]


@pytest.mark.parametrize("payload_type", [signing.IN_TOTO_PAYLOAD_TYPE, 'text/"x"\\é'])
def test_sign_leaves_is_sign_envelope_canonical_bytes(payload_type: str) -> None:
    for signer in (Ed25519Signer.generate(), _NoKeyid()):
        expected = [sign_envelope(p, signer, payload_type).canonical_bytes() for p in _PAYLOADS]
        assert signing.sign_leaves(iter(_PAYLOADS), signer, payload_type) == expected


def _ready(pool: signing.SigningPool, timeout: float = 60.0) -> None:
    """Wait until every worker has answered its handshake (tests only: use is never blocked)."""
    deadline = time.monotonic() + timeout
    while pool._starting and time.monotonic() < deadline:
        pool.sign_all([b"warm-up"])
        time.sleep(0.05)
    assert not pool._starting, "signing workers did not start"


@pytest.fixture
def pool_signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def pool(pool_signer: Ed25519Signer) -> Any:
    started = signing.SigningPool.start(pool_signer, 2)
    assert started is not None
    yield started
    started.close()


def test_pool_output_is_byte_identical_to_serial_signing(
    pool: signing.SigningPool, pool_signer: Ed25519Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ready(pool)
    pads = [b"x" * (i % 700 if i % 100 else 30_000) for i in range(1500)]  # a few past a pipe
    payloads = [b'{"i":%d,"pad":"%b"}' % (i, pad) for i, pad in enumerate(pads)]
    serial = [sign_envelope(p, pool_signer).canonical_bytes() for p in payloads]
    in_process = 0
    real_sign = Ed25519Signer.sign

    def counting(self: Ed25519Signer, data: bytes) -> bytes:
        nonlocal in_process
        in_process += 1
        return real_sign(self, data)

    def produced() -> Any:
        """The payloads, pausing after two chunks until a worker has answered."""
        for i, payload in enumerate(payloads):
            if i == 2 * signing._POOL_CHUNK:
                answered = select.poll()
                for worker in pool._all:
                    answered.register(worker.rfd, select.POLLIN)
                assert answered.poll(60_000), "no worker answered"
            yield payload

    monkeypatch.setattr(Ed25519Signer, "sign", counting)
    assert signing.sign_leaves(produced(), pool_signer, pool=pool) == serial
    assert in_process <= len(payloads) - signing._POOL_CHUNK  # the workers signed some


def test_pool_survives_a_dead_worker(pool: signing.SigningPool, pool_signer: Ed25519Signer) -> None:
    _ready(pool)
    pool._all[0].proc.kill()
    pool._all[0].proc.wait()
    messages = [b"m%d" % i for i in range(300)]
    assert pool.sign_all(messages) == [pool_signer.sign(m) for m in messages]
    assert pool.workers == 1
    assert pool.sign_all(messages) == [pool_signer.sign(m) for m in messages]


def test_pool_error_while_producing_leaves_the_pool_usable(
    pool: signing.SigningPool, pool_signer: Ed25519Signer
) -> None:
    _ready(pool)

    def failing() -> Any:
        for i in range(200):
            yield b"m%d" % i
        raise CanonicalizationError("bad statement")

    with pytest.raises(CanonicalizationError, match="bad statement"):
        pool.sign_all(failing())
    messages = [b"n%d" % i for i in range(300)]
    assert pool.sign_all(messages) == [pool_signer.sign(m) for m in messages]
    assert pool.workers == 2


def test_pool_in_a_forked_child_signs_in_process(
    pool: signing.SigningPool, pool_signer: Ed25519Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ready(pool)
    monkeypatch.setattr(pool, "_pid", -1)  # as seen from a forked copy of the owner
    assert pool.sign_all([b"a", b"b"]) == [pool_signer.sign(b"a"), pool_signer.sign(b"b")]
    assert pool._idle  # the workers were left alone


def test_pool_key_travels_only_through_the_pipe(pool: signing.SigningPool) -> None:
    raw = pool._signer.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    for worker in pool._all:
        argv = " ".join(worker.proc.args)  # type: ignore[arg-type]
        assert raw.hex() not in argv
        assert base64.b64encode(raw).decode() not in argv
    assert "workers=2" in repr(pool)
    assert raw.hex() not in repr(pool)


def test_pool_is_refused_where_processes_cannot_start(
    pool_signer: Ed25519Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert signing.SigningPool.start(pool_signer, 0) is None
    monkeypatch.setattr(signing.sys, "executable", "")
    assert signing.SigningPool.start(pool_signer, 2) is None
    monkeypatch.setattr(signing.sys, "executable", "/nonexistent/python")
    assert signing.SigningPool.start(pool_signer, 2) is None
    monkeypatch.setattr(signing.sys, "executable", shutil.which("true") or "/bin/true")
    assert signing.SigningPool.start(pool_signer, 2) is None  # an embedding host's binary


def test_pool_with_a_broken_interpreter_falls_back(
    pool_signer: Ed25519Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that starts but never answers correctly is dropped; signing goes on in-process."""
    wrong_key = "import os; os.read(0, 32); os.write(1, bytes(32)); os.read(0, 1)"
    monkeypatch.setattr(signing, "_WORKER_SOURCE", wrong_key)
    pool = signing.SigningPool.start(pool_signer, 2)
    assert pool is not None
    try:
        messages = [b"m%d" % i for i in range(100)]
        for _ in range(400):
            assert pool.sign_all(messages) == [pool_signer.sign(m) for m in messages]
            if not pool.workers:
                break
            time.sleep(0.05)
        assert pool.workers == 0
    finally:
        pool.close()


def test_pool_for_another_key_is_refused(pool: signing.SigningPool) -> None:
    with pytest.raises(InputError, match="signing pool holds key"):
        signing.sign_leaves([b"x"], Ed25519Signer.generate(), pool=pool)


_SILENT_WORKER = """
import os
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
key = Ed25519PrivateKey.from_private_bytes(os.read(0, 32))
os.write(1, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
while os.read(0, 1 << 16):  # takes requests, never answers
    pass
"""


def test_pool_never_waits_for_a_stuck_worker(
    pool_signer: Ed25519Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that takes a chunk and does not answer: this process signs it itself."""
    monkeypatch.setattr(signing, "_WORKER_SOURCE", _SILENT_WORKER)
    pool = signing.SigningPool.start(pool_signer, 1)
    assert pool is not None
    try:
        _ready(pool)
        messages = [b"m%d" % i for i in range(500)]
        expected = [pool_signer.sign(m) for m in messages]
        assert pool.sign_all(messages) == expected
        assert pool._late  # the worker's chunk was signed here; its answer is still owed
        assert pool.sign_all(messages) == expected
    finally:
        pool.close()
