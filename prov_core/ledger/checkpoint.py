"""Signed notes, checkpoints and receipts: the C2SP text formats of a transparency log.

Three formats, each with a strict parser and a size limit.

**Signed note** (c2sp.org/signed-note)::

    <text: one or more lines, each ending in "\\n">
    "\\n"
    "— " <key name> " " base64(key ID [4 bytes, big-endian] || signature) "\\n"
    ... one line per signature ...

The note is UTF-8 with no control characters but newline. The text includes
its final newline, not the blank separator line; it is split from the
signatures at the *last* blank line. Key names are non-empty, without spaces
or ``+``. An Ed25519 key ID is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``
and the signature is Ed25519 over the text bytes. A verifier key is written
``<name>+<key ID as 8 lowercase hex>+base64(0x01 || 32-byte public key)``.

**Checkpoint** (c2sp.org/tlog-checkpoint), the text of a note::

    <origin>\\n
    <tree size: ASCII decimal, no sign, no leading zero unless 0>\\n
    <base64 of the 32-byte root hash>\\n
    <extension line>\\n   (zero or more, each non-empty)

**Receipt** (c2sp.org/tlog-proof@v1), a proof that an entry is in a log::

    c2sp.org/tlog-proof@v1\\n
    extra <base64 of opaque extra data>\\n      (optional, unauthenticated)
    index <entry index: decimal, as the size>\\n
    <base64 of a 32-byte proof hash>\\n          (zero or more, leaf sibling first)
    \\n
    <the signed checkpoint note, verbatim>

Limits: a note at most :data:`MAX_NOTE_BYTES` with at most
:data:`MAX_SIGNATURES` signatures, a checkpoint text at most
:data:`MAX_CHECKPOINT_BYTES`, a receipt at most :data:`MAX_RECEIPT_BYTES`
with at most :data:`MAX_PROOF_HASHES` hashes. Parsers raise
:class:`~prov_core.errors.FormatError` for bytes that do not parse and
nothing else; verification raises a
:class:`~prov_core.errors.VerificationError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from prov_core.errors import (
    FormatError,
    InputError,
    SignatureError,
    UntrustedKeyError,
    VerificationError,
)
from prov_core.ledger.merkle import HASH_SIZE, check_inclusion, leaf_hash

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_PROOF_HASHES",
    "MAX_RECEIPT_BYTES",
    "MAX_SIGNATURES",
    "RECEIPT_HEADER",
    "Checkpoint",
    "NoteSignatureError",
    "NoteSigner",
    "NoteVerifier",
    "Receipt",
    "UnknownNoteKeyError",
    "checkpoint_body",
    "format_receipt",
    "open_checkpoint",
    "open_note",
    "parse_receipt",
    "verify_receipt",
]

MAX_NOTE_BYTES = 64 * 1024
"""MAX_NOTE_BYTES bounds a signed note; Ed25519 notes with 100 signatures fit easily."""
MAX_SIGNATURES = 100
"""MAX_SIGNATURES bounds the signature lines of a note (the spec asks for at least 16)."""
MAX_CHECKPOINT_BYTES = 16 * 1024
"""MAX_CHECKPOINT_BYTES bounds the text of a checkpoint, extension lines included."""
MAX_PROOF_HASHES = 64
"""MAX_PROOF_HASHES bounds an inclusion proof: 63 hashes reach 2**63 leaves."""
MAX_RECEIPT_BYTES = MAX_NOTE_BYTES + 8 * 1024
"""MAX_RECEIPT_BYTES bounds a receipt: its note plus header and proof lines."""
MAX_TREE_SIZE = (1 << 63) - 1
"""MAX_TREE_SIZE is the largest size or index a checkpoint or receipt may carry (int64)."""
RECEIPT_HEADER = b"c2sp.org/tlog-proof@v1"
"""RECEIPT_HEADER is the first line of a tlog-proof@v1 receipt."""

_ED25519 = 0x01  # c2sp.org/signed-note: signature type of Ed25519
_SIG_PREFIX = "— ".encode()  # em dash U+2014, space
_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,18}")
_HEX8 = re.compile(r"[0-9a-f]{8}")


class NoteSignatureError(SignatureError):
    """A signature by a known key does not verify; the whole note is rejected.

    ``name`` and ``key_id`` (uint32) name the key.
    """

    def __init__(self, message: str, *, name: str, key_id: int) -> None:
        super().__init__(message)
        self.name = name
        self.key_id = key_id


class UnknownNoteKeyError(UntrustedKeyError):
    """No signature of a note is by a known key.

    ``name`` and ``key_id`` name the first unknown key; ``keys`` lists every
    (name, key_id) that signed.
    """

    def __init__(self, message: str, *, keys: Sequence[tuple[str, int]]) -> None:
        super().__init__(message)
        self.keys = tuple(keys)
        self.name = keys[0][0] if keys else ""
        self.key_id = keys[0][1] if keys else 0


def _b64decode(data: bytes, what: str) -> bytes:
    """_b64decode decodes standard, padded, canonical base64 or raises FormatError."""
    try:
        out = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what} is not valid base64") from exc
    if base64.b64encode(out) != data:
        raise FormatError(f"{what} is not canonical base64")
    return out


def _check_key_name(name: str) -> None:
    if not name or len(name) > 256:
        raise InputError("a note key name must have 1 to 256 characters")
    if "+" in name or any(c.isspace() or c < " " or c == "\x7f" for c in name):
        raise InputError(f"note key name {name!r} must not contain spaces, '+' or controls")


def _valid_key_name(name: str) -> bool:
    try:
        _check_key_name(name)
    except InputError:
        return False
    return True


def _key_id(name: str, public_key: bytes) -> int:
    """_key_id returns the Ed25519 key ID: SHA-256(name || 0x0A || 0x01 || key)[:4] as uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_text(text: bytes, what: str) -> None:
    """_check_text raises FormatError unless text is UTF-8 lines, each ending in newline."""
    if not text.endswith(b"\n"):
        raise FormatError(f"{what} must end with a newline")
    if _CONTROL.search(text):
        raise FormatError(f"{what} contains a control character")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} is not valid UTF-8") from exc


class NoteVerifier:
    """NoteVerifier checks Ed25519 note signatures by one named key."""

    __slots__ = ("_raw", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        """__init__ takes the key's name and its Ed25519 public key; a bad name is an InputError."""
        _check_key_name(name)
        self.name = name
        self.public_key = public_key
        self._raw = _raw_public(public_key)
        self.key_id = _key_id(name, self._raw)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """verify reports whether ``signature`` (without key ID) is this key's over ``text``."""
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def vkey(self) -> str:
        """vkey returns the verifier key text ``name+hexid+base64(0x01 || key)``."""
        blob = base64.b64encode(bytes([_ED25519]) + self._raw).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """from_vkey parses a verifier key text strictly; anything else is a FormatError."""
        if not isinstance(text, str) or len(text) > 512:
            raise FormatError("a verifier key is a string of at most 512 characters")
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise FormatError("a verifier key has the form name+hexid+base64key")
        name, hex_id, blob = parts
        if not _valid_key_name(name):
            raise FormatError(f"verifier key name {name!r} is not a valid note key name")
        if not _HEX8.fullmatch(hex_id):
            raise FormatError("verifier key ID must be 8 lowercase hex digits")
        try:
            raw = _b64decode(blob.encode("ascii"), "verifier key")
        except UnicodeEncodeError as exc:
            raise FormatError("verifier key is not valid base64") from exc
        if len(raw) != 33 or raw[0] != _ED25519:
            raise FormatError("verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_id != int(hex_id, 16):
            raise FormatError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def __repr__(self) -> str:
        return f"NoteVerifier({self.name!r}, key_id={self.key_id:08x})"


class CheckpointSigner(Protocol):
    """CheckpointSigner is what a ledger needs to sign its checkpoints (NoteSigner is one)."""

    def sign_note(self, text: bytes) -> bytes: ...


class NoteSigner:
    """NoteSigner signs note texts with one named Ed25519 key."""

    __slots__ = ("_key", "_prefix", "key_id", "name")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """__init__ takes the key's name and Ed25519 private key; a bad name is an InputError."""
        _check_key_name(name)
        self.name = name
        self._key = private_key
        self.key_id = _key_id(name, _raw_public(private_key.public_key()))
        self._prefix = self.key_id.to_bytes(4, "big")

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """generate returns a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    def verifier(self) -> NoteVerifier:
        """verifier returns the verifier of this signer's key."""
        return NoteVerifier(self.name, self._key.public_key())

    def sign_note(self, text: bytes) -> bytes:
        """sign_note returns ``text`` as a signed note with this key's one signature.

        ``text`` must be UTF-8 lines each ending in newline, without controls
        (a :class:`~prov_core.errors.InputError` otherwise).
        """
        try:
            _check_text(text, "note text")
        except FormatError as exc:
            raise InputError(str(exc)) from None
        if len(text) > MAX_NOTE_BYTES - 512:
            raise InputError(f"note text of {len(text)} bytes is too large")
        sig = base64.b64encode(self._prefix + self._key.sign(text))
        return b"".join((text, b"\n", _SIG_PREFIX, self.name.encode(), b" ", sig, b"\n"))

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, key_id={self.key_id:08x})"


def open_note(note: bytes, verifiers: Sequence[NoteVerifier]) -> tuple[bytes, list[str]]:
    """open_note checks a signed note and returns its text and the names of the keys that verified.

    Steps: (1) parse strictly, else :class:`~prov_core.errors.FormatError`;
    (2) every signature whose (name, key ID) is a known verifier must verify,
    else :class:`NoteSignatureError`; signatures by unknown keys are ignored;
    (3) at least one known key must have signed, else
    :class:`UnknownNoteKeyError` naming the keys that did. The returned text
    is the exact signed bytes.
    """
    # 1. Structure: size, encoding, the split at the last blank line.
    if not isinstance(note, bytes | bytearray):
        raise FormatError("a signed note must be bytes")
    note = bytes(note)
    if len(note) > MAX_NOTE_BYTES:
        raise FormatError(f"signed note is larger than {MAX_NOTE_BYTES} bytes")
    _check_text(note, "signed note")
    split = note.rfind(b"\n\n")
    if split < 0:
        raise FormatError("signed note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block[:-1].split(b"\n") if sig_block else []
    if not lines:
        raise FormatError("signed note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"signed note has more than {MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    seen: set[tuple[str, int]] = set()
    unknown: list[tuple[str, int]] = []
    verified: list[str] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise FormatError("signature line does not start with an em dash and a space")
        fields = line[len(_SIG_PREFIX) :].split(b" ")
        if len(fields) != 2:
            raise FormatError("signature line is not '— <name> <base64>'")
        name = fields[0].decode("utf-8")
        if not _valid_key_name(name):
            raise FormatError(f"signature key name {name!r} is not valid")
        blob = _b64decode(fields[1], f"signature by {name}")
        if len(blob) < 5:
            raise FormatError(f"signature by {name} is too short")
        key_id = int.from_bytes(blob[:4], "big")
        if (name, key_id) in seen:
            raise FormatError(f"signed note has two signatures by {name} ({key_id:08x})")
        seen.add((name, key_id))
        # 2. Known keys must verify; unknown keys are ignored (c2sp.org/signed-note).
        verifier = known.get((name, key_id))
        if verifier is None:
            unknown.append((name, key_id))
            continue
        if not verifier.verify(text, blob[4:]):
            raise NoteSignatureError(
                f"signature by {name} ({key_id:08x}) does not verify", name=name, key_id=key_id
            )
        verified.append(name)
    # 3. At least one known key.
    if not verified:
        named = ", ".join(f"{n} ({k:08x})" for n, k in unknown)
        raise UnknownNoteKeyError(f"note is signed only by unknown keys: {named}", keys=unknown)
    return text, verified


def _parse_decimal(data: bytes, what: str) -> int:
    if not _DECIMAL.fullmatch(data):
        raise FormatError(f"{what} is not a canonical decimal number")
    value = int(data)
    if value > MAX_TREE_SIZE:
        raise FormatError(f"{what} is larger than {MAX_TREE_SIZE}")
    return value


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Checkpoint is a signed tree head: the log's origin, its size and its root hash.

    ``extensions`` are the optional extra lines of the text, without newlines.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin.encode()):
            raise InputError("checkpoint origin must be one non-empty line without controls")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise InputError(f"checkpoint size {self.size} is outside 0..{MAX_TREE_SIZE}")
        if len(self.root) != HASH_SIZE:
            raise InputError(f"checkpoint root must be {HASH_SIZE} bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext or _CONTROL.search(ext.encode()):
                raise InputError("checkpoint extension lines must be non-empty, without controls")

    def body(self) -> bytes:
        """body returns the checkpoint text, the bytes a log signs."""
        text = checkpoint_body(self.origin, self.size, self.root)
        if self.extensions:
            text += "".join(e + "\n" for e in self.extensions).encode()
        return text

    @classmethod
    def parse(cls, text: bytes) -> Checkpoint:
        """parse reads a checkpoint text strictly; anything else is a FormatError."""
        if not isinstance(text, bytes | bytearray):
            raise FormatError("a checkpoint must be bytes")
        text = bytes(text)
        if len(text) > MAX_CHECKPOINT_BYTES:
            raise FormatError(f"checkpoint is larger than {MAX_CHECKPOINT_BYTES} bytes")
        _check_text(text, "checkpoint")
        lines = text[:-1].split(b"\n")
        if len(lines) < 3:
            raise FormatError("checkpoint needs an origin, a size and a root hash line")
        origin, size, root, *exts = lines
        if not origin:
            raise FormatError("checkpoint origin is empty")
        if any(not e for e in exts):
            raise FormatError("checkpoint has an empty extension line")
        root_bytes = _b64decode(root, "checkpoint root hash")
        if len(root_bytes) != HASH_SIZE:
            raise FormatError(f"checkpoint root hash is {len(root_bytes)} bytes, want {HASH_SIZE}")
        try:
            return cls(
                origin=origin.decode(),
                size=_parse_decimal(size, "checkpoint size"),
                root=root_bytes,
                extensions=tuple(e.decode() for e in exts),
            )
        except InputError as exc:
            raise FormatError(str(exc)) from None


def checkpoint_body(origin: str, size: int, root: bytes) -> bytes:
    """checkpoint_body returns the text of a checkpoint without extensions, unchecked.

    It is the fast path of :meth:`Checkpoint.body` for a log that has
    validated its origin once; the size and root come from its own tree.
    """
    return b"%s\n%d\n%s\n" % (origin.encode(), size, base64.b64encode(root))


def open_checkpoint(
    note: bytes, verifiers: Sequence[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """open_checkpoint verifies a checkpoint note (see :func:`open_note`) and parses its text.

    With ``origin``, a checkpoint of another log raises
    :class:`~prov_core.errors.VerificationError`.
    """
    text, _ = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


@dataclass(frozen=True, slots=True)
class Receipt:
    """Receipt is a parsed tlog-proof@v1: an entry index, its inclusion proof and a checkpoint note.

    ``extra`` is opaque and unauthenticated; ``checkpoint_note`` is kept verbatim.
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: bytes
    extra: bytes | None = None


def format_receipt(
    index: int, proof: Sequence[bytes], checkpoint_note: bytes, extra: bytes | None = None
) -> bytes:
    """format_receipt returns the tlog-proof@v1 bytes for an entry (see the module docstring)."""
    if not 0 <= index <= MAX_TREE_SIZE:
        raise InputError(f"receipt index {index} is outside 0..{MAX_TREE_SIZE}")
    if len(proof) > MAX_PROOF_HASHES or any(len(p) != HASH_SIZE for p in proof):
        raise InputError(
            f"a receipt proof is at most {MAX_PROOF_HASHES} hashes of {HASH_SIZE} bytes"
        )
    if not checkpoint_note.endswith(b"\n"):
        raise InputError("a checkpoint note ends with a newline")
    lines = [RECEIPT_HEADER]
    if extra is not None:
        lines.append(b"extra " + base64.b64encode(extra))
    lines.append(b"index %d" % index)
    lines.extend(base64.b64encode(p) for p in proof)
    return b"\n".join(lines) + b"\n\n" + checkpoint_note


def parse_receipt(data: bytes) -> Receipt:
    """parse_receipt reads a tlog-proof@v1 receipt strictly; anything else is a FormatError.

    It does not verify the checkpoint note; :func:`verify_receipt` does.
    """
    if not isinstance(data, bytes | bytearray):
        raise FormatError("a receipt must be bytes")
    data = bytes(data)
    if len(data) > MAX_RECEIPT_BYTES:
        raise FormatError(f"receipt is larger than {MAX_RECEIPT_BYTES} bytes")
    split = data.find(b"\n\n")
    if split < 0:
        raise FormatError("receipt has no blank line before its checkpoint")
    head, note = data[:split].split(b"\n"), data[split + 2 :]
    if head[0] != RECEIPT_HEADER:
        raise FormatError(f"receipt does not start with {RECEIPT_HEADER.decode()}")
    pos = 1
    extra = None
    if pos < len(head) and head[pos].startswith(b"extra "):
        extra = _b64decode(head[pos][6:], "receipt extra data")
        pos += 1
    if pos >= len(head) or not head[pos].startswith(b"index "):
        raise FormatError("receipt has no 'index N' line")
    index = _parse_decimal(head[pos][6:], "receipt index")
    hashes = head[pos + 1 :]
    if len(hashes) > MAX_PROOF_HASHES:
        raise FormatError(f"receipt proof has more than {MAX_PROOF_HASHES} hashes")
    proof = []
    for i, line in enumerate(hashes):
        h = _b64decode(line, f"receipt proof hash {i}")
        if len(h) != HASH_SIZE:
            raise FormatError(f"receipt proof hash {i} is {len(h)} bytes, want {HASH_SIZE}")
        proof.append(h)
    if not note.endswith(b"\n"):
        raise FormatError("receipt checkpoint note is missing or does not end with a newline")
    return Receipt(index=index, proof=tuple(proof), checkpoint_note=note, extra=extra)


def verify_receipt(
    receipt: bytes,
    leaf: bytes,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """verify_receipt checks that ``leaf`` (the entry's bytes) is in the log the receipt names.

    It returns the verified checkpoint, or raises
    :class:`~prov_core.errors.FormatError` (receipt or note malformed) or a
    :class:`~prov_core.errors.VerificationError`: the note's signature
    (:class:`NoteSignatureError`, :class:`UnknownNoteKeyError`), the origin,
    or the proof (:class:`~prov_core.errors.ProofError`).
    """
    # 1. Parse the receipt.
    parsed = parse_receipt(receipt)
    # 2. Verify the checkpoint's signature and origin.
    checkpoint = open_checkpoint(parsed.checkpoint_note, verifiers, origin=origin)
    # 3. Check the inclusion proof of the leaf against the signed root.
    check_inclusion(parsed.index, checkpoint.size, leaf_hash(leaf), parsed.proof, checkpoint.root)
    return checkpoint
