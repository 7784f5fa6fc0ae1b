"""Signed notes, checkpoints and tlog-proof@v1 receipts."""

from __future__ import annotations

import base64
import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from prov_core.errors import (
    FormatError,
    InputError,
    ProofError,
    ProvgateError,
    SignatureError,
    UntrustedKeyError,
    VerificationError,
)
from prov_core.ledger.checkpoint import (
    Checkpoint,
    NoteSignatureError,
    NoteSigner,
    NoteVerifier,
    UnknownNoteKeyError,
    format_receipt,
    open_checkpoint,
    open_note,
    parse_receipt,
    verify_receipt,
)
from prov_core.ledger.merkle import MemoryTree

from .conftest import ORIGIN

# The example of golang.org/x/mod/sumdb/note (its package documentation):
# Ed25519 is deterministic, so our signer must reproduce Go's note exactly.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + (
        "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
        "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
)


def go_signer() -> NoteSigner:
    _, _, name, _, blob = GO_SKEY.split("+", 4)
    raw = base64.b64decode(blob)
    assert raw[0] == 1
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))


def test_go_known_vector() -> None:
    signer = go_signer()
    assert signer.sign_note(GO_TEXT) == GO_NOTE
    assert signer.verifier().vkey() == GO_VKEY
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    assert verifier.key_id == 0xC74F20A3
    assert open_note(GO_NOTE, [verifier]) == (GO_TEXT, ["PeterNeumann"])
    with pytest.raises(NoteSignatureError):
        open_note(GO_NOTE.replace(b"cryptography", b"cryptographY"), [verifier])


def test_vkey_strict() -> None:
    NoteVerifier.from_vkey(GO_VKEY)
    for bad in [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),  # key ID does not match
        GO_VKEY.replace("c74f20a3", "C74F20A3"),
        GO_VKEY.replace("+ARpc", "+AhpC"),  # not type 0x01
        GO_VKEY[:-4],
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(FormatError):
            NoteVerifier.from_vkey(bad)


def test_note_rules(signer: NoteSigner, verifier: NoteVerifier) -> None:
    text = b"line one\nline two\n"
    note = signer.sign_note(text)
    other = NoteSigner.generate("someone.else")
    both = note + other.sign_note(text).split(b"\n\n")[1]
    # An unknown extra signature is ignored.
    assert open_note(both, [verifier]) == (text, [ORIGIN])
    assert open_note(both, [verifier, other.verifier()])[1] == [ORIGIN, "someone.else"]
    # Only unknown keys: the error names them.
    with pytest.raises(UnknownNoteKeyError) as info:
        open_note(note, [other.verifier()])
    assert info.value.name == ORIGIN
    assert info.value.key_id == signer.key_id
    assert isinstance(info.value, UntrustedKeyError)
    # A known key whose signature fails rejects the whole note.
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    forged = signer.sign_note(text).split(b"\n\n")[0] + b"\n\n"
    sig = base64.b64decode(impostor.sign_note(text).split(b" ")[-1])
    forged += "— ".encode() + ORIGIN.encode() + b" "
    forged += base64.b64encode(signer.key_id.to_bytes(4, "big") + sig[4:]) + b"\n"
    with pytest.raises(NoteSignatureError) as bad:
        open_note(forged, [verifier])
    assert isinstance(bad.value, SignatureError)
    assert (bad.value.name, bad.value.key_id) == (ORIGIN, signer.key_id)
    # Same key twice is malformed.
    with pytest.raises(FormatError):
        open_note(note + note.split(b"\n\n")[1], [verifier])
    for malformed in [
        text,  # no signatures
        note[:-1],  # no final newline
        note.replace(b"\n\n", b"\n\n\r"),
        note.replace("—".encode(), b"-"),
        note.replace(b"=\n", b"\n"),  # non-canonical base64
        b"\xff\n\n" + note.split(b"\n\n")[1],
        note + b"x" * 70_000,
    ]:
        with pytest.raises(FormatError):
            open_note(malformed, [verifier])
    with pytest.raises(InputError):
        signer.sign_note(b"no newline")
    with pytest.raises(InputError):
        NoteSigner("bad+name", Ed25519PrivateKey.generate())


def test_checkpoint_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 12345, bytes(range(32)), ("ext one", "ext two"))
    body = cp.body()
    assert body == (
        ORIGIN.encode()
        + b"\n12345\n"
        + base64.b64encode(bytes(range(32)))
        + b"\next one\next two\n"
    )
    assert Checkpoint.parse(body) == cp
    assert Checkpoint.parse(Checkpoint(ORIGIN, 0, bytes(32)).body()).size == 0


@pytest.mark.parametrize(
    "size", [b"01", b"+1", b"-1", b"1_0", b" 1", b"1 ", "\u0661".encode(), b"", b"9" * 20]
)
def test_checkpoint_size_canonical(size: bytes) -> None:
    root = base64.b64encode(bytes(32))
    with pytest.raises(FormatError):
        Checkpoint.parse(b"origin\n" + size + b"\n" + root + b"\n")


def test_checkpoint_strict() -> None:
    root = base64.b64encode(bytes(32))
    for bad in [
        b"origin\n1\n" + root,  # no final newline
        b"\n1\n" + root + b"\n",  # empty origin
        b"origin\n1\n" + base64.b64encode(bytes(31)) + b"\n",
        b"origin\n1\n" + root[:-1] + b"\n",
        b"origin\n1\n" + root + b"\n\n",  # empty extension line
        b"origin\r\n1\n" + root + b"\n",
        b"origin\n1\n",
        b"o" * 20_000 + b"\n1\n" + root + b"\n",
    ]:
        with pytest.raises(FormatError):
            Checkpoint.parse(bad)
    with pytest.raises(InputError):
        Checkpoint("a\nb", 1, bytes(32))
    with pytest.raises(InputError):
        Checkpoint("a", -1, bytes(32))


def _receipt_setup(signer: NoteSigner) -> tuple[MemoryTree, list[bytes], bytes]:
    leaves = [b"entry %d" % i for i in range(13)]
    tree = MemoryTree.from_data(leaves)
    note = signer.sign_note(Checkpoint(ORIGIN, 13, tree.root()).body())
    return tree, leaves, note


def test_receipt_round_trip(signer: NoteSigner, verifier: NoteVerifier) -> None:
    tree, leaves, note = _receipt_setup(signer)
    for i, leaf in enumerate(leaves):
        proof = tree.prove_inclusion(i)
        data = format_receipt(i, proof, note, extra=b"hello" if i % 2 else None)
        assert data.startswith(b"c2sp.org/tlog-proof@v1\n")
        parsed = parse_receipt(data)
        assert (parsed.index, list(parsed.proof), parsed.checkpoint_note) == (i, proof, note)
        assert parsed.extra == (b"hello" if i % 2 else None)
        cp = verify_receipt(data, leaf, [verifier], origin=ORIGIN)
        assert (cp.size, cp.root) == (13, tree.root())
        with pytest.raises(ProofError):
            verify_receipt(data, leaf + b"!", [verifier])
    data = format_receipt(3, tree.prove_inclusion(3), note)
    with pytest.raises(UnknownNoteKeyError):
        verify_receipt(data, leaves[3], [NoteSigner.generate("x").verifier()])
    with pytest.raises(VerificationError):
        verify_receipt(data, leaves[3], [verifier], origin="another.log")
    with pytest.raises(ProofError, match=r"^invalid arguments"):
        verify_receipt(format_receipt(13, [], note), b"", [verifier])


def test_receipt_exact_bytes(signer: NoteSigner) -> None:
    tree, _, note = _receipt_setup(signer)
    proof = tree.prove_inclusion(5)
    data = format_receipt(5, proof, note, extra=b"\x00\x01")
    lines = [b"c2sp.org/tlog-proof@v1", b"extra AAE=", b"index 5"]
    lines += [base64.b64encode(p) for p in proof]
    assert data == b"\n".join(lines) + b"\n\n" + note


def test_receipt_strict(signer: NoteSigner) -> None:
    tree, _, note = _receipt_setup(signer)
    good = format_receipt(2, tree.prove_inclusion(2), note)
    for bad in [
        good.replace(b"tlog-proof@v1", b"tlog-proof@v2"),
        good.replace(b"index 2", b"index 02"),
        good.replace(b"index 2", b"index -2"),
        good.replace(b"index 2\n", b""),
        good.replace(b"index 2", b"extra !!\nindex 2"),
        good.split(b"\n\n")[0],
        good.split(b"\n\n")[0] + b"\n\n",
        b"c2sp.org/tlog-proof@v1\nindex 1\n" + b"AAAA\n\n" + note,  # 3-byte hash
        b"c2sp.org/tlog-proof@v1\nindex 1\n"
        + (base64.b64encode(bytes(32)) + b"\n") * 65
        + b"\n"
        + note,
        good + b"x" * 80_000,
    ]:
        with pytest.raises(FormatError):
            parse_receipt(bad)


# --- fuzzing: only provgate's own errors ------------------------------------


def _only_own_errors(fn: object, *args: object) -> None:
    # Anything but a ProvgateError propagates and fails the test.
    with contextlib.suppress(ProvgateError):
        fn(*args)  # type: ignore[operator]


NOTE_PARTS = st.lists(
    st.sampled_from(
        [b"\n", b"\n\n", "— ".encode(), b"name ", b"+", b"AAAA", b"=", b"\xff", b"\x00", b" ", b"o"]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), NOTE_PARTS, st.text(max_size=200).map(str.encode)))
def test_fuzz_parsers(data: bytes) -> None:
    verifier = go_signer().verifier()
    _only_own_errors(open_note, data, [verifier])
    _only_own_errors(Checkpoint.parse, data)
    _only_own_errors(parse_receipt, data)
    _only_own_errors(verify_receipt, data, b"leaf", [verifier])
    _only_own_errors(NoteVerifier.from_vkey, data.decode("utf-8", "replace"))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255), st.booleans())
def test_fuzz_mutated_valid_inputs(pos: int, byte: int, truncate: bool) -> None:
    signer = go_signer()
    tree = MemoryTree.from_data([b"a", b"b", b"c"])
    note = signer.sign_note(Checkpoint("go.example/log", 3, tree.root()).body())
    receipt = format_receipt(1, tree.prove_inclusion(1), note)
    for good in (note, receipt, GO_NOTE):
        p = pos % len(good)
        bad = good[:p] if truncate else good[:p] + bytes([byte]) + good[p + 1 :]
        _only_own_errors(open_note, bad, [signer.verifier()])
        _only_own_errors(parse_receipt, bad)
        _only_own_errors(open_checkpoint, bad, [signer.verifier()])
        _only_own_errors(verify_receipt, bad, b"b", [signer.verifier()])
