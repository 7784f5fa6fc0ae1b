"""Ed25519 keys, key ids and DSSE v1 envelopes.

Key id
    ``keyid`` = lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of the
    Ed25519 public key. Anyone can recompute it::

        openssl pkey -in key.pem -pubout -outform DER | openssl dgst -sha256

Key files
    PKCS#8 PEM, unencrypted, named ``<keyid>.pem`` in ``$PROVGATE_HOME/keys/``
    (mode 0700). :func:`generate_key` creates the file with mode 0600 from the
    first byte (``O_CREAT | O_EXCL``, mode 0o600, then an atomic rename), and
    :func:`load_signer` refuses a key file that group or others may access.
    ``PROVGATE_SIGNING_KEY`` may hold the PEM instead (:func:`signer_from_env`).
    Keys are never printed or logged: ``repr``/``str`` of a signer show the
    key id only.

DSSE v1 (github.com/secure-systems-lab/dsse, ``envelope.md``, ``protocol.md``)
    The signature is Ed25519 over the pre-authentication encoding::

        PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

    with ``LEN`` the ASCII decimal byte length. The envelope is::

        {"payload": BASE64(body), "payloadType": type,
         "signatures": [{"keyid": KEYID, "sig": BASE64(signature)}]}

    written with standard, padded base64 and serialized as RFC 8785 JSON
    (:meth:`Envelope.canonical_bytes`). Those bytes are the ledger leaf, and
    ``envelope_sha256`` is their SHA-256. :meth:`Envelope.parse` accepts
    standard or URL-safe base64, padded or not, and keeps the bytes it parsed.

Measured with ``.venv/bin/python -m prov_core.signing`` (best of 7 x 2,000;
978-byte statement, 1,552-byte leaf) on the shared 2-vCPU development VM (load
~1.7; about 2x slower than idle, where Ed25519 signing takes ~22 us):
Ed25519 sign ~44 us; sign + envelope + leaf bytes ~54-65 us; statement
canonicalization + sign + envelope + leaf bytes ~74-82 us per record. The leaf
bytes are written directly (the envelope's shape is fixed), not through the
generic canonicalizer.

Batches
    :func:`sign_leaves` signs many payloads into leaf bytes, the same bytes as
    :func:`sign_envelope` one by one. With a :class:`SigningPool` it signs in
    worker processes while the caller is still producing payloads: the
    signature is half of a batched record's cost, and ``cryptography`` holds
    the GIL while it signs, so threads cannot share it but processes can.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hashlib
import json
import os
import select
import stat
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NamedTuple, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from prov_core._fs import write_atomic
from prov_core.canonical import parse_json
from prov_core.errors import (
    CanonicalizationError,
    FormatError,
    InputError,
    KeyStoreError,
    RevokedKeyError,
    SignatureError,
    UntrustedKeyError,
    VerificationError,
)
from prov_core.statement import IN_TOTO_PAYLOAD_TYPE

__all__ = [
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

#: Environment variable holding a PEM (PKCS#8) Ed25519 private key.
ENV_SIGNING_KEY: Final = "PROVGATE_SIGNING_KEY"

_MAX_ENVELOPE_BYTES: Final = 64 * 1024 * 1024
_E = TypeVar("_E", bound=VerificationError)


# --------------------------------------------------------------------------
# Keys


def keyid_of(public_key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of ``public_key``."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_from_pem(pem: str | bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key from SubjectPublicKeyInfo PEM; :class:`FormatError` if not one."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise FormatError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise FormatError(f"public key is {type(key).__name__}, not Ed25519")
    return key


class Signer(Protocol):
    """What signs records: a key id, a signature over bytes, and the public key.

    A KMS or HSM signer fits the same protocol; ``sign`` must return an
    Ed25519 signature verifiable with ``public_key_pem()``.
    """

    @property
    def keyid(self) -> str:
        """The key id (see the module docstring)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``; return the raw signature."""
        ...

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM."""
        ...


class Ed25519Signer:
    """An in-process Ed25519 signing key. ``repr`` shows the key id only."""

    __slots__ = ("_key", "_keyid", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` Ed25519 private key."""
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyStoreError(f"signing key is {type(private_key).__name__}, not Ed25519")
        self._key = private_key
        self._public = private_key.public_key()
        self._keyid = keyid_of(self._public)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A new random key, in memory only."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: str | bytes, *, source: str = "key") -> Ed25519Signer:
        """Load a PKCS#8 PEM Ed25519 private key; ``source`` names it in errors."""
        data = pem.encode("utf-8") if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The lower error is not chained: nothing about key bytes may reach a log.
            raise KeyStoreError(
                f"{source} is not an unencrypted PKCS#8 PEM Ed25519 private key"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{source} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo."""
        return self._keyid

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half."""
        return self._public

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The ``cryptography`` private key (for signed notes); never log it."""
        return self._key

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self._key.sign(data)

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM."""
        return public_key_pem(self._public)

    def _private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"Ed25519Signer(keyid={self._keyid!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Ed25519Signer cannot be pickled: private keys do not travel")


def generate_key(keys_dir: Path | str) -> Ed25519Signer:
    """Create a new key as ``keys_dir/<keyid>.pem`` (mode 0600; directory 0700) and return it."""
    directory = Path(keys_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and directory.stat().st_mode & 0o077:
            directory.chmod(0o700)  # a keys directory others can list or enter is tightened
    except OSError as exc:
        raise KeyStoreError(f"cannot create key directory {directory}: {exc.strerror}") from exc
    signer = Ed25519Signer.generate()
    final = directory / f"{signer.keyid}.pem"
    try:
        write_atomic(final, signer._private_pem(), mode=0o600)
    except OSError as exc:
        raise KeyStoreError(f"cannot write key file {final}: {exc.strerror}") from exc
    return signer


def load_signer(path: Path | str) -> Ed25519Signer:
    """Load a key file; refuse one that group or others can access (mode must be 0600 or 0400)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise KeyStoreError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot open key file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if os.name == "posix" and info.st_mode & 0o077:
            raise KeyStoreError(
                f"key file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); fix with: chmod 600 {path}"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(1 << 16)
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return Ed25519Signer.from_pem(data, source=f"key file {path}")


def signer_from_env(environ: Mapping[str, str] | None = None) -> Ed25519Signer:
    """Load the key held in ``PROVGATE_SIGNING_KEY`` (PEM; ``\\n`` escapes are accepted)."""
    env = os.environ if environ is None else environ
    pem = env.get(ENV_SIGNING_KEY, "")
    if not pem.strip():
        raise KeyStoreError(f"{ENV_SIGNING_KEY} is not set or empty")
    if "\n" not in pem and "\\n" in pem:  # secret stores that flatten newlines
        pem = pem.replace("\\n", "\n")
    return Ed25519Signer.from_pem(pem, source=f"${ENV_SIGNING_KEY}")


# --------------------------------------------------------------------------
# DSSE


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 <len> <type> <len> <body>``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


# RFC 8785 string form: json with ensure_ascii=False escapes exactly what JCS does.
_json_str: Final = json.JSONEncoder(ensure_ascii=False).encode


class Signature(NamedTuple):
    """One DSSE signature: the signer's key id and the raw signature bytes."""

    keyid: str
    sig: bytes


def _b64decode(text: Any, path: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; FormatError otherwise."""
    if type(text) is not str:
        raise FormatError(f"{path}: expected a base64 string")
    if "-" in text or "_" in text:
        if "+" in text or "/" in text:
            raise FormatError(f"{path}: mixes standard and URL-safe base64 alphabets")
        text = text.replace("-", "+").replace("_", "/")
    stripped = text.rstrip("=")
    padded = len(text) != len(stripped)
    if len(text) - len(stripped) > 2 or len(stripped) % 4 == 1 or (padded and len(text) % 4):
        raise FormatError(f"{path}: bad base64 length or padding")
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{path}: invalid base64") from exc
    if base64.b64encode(raw).decode("ascii").rstrip("=") != stripped:
        raise FormatError(f"{path}: non-canonical base64 (stray bits)")
    return raw


@dataclass(frozen=True)
class Envelope:
    """A DSSE v1 envelope. ``raw`` keeps the bytes it was parsed from (``None`` if built)."""

    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def pae(self) -> bytes:
        """The bytes the signatures sign."""
        return pae(self.payload_type, self.payload)

    def to_dict(self) -> dict[str, Any]:
        """The envelope's JSON object, standard padded base64."""
        sigs: list[dict[str, str]] = []
        for s in self.signatures:
            d = {"sig": base64.b64encode(s.sig).decode("ascii")}
            if s.keyid:
                d["keyid"] = s.keyid
            sigs.append(d)
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": sigs,
        }

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`: the ledger leaf.

        Written directly (the shape is fixed and keys are already in RFC 8785
        order); equal to ``canonical_json(self.to_dict())``, which the tests
        check for arbitrary envelopes.
        """
        sigs = ",".join(
            (f'{{"keyid":{_json_str(s.keyid)},"sig":"' if s.keyid else '{"sig":"')
            + base64.b64encode(s.sig).decode("ascii")
            + '"}'
            for s in self.signatures
        )
        text = (
            f'{{"payload":"{base64.b64encode(self.payload).decode("ascii")}",'
            f'"payloadType":{_json_str(self.payload_type)},"signatures":[{sigs}]}}'
        )
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalizationError("envelope string contains a lone surrogate") from exc

    def sha256(self) -> str:
        """``envelope_sha256``: hex SHA-256 of :meth:`canonical_bytes`."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    @classmethod
    def parse(cls, data: bytes) -> Envelope:
        """Parse an envelope from outside bytes strictly; :class:`FormatError` names the field."""
        doc = parse_json(data, max_bytes=_MAX_ENVELOPE_BYTES)
        if type(doc) is not dict:
            raise FormatError("envelope: expected a JSON object")
        unknown = sorted(set(doc) - {"payload", "payloadType", "signatures"})
        if unknown:
            raise FormatError(f"envelope.{unknown[0]}: unknown field")
        for key in ("payload", "payloadType", "signatures"):
            if key not in doc:
                raise FormatError(f"envelope.{key}: required field is missing")
        payload = _b64decode(doc["payload"], "envelope.payload")
        payload_type = doc["payloadType"]
        if type(payload_type) is not str or not payload_type:
            raise FormatError("envelope.payloadType: expected a non-empty string")
        raw_sigs = doc["signatures"]
        if type(raw_sigs) is not list or not raw_sigs:
            raise FormatError("envelope.signatures: expected a non-empty array")
        signatures = []
        for i, item in enumerate(raw_sigs):
            path = f"envelope.signatures[{i}]"
            if type(item) is not dict:
                raise FormatError(f"{path}: expected an object")
            extra = sorted(set(item) - {"keyid", "sig"})
            if extra:
                raise FormatError(f"{path}.{extra[0]}: unknown field")
            if "sig" not in item:
                raise FormatError(f"{path}.sig: required field is missing")
            keyid = item.get("keyid", "")
            if type(keyid) is not str:
                raise FormatError(f"{path}.keyid: expected a string")
            signatures.append(Signature(keyid, _b64decode(item["sig"], f"{path}.sig")))
        return cls(payload, payload_type, tuple(signatures), raw=bytes(data))


def sign_envelope(
    payload: bytes, signer: Signer, payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> Envelope:
    """Sign ``payload`` (exact bytes) into a one-signature DSSE envelope."""
    sig = signer.sign(pae(payload_type, payload))
    return Envelope(bytes(payload), payload_type, (Signature(signer.keyid, sig),))


def _json_bytes(text: str) -> bytes:
    """The RFC 8785 string form of ``text`` as UTF-8 (a lone surrogate raises)."""
    try:
        return _json_str(text).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError("envelope string contains a lone surrogate") from exc


def sign_leaves(
    payloads: Iterable[bytes],
    signer: Signer,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    *,
    pool: SigningPool | None = None,
) -> list[bytes]:
    """Sign each payload into a one-signature DSSE envelope; return the envelopes' leaf bytes.

    Byte for byte ``sign_envelope(p, signer, payload_type).canonical_bytes()``
    for each ``p``, in order, with the envelope written straight into its
    fixed RFC 8785 shape. ``payloads`` is consumed lazily: with a ``pool``
    (which must hold ``signer``'s key), each chunk goes to an idle worker
    process as soon as it has been produced, so producing the payloads
    (canonicalizing statements) overlaps with signing them.
    """
    keyid = signer.keyid
    head = b'{"payload":"'
    mid = b'","payloadType":' + _json_bytes(payload_type) + b',"signatures":[{'
    if keyid:
        mid += b'"keyid":' + _json_bytes(keyid) + b","
    mid += b'"sig":"'
    tail = b'"}]}'
    t = payload_type.encode("utf-8")
    prefix = b"DSSEv1 %d %b " % (len(t), t)
    b64 = base64.b64encode
    if pool is not None:
        if pool.keyid != keyid:
            raise InputError(f"signing pool holds key {pool.keyid}, not {keyid}")
        bodies: list[bytes] = []

        def messages() -> Iterator[bytes]:
            for p in payloads:
                bodies.append(p)
                yield b"%b%d %b" % (prefix, len(p), p)  # PAE, see pae()

        sigs = pool.sign_all(messages())
        return [
            b"".join((head, b64(p), mid, b64(s), tail)) for p, s in zip(bodies, sigs, strict=True)
        ]
    sign = signer.sign
    out = []
    for p in payloads:
        sig = sign(b"%b%d %b" % (prefix, len(p), p))  # PAE, see pae()
        out.append(b"".join((head, b64(p), mid, b64(sig), tail)))
    return out


# --------------------------------------------------------------------------
# Signing in worker processes

# The worker: reads the raw 32-byte private key from stdin, answers with the raw
# public key, then serves requests until stdin closes. A request is a 4-byte
# big-endian count n, n 4-byte big-endian message lengths, then the messages;
# the answer is the n 64-byte Ed25519 signatures, in order. It imports nothing
# from provgate, so it starts fast and needs only ``cryptography``.
_WORKER_SOURCE: Final = """
import os, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

def read(n):
    parts = []
    while n:
        b = os.read(0, min(n, 1 << 20))
        if not b:
            sys.exit(0)
        parts.append(b)
        n -= len(b)
    return b"".join(parts)

def write(data):
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]

sign = Ed25519PrivateKey.from_private_bytes(read(32)).sign
write(sign.__self__.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
while True:
    n = int.from_bytes(read(4), "big")
    lengths = struct.unpack(">%dI" % n, read(4 * n))
    data = read(sum(lengths))
    sigs, at = [], 0
    for size in lengths:
        sigs.append(sign(data[at:at + size]))
        at += size
    write(b"".join(sigs))
"""

_SIG_SIZE: Final = 64
#: Messages per request to a worker (~1.5 ms of signing): small enough that
#: little is left to steal when the batch ends, large enough that the
#: request's system calls and wake-ups are amortized.
_POOL_CHUNK: Final = 32
#: A request stays below a pipe's buffer (64 KiB on Linux), so handing it to an
#: idle worker never blocks on the worker being scheduled to read it.
_POOL_CHUNK_BYTES: Final = 48 * 1024


def _read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError("signing worker closed its pipe")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _is_python(executable: str | None) -> bool:
    """Whether ``executable`` names a Python interpreter.

    An embedding host (uWSGI, mod_wsgi) may leave its own binary in
    ``sys.executable``; that must not be started with a worker's arguments.
    """
    return bool(executable) and Path(str(executable)).name.lower().startswith(("python", "pypy"))


class _Worker:
    __slots__ = ("proc", "rfd", "stdin", "stdout", "wfd")

    def __init__(self, proc: subprocess.Popen[bytes], stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.proc = proc
        self.stdin = stdin
        self.stdout = stdout
        self.wfd = stdin.fileno()
        self.rfd = stdout.fileno()

    def stop(self) -> None:
        try:
            self.stdin.close()  # EOF: the worker exits
            self.stdout.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)


def _stop_workers(workers: list[_Worker], starting: list[_Worker], pid: int) -> None:
    if os.getpid() != pid:  # a forked copy of the owner: the workers are not ours
        return
    for w in workers:
        if w in starting:  # still importing: it would read EOF only when done
            w.proc.kill()
        w.stop()
    workers.clear()


class SigningPool:
    """Ed25519 signing of large batches in worker processes; byte-identical to signing in-process.

    ``cryptography`` holds the GIL while it signs, so threads do not sign in
    parallel; processes do. Each worker is a fresh interpreter started with
    ``subprocess`` (``sys.executable -P -c <worker>``): fork plus an immediate
    exec, so nothing of the parent (threads, locks, open connections of an
    orchestrator's worker, its ``__main__``) is inherited, and no
    ``multiprocessing`` start method is involved. The raw private key reaches
    a worker only through its stdin pipe: never a file, an argument or an
    environment variable; workers write nothing but signatures and their
    stderr goes to ``/dev/null``, so a failing worker cannot print the key.

    Workers start in the background: until a worker has answered its
    handshake (its public key, which must match), and whenever a worker
    fails, the calling process signs the chunk itself, so a batch never
    fails or waits for lack of workers. The calling process also signs
    chunks while it waits. Ed25519 signatures are deterministic (RFC 8032),
    so the result is the same bytes as serial signing. A pool is used by one
    thread at a time (others sign in-process meanwhile) and only in the
    process that created it (a forked child signs in-process). ``close()``
    ends the workers; they also exit when the parent dies (their stdin
    closes).
    """

    def __init__(self, signer: Ed25519Signer, workers: list[_Worker]) -> None:
        self._signer = signer
        self._public = signer.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._starting = list(workers)
        self._idle: list[_Worker] = []
        self._late: dict[int, tuple[_Worker, int]] = {}
        self._all = list(workers)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(
            self, _stop_workers, self._all, self._starting, self._pid
        )

    @property
    def keyid(self) -> str:
        """The key id of the key the workers hold."""
        return self._signer.keyid

    @property
    def workers(self) -> int:
        """How many workers are running or starting."""
        return len(self._all)

    @classmethod
    def start(cls, signer: Ed25519Signer, workers: int) -> SigningPool | None:
        """Start ``workers`` signing processes for ``signer``; None where processes cannot run."""
        if workers < 1 or not hasattr(select, "poll") or not _is_python(sys.executable):
            return None
        raw = signer.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        started: list[_Worker] = []
        try:
            for _ in range(workers):
                proc = subprocess.Popen(
                    [sys.executable, "-P", "-c", _WORKER_SOURCE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    bufsize=0,
                )
                if proc.stdin is None or proc.stdout is None:  # pragma: no cover - PIPE given
                    proc.kill()
                    raise OSError("signing worker has no pipes")
                worker = _Worker(proc, proc.stdin, proc.stdout)
                started.append(worker)
                _write_all(worker.wfd, raw)  # 32 bytes into an empty pipe: never blocks
        except (OSError, ValueError):
            for w in started:
                w.stop()
            return None
        return cls(signer, started)

    def _drop(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError):
            self._all.remove(worker)
        worker.proc.kill()
        worker.stop()

    def sign_all(self, messages: Iterable[bytes]) -> list[bytes]:
        """Ed25519 signatures of ``messages``, in order (consumed lazily, chunk by chunk)."""
        sign = self._signer.sign
        if os.getpid() != self._pid or not self._lock.acquire(blocking=False):
            return [sign(m) for m in messages]
        try:
            return self._sign_all(messages)
        finally:
            self._lock.release()

    def _sign_all(self, messages: Iterable[bytes]) -> list[bytes]:
        # Chunks of messages queue in `ready` as they are produced; idle workers
        # take them from the front. Once all are produced, this process signs
        # from the back of the queue, then steals the chunks workers still hold,
        # signing them from their end until the worker answers: it never waits
        # for a worker (on a loaded machine a worker may wait long for a CPU).
        # A worker whose chunk was signed here in full is drained later (its
        # answer is the same bytes, Ed25519 being deterministic).
        sign = self._signer.sign
        results: list[bytes] = []
        ready: collections.deque[tuple[int, list[bytes]]] = collections.deque()
        busy: dict[int, tuple[_Worker, int, list[bytes]]] = {}  # read fd -> job
        late = self._late  # read fd -> (worker, answer size to discard)

        def collect(block: bool) -> None:
            waiting = [w.rfd for w in self._starting] + list(busy) + list(late)
            if not waiting:
                return
            poller = select.poll()  # not select(): no FD_SETSIZE limit in busy hosts
            for fd in waiting:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(None if block else 0):
                if fd in busy:
                    worker, start, chunk = busy.pop(fd)
                    try:
                        raw = _read_exact(fd, _SIG_SIZE * len(chunk))
                    except (OSError, EOFError):
                        self._drop(worker)
                        ready.appendleft((start, chunk))
                        continue
                    results[start : start + len(chunk)] = [
                        raw[i : i + _SIG_SIZE] for i in range(0, len(raw), _SIG_SIZE)
                    ]
                    self._idle.append(worker)
                elif fd in late:
                    worker, size = late.pop(fd)
                    try:
                        _read_exact(fd, size)
                    except (OSError, EOFError):
                        self._drop(worker)
                        continue
                    self._idle.append(worker)
                else:  # a starting worker's handshake
                    worker = next(w for w in self._starting if w.rfd == fd)
                    self._starting.remove(worker)
                    try:
                        ok = _read_exact(fd, len(self._public)) == self._public
                    except (OSError, EOFError):
                        ok = False
                    if ok:
                        self._idle.append(worker)
                    else:
                        self._drop(worker)

        def dispatch() -> None:
            while self._idle and ready:
                worker = self._idle.pop()
                start, chunk = ready.popleft()
                request = b"".join(
                    (
                        len(chunk).to_bytes(4, "big"),
                        struct.pack(f">{len(chunk)}I", *map(len, chunk)),
                        *chunk,
                    )
                )
                try:
                    _write_all(worker.wfd, request)
                except OSError:
                    self._drop(worker)
                    ready.appendleft((start, chunk))
                    continue
                busy[worker.rfd] = (worker, start, chunk)

        def steal() -> None:
            fd, (worker, start, chunk) = next(iter(busy.items()))
            answered = select.poll()
            answered.register(fd, select.POLLIN)
            at = len(chunk)
            while at and not answered.poll(0):
                at -= 1
                results[start + at] = sign(chunk[at])
            if not at:  # all signed here: discard the worker's answer when it comes
                del busy[fd]
                late[fd] = (worker, _SIG_SIZE * len(chunk))

        def produced() -> Iterator[list[bytes]]:
            chunk: list[bytes] = []
            size = 0
            for m in messages:
                chunk.append(m)
                size += len(m)
                if len(chunk) == _POOL_CHUNK or size >= _POOL_CHUNK_BYTES:
                    yield chunk
                    chunk, size = [], 0
            if chunk:
                yield chunk

        try:
            for chunk in produced():
                ready.append((len(results), chunk))
                results.extend([b""] * len(chunk))
                collect(block=False)
                dispatch()
            while ready or busy:
                collect(block=False)
                dispatch()
                if ready:
                    start, chunk = ready.pop()
                    results[start : start + len(chunk)] = [sign(m) for m in chunk]
                elif busy:
                    steal()
        finally:
            for fd, (worker, _, chunk) in busy.items():  # after an error: drain them later
                late[fd] = (worker, _SIG_SIZE * len(chunk))
        return results

    def close(self) -> None:
        """End the workers (idempotent)."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"SigningPool(keyid={self.keyid!r}, workers={len(self._all)})"


class KeyPolicy(Protocol):
    """What :func:`verify_envelope` asks of a trust store (see :mod:`prov_core.trust`)."""

    def check(self, keyid: str, predicate_type: str | None) -> None:
        """Raise UntrustedKeyError/RevokedKeyError unless ``keyid`` may sign ``predicate_type``."""
        ...

    def public_key(self, keyid: str) -> Ed25519PublicKey:
        """The public key of ``keyid``; UntrustedKeyError if unknown."""
        ...


def _keyed(cls: type[_E], keyid: str, reason: str, *, detail: str | None = None) -> _E:
    """A ``cls`` error whose message names the key, carrying ``keyid`` and ``reason``."""
    return cls(f"key {keyid or '(none)'}: {detail or reason}", keyid=keyid, reason=reason)


def _statement_type(envelope: Envelope) -> str | None:
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return None
    doc = parse_json(envelope.payload)
    ptype = doc.get("predicateType") if type(doc) is dict else None
    if type(ptype) is not str or not ptype:
        raise FormatError("statement.predicateType: expected a non-empty string")
    return ptype


def verify_envelope(
    envelope: Envelope, trust_store: KeyPolicy, *, predicate_type: str | None = None
) -> bytes:
    """Verify ``envelope`` against the trust store; return the verified payload bytes.

    Raises :class:`SignatureError`, :class:`UntrustedKeyError` or
    :class:`RevokedKeyError`; each carries ``keyid`` and ``reason``.
    """
    # 1. What the payload claims to be decides which keys may sign it. For an
    #    in-toto payload that is its predicateType (read from the payload when
    #    the caller has not parsed it); other payload types need a "*" key.
    if predicate_type is None:
        predicate_type = _statement_type(envelope)
    if not envelope.signatures:
        raise _keyed(SignatureError, "", "envelope has no signatures")
    message = envelope.pae()
    verified = False
    untrusted: UntrustedKeyError | None = None
    # 2. Every signature by a key the store knows must verify; a signature by a
    #    revoked key fails the envelope whatever else signed it.
    for keyid, sig in envelope.signatures:
        try:
            trust_store.check(keyid, predicate_type)
        except RevokedKeyError as exc:
            if hasattr(exc, "keyid"):
                raise
            raise _keyed(RevokedKeyError, keyid, str(exc)) from exc
        except UntrustedKeyError as exc:
            if untrusted is None:
                untrusted = (
                    exc if hasattr(exc, "keyid") else _keyed(UntrustedKeyError, keyid, str(exc))
                )
            continue
        try:
            trust_store.public_key(keyid).verify(sig, message)
        except InvalidSignature as exc:
            raise _keyed(
                SignatureError, keyid, "signature does not verify over the envelope payload"
            ) from exc
        verified = True
    # 3. At least one trusted signature must have verified.
    if not verified:
        raise untrusted or _keyed(UntrustedKeyError, "", "no signature by a trusted key")
    return envelope.payload


def _benchmark() -> None:  # pragma: no cover - measurement helper
    """Print the cost of signing and canonicalizing one ~1 KB statement."""
    import timeit

    from prov_core.statement import (
        SampleSummary,
        Statement,
        Subject,
        ingest_predicate,
    )

    signer = Ed25519Signer.generate()
    predicate = ingest_predicate(
        source_uri="https://example.org/data/reviews.parquet",
        issuer="Example Org",
        retrieved_at="2025-01-02T03:04:05Z",
        collection_method="download",
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        origin_geography="DE",
        confidentiality="public",
        consent_location="https://example.org/consent",
        intended_use="training a sentiment classifier",
        collector="worker-7@build-host",
        samples=SampleSummary(count=120000, root="cd" * 32, leaf_encoding="arrow-row-v1"),
        manifest={"blake3": "ef" * 32, "files": 12, "bytes": 104857600},
    )
    statement = Statement.of([Subject("dataset/reviews", "ab" * 32)], predicate)
    payload = statement.canonical_bytes()
    n = 2000

    def best(fn: Any) -> float:
        return min(timeit.repeat(fn, number=n, repeat=7)) / n

    print(
        f"payload {len(payload)} B, leaf {len(sign_envelope(payload, signer).canonical_bytes())} B"
    )
    print(f"ed25519 sign                    {best(lambda: signer.sign(payload)) * 1e6:6.1f} us")
    t = best(lambda: sign_envelope(payload, signer).canonical_bytes())
    print(f"sign + envelope canonical bytes {t * 1e6:6.1f} us")
    t = best(lambda: sign_envelope(statement.canonical_bytes(), signer).canonical_bytes())
    print(f"statement + sign + envelope     {t * 1e6:6.1f} us")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
