"""The trust store: which public keys may sign which predicate types.

``$PROVGATE_HOME/trust.json``, version 1::

    {"version": 1,
     "keys": {
       KEYID: {"public_key": PEM,                      SubjectPublicKeyInfo, Ed25519
               "status": "active" | "retired" | "revoked",
               "predicate_types": ["*"] | [URI, ...],
               "note_name": str,                       name in signed notes
               "created": RFC3339,
               "retired": RFC3339,                     when status left "active"
               "revoked": RFC3339, "reason": str}}}    revoked keys only

KEYID is the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo
(:func:`prov_core.signing.keyid_of`); loading checks that every entry's key
hashes to its id. Statuses:

* ``active``: may sign new records;
* ``retired``: rotated out; the records it signed stay valid;
* ``revoked``: every record it ever signed fails verification with the reason.

:meth:`TrustStore.check` is what :func:`prov_core.signing.verify_envelope`
asks; it raises :class:`~prov_core.errors.UntrustedKeyError` or
:class:`~prov_core.errors.RevokedKeyError`, each carrying ``keyid`` and
``reason``. The ledger keeps the history of changes as key-event records
(``https://provgate.dev/key-event/v1``); this file is the current state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from prov_core._fs import write_atomic
from prov_core.errors import (
    ConfigError,
    FormatError,
    InputError,
    RevokedKeyError,
    UntrustedKeyError,
)
from prov_core.signing import (
    Signer,
    _keyed,
    keyid_of,
    public_key_from_pem,
    public_key_pem,
)
from prov_core.statement import rfc3339

__all__ = ["ANY_PREDICATE", "KeyStatus", "TrustEntry", "TrustStore"]

#: ``predicate_types`` entry allowing a key to sign every predicate type.
ANY_PREDICATE: Final = "*"
KeyStatus = Literal["active", "retired", "revoked"]
_STATUSES: Final = ("active", "retired", "revoked")
_VERSION: Final = 1
_MAX_BYTES: Final = 16 * 1024 * 1024


def _now() -> str:
    return rfc3339(datetime.now(UTC).replace(microsecond=0))


@dataclass(frozen=True)
class TrustEntry:
    """One key in the trust store."""

    keyid: str
    public_key_pem: str
    status: KeyStatus
    predicate_types: tuple[str, ...]
    note_name: str
    created: str
    retired: str | None = None
    revoked: str | None = None
    reason: str | None = None

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        """The key as a ``cryptography`` object."""
        return public_key_from_pem(self.public_key_pem)

    def allows(self, predicate_type: str | None) -> bool:
        """Whether this key may sign ``predicate_type`` (``None``: a non-in-toto payload)."""
        return ANY_PREDICATE in self.predicate_types or (
            predicate_type is not None and predicate_type in self.predicate_types
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry's JSON object (without the key id, which is its key)."""
        d: dict[str, Any] = {
            "public_key": self.public_key_pem,
            "status": self.status,
            "predicate_types": list(self.predicate_types),
            "note_name": self.note_name,
            "created": self.created,
        }
        for name in ("retired", "revoked", "reason"):
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        return d


class TrustStore:
    """The keys provgate trusts, by key id. Changes stay in memory until :meth:`save`."""

    def __init__(self, entries: Iterable[TrustEntry] = ()) -> None:
        """A store holding ``entries`` (checked: each key must hash to its id)."""
        self._entries: dict[str, TrustEntry] = {}
        self._keys: dict[str, Ed25519PublicKey] = {}
        for entry in entries:
            self._put(entry)

    def _put(self, entry: TrustEntry) -> None:
        if entry.keyid not in self._keys:
            key = entry.public_key
            if keyid_of(key) != entry.keyid:
                raise FormatError(f"public key of {entry.keyid} hashes to {keyid_of(key)}")
            self._keys[entry.keyid] = key
        self._entries[entry.keyid] = entry

    # ---------------------------------------------------------------- files

    @classmethod
    def empty(cls) -> TrustStore:
        """A store with no keys."""
        return cls()

    @classmethod
    def load(cls, path: Path | str) -> TrustStore:
        """Read ``trust.json``; :class:`ConfigError` naming the file if unreadable or corrupt."""
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = f.read(_MAX_BYTES + 1)
        except FileNotFoundError as exc:
            raise ConfigError(
                f"trust store {path} does not exist; run `provgate init` to create one"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read trust store {path}: {exc.strerror}") from exc
        try:
            return cls.from_bytes(data)
        except FormatError as exc:
            raise ConfigError(f"trust store {path} is corrupt: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustStore:
        """Parse a trust store document; :class:`FormatError` naming the bad field."""
        from prov_core.canonical import parse_json

        doc = parse_json(data, max_bytes=_MAX_BYTES)
        if type(doc) is not dict:
            raise FormatError("expected a JSON object")
        if doc.get("version") != _VERSION:
            raise FormatError(f"version: expected {_VERSION}, got {doc.get('version')!r}")
        keys = doc.get("keys")
        if type(keys) is not dict:
            raise FormatError("keys: expected an object")
        store = cls()
        for keyid, raw in keys.items():
            store._put(_parse_entry(keyid, raw))
        return store

    def to_bytes(self) -> bytes:
        """The document, indented JSON with sorted keys (meant to be read and reviewed)."""
        doc = {
            "version": _VERSION,
            "keys": {k: e.to_dict() for k, e in sorted(self._entries.items())},
        }
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()

    def save(self, path: Path | str) -> None:
        """Write atomically: a temporary file in the same directory, fsync, ``os.replace``."""
        path = Path(path)
        data = self.to_bytes()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, mode=0o644)  # public keys only
        except OSError as exc:
            raise ConfigError(f"cannot write trust store {path}: {exc.strerror}") from exc

    # -------------------------------------------------------------- changes

    def add(
        self,
        signer_or_pem: Signer | str | bytes | Ed25519PublicKey,
        predicate_types: Iterable[str] = (ANY_PREDICATE,),
        note_name: str = "",
        *,
        status: Literal["active", "retired"] = "active",
    ) -> TrustEntry:
        """Trust a public key (from a signer, PEM or key object); return its entry."""
        key = _public_key(signer_or_pem)
        keyid = keyid_of(key)
        if keyid in self._entries:
            raise InputError(f"key {keyid} is already in the trust store")
        types = tuple(predicate_types)
        if not types or not all(isinstance(t, str) and t for t in types):
            raise InputError("predicate_types must be '*' or a list of predicate type URIs")
        if status not in ("active", "retired"):
            raise InputError(f"a key is added as active or retired, not {status!r}; see revoke()")
        entry = TrustEntry(
            keyid=keyid,
            public_key_pem=public_key_pem(key),
            status=status,
            predicate_types=types,
            note_name=note_name,
            created=_now(),
        )
        self._put(entry)
        return entry

    def rotate(
        self,
        new_key: Signer | str | bytes | Ed25519PublicKey,
        *,
        old_keyid: str | None = None,
        note_name: str | None = None,
        predicate_types: Iterable[str] | None = None,
    ) -> TrustEntry:
        """Retire ``old_keyid`` (default: :meth:`active`) and trust ``new_key`` as active.

        Records the old key signed stay valid. The new key inherits the old
        one's predicate types and note name unless given.
        """
        old_id = old_keyid or self.active()
        old = self._entries.get(old_id) if old_id else None
        if old is None:
            raise InputError("no active key to rotate from; use add() for a first key")
        if old.status != "active":
            raise InputError(f"key {old.keyid} is {old.status}, not active")
        entry = self.add(
            new_key,
            predicate_types=old.predicate_types if predicate_types is None else predicate_types,
            note_name=old.note_name if note_name is None else note_name,
        )
        self._entries[old.keyid] = replace(old, status="retired", retired=_now())
        return entry

    def retire(self, keyid: str) -> TrustEntry:
        """Stop ``keyid`` signing new records; what it signed stays valid."""
        entry = self._require(keyid)
        if entry.status != "active":
            raise InputError(f"key {keyid} is {entry.status}, not active")
        retired = replace(entry, status="retired", retired=_now())
        self._entries[keyid] = retired
        return retired

    def revoke(self, keyid: str, reason: str) -> TrustEntry:
        """Revoke ``keyid``: every record it signed fails verification with ``reason``."""
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("a revocation needs a reason")
        entry = self._require(keyid)
        now = _now()
        revoked = replace(
            entry, status="revoked", revoked=now, reason=reason, retired=entry.retired or now
        )
        self._entries[keyid] = revoked
        return revoked

    # -------------------------------------------------------------- queries

    def check(self, keyid: str, predicate_type: str | None) -> None:
        """Pass if ``keyid`` may have signed ``predicate_type``; else raise with the reason.

        Active and retired keys pass (a retired key's records stay valid);
        revoked keys raise :class:`RevokedKeyError`; unknown keys and keys not
        allowed for ``predicate_type`` raise :class:`UntrustedKeyError`.
        """
        entry = self._entries.get(keyid)
        if entry is None:
            raise _keyed(UntrustedKeyError, keyid, "not in the trust store")
        if entry.status == "revoked":
            reason = entry.reason or "no reason given"
            raise _keyed(
                RevokedKeyError, keyid, reason, detail=f"revoked at {entry.revoked}: {reason}"
            )
        if not entry.allows(predicate_type):
            what = predicate_type or "payloads that are not in-toto statements"
            raise _keyed(
                UntrustedKeyError,
                keyid,
                f"not allowed to sign {what} (allowed: {', '.join(entry.predicate_types)})",
            )

    def public_key(self, keyid: str) -> Ed25519PublicKey:
        """The public key of ``keyid`` whatever its status; UntrustedKeyError if unknown."""
        key = self._keys.get(keyid)
        if key is None:
            raise _keyed(UntrustedKeyError, keyid, "not in the trust store")
        return key

    def get(self, keyid: str) -> TrustEntry | None:
        """The entry of ``keyid``, or ``None``."""
        return self._entries.get(keyid)

    def active(self) -> str | None:
        """The key id of the most recently added active key, or ``None``."""
        active = [e for e in self._entries.values() if e.status == "active"]
        if not active:
            return None
        return max(active, key=lambda e: e.created).keyid

    def entries(self) -> list[TrustEntry]:
        """Every entry, oldest first (then by key id)."""
        return sorted(self._entries.values(), key=lambda e: (e.created, e.keyid))

    def __repr__(self) -> str:
        counts = {s: sum(e.status == s for e in self._entries.values()) for s in _STATUSES}
        return f"TrustStore({', '.join(f'{n} {s}' for s, n in counts.items())})"

    def _require(self, keyid: str) -> TrustEntry:
        entry = self._entries.get(keyid)
        if entry is None:
            raise InputError(f"no key {keyid} in the trust store")
        return entry


def _public_key(value: Signer | str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, str | bytes):
        try:
            return public_key_from_pem(value)
        except FormatError as exc:
            raise InputError(f"cannot trust this key: {exc}") from exc
    try:
        key = public_key_from_pem(value.public_key_pem())
    except FormatError as exc:
        raise InputError(f"signer {value.keyid}: {exc}") from exc
    if keyid_of(key) != value.keyid:
        raise InputError(f"signer key id {value.keyid} is not the SHA-256 of its public key")
    return key


def _parse_entry(keyid: str, raw: Any) -> TrustEntry:
    path = f"keys.{keyid}"
    if type(raw) is not dict:
        raise FormatError(f"{path}: expected an object")

    def text(name: str, *, required: bool = True) -> str | None:
        value = raw.get(name)
        if value is None and not required:
            return None
        if type(value) is not str:
            raise FormatError(f"{path}.{name}: expected a string")
        return value

    status = raw.get("status")
    if status not in _STATUSES:
        raise FormatError(f"{path}.status: expected one of {', '.join(_STATUSES)}")
    types = raw.get("predicate_types")
    if type(types) is not list or not types or not all(type(t) is str and t for t in types):
        raise FormatError(f"{path}.predicate_types: expected a non-empty list of strings")
    public = text("public_key")
    assert public is not None
    try:
        key = public_key_from_pem(public)
    except FormatError as exc:
        raise FormatError(f"{path}.public_key: {exc}") from exc
    if keyid_of(key) != keyid:
        raise FormatError(f"{path}.public_key: key hashes to {keyid_of(key)}, not to its id")
    times: dict[str, str | None] = {}
    for name in ("created", "retired", "revoked"):
        value = text(name, required=name == "created")
        if value is not None:
            try:
                rfc3339(value)
            except InputError as exc:
                raise FormatError(f"{path}.{name}: expected an RFC 3339 timestamp") from exc
        times[name] = value
    if status == "revoked" and times["revoked"] is None:
        raise FormatError(f"{path}.revoked: a revoked key needs the time of revocation")
    return TrustEntry(
        keyid=keyid,
        public_key_pem=public,
        status=status,
        predicate_types=tuple(types),
        note_name=text("note_name", required=False) or "",
        created=times["created"] or "",
        retired=times["retired"],
        revoked=times["revoked"],
        reason=text("reason", required=False),
    )
