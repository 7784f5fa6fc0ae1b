"""Key rotation and revocation, recorded in the ledger.

The trust store decides what verifies; the ledger keeps the history. Each
change appends a key-event record (``KEY_EVENT_V1``):

- rotate: a new key is generated (mode 0600) and becomes active; the old
  one is retired. The event is signed by the old key — the holder of the
  previous key vouches for the new one — and is the last record that key may
  sign: anything it signs later fails verification. Records it signed before
  stay valid.
- revoke: every record the key ever signed fails verification from now on,
  with the reason. Revoking the active key rotates first, so the home keeps a
  key to sign with; the event is signed by the (new) active key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prov_core.errors import InputError
from prov_core.statement import Statement, Subject, key_event_predicate

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.signing import Ed25519Signer

__all__ = ["revoke_key", "rotate_key"]


def _record(home: Home, signer: Ed25519Signer, event: str, keyid: str, **extra: Any) -> int:
    from prov_core.ledger.checkpoint import NoteSigner
    from prov_core.ledger.sqlite import SQLiteLedger
    from prov_core.step import Recorder

    predicate = key_event_predicate(event=event, keyid=keyid, time=datetime.now(UTC), **extra)
    statement = Statement(
        subjects=[Subject(name=f"key:{keyid}", sha256=keyid)],
        predicate_type=predicate.predicate_type,
        predicate=predicate.to_dict(),
    )
    ledger = SQLiteLedger(
        home.ledger_path,
        origin=home.origin,
        note_signer=NoteSigner(home.origin, signer.private_key),
    )
    with Recorder(ledger, signer, origin=home.origin) as recorder:
        return recorder.record(statement).log_index


def rotate_key(home: Home) -> dict[str, Any]:
    """Generate a new active key, retire the old one, record the rotation."""
    from prov_core import signing

    trust = home.trust()
    old_id = home.own_keyid()
    if old_id is None:
        raise InputError(f"no active key of the trust store is held in {home.keys_dir} to rotate")
    old = signing.load_signer(home.keys_dir / f"{old_id}.pem")
    new = signing.generate_key(home.keys_dir)
    trust.rotate(new, old_keyid=old_id, note_name=home.origin)
    trust.save(home.trust_path)
    index = _record(home, old, "rotated", old_id, new_keyid=new.keyid)
    return {"event": "rotated", "old_keyid": old_id, "new_keyid": new.keyid, "log_index": index}


def revoke_key(home: Home, keyid: str, reason: str) -> dict[str, Any]:
    """Revoke ``keyid``; every record it signed fails verification from now on."""
    from prov_core import signing

    trust = home.trust()
    if keyid not in {e.keyid for e in trust.entries()}:
        raise InputError(f"no key {keyid} in {home.trust_path}; see `provgate keys list`")
    rotated = None
    if home.own_keyid() == keyid:
        rotated = rotate_key(home)
        trust = home.trust()
    trust.revoke(keyid, reason)
    trust.save(home.trust_path)
    active = home.own_keyid()
    if active is None:
        raise InputError(f"no active key of the trust store is held in {home.keys_dir}")
    signer = signing.load_signer(home.keys_dir / f"{active}.pem")
    index = _record(home, signer, "revoked", keyid, reason=reason)
    doc: dict[str, Any] = {"event": "revoked", "keyid": keyid, "reason": reason, "log_index": index}
    if rotated:
        doc["rotated"] = rotated
    return doc
