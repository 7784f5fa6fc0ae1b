"""DSSE interoperability with securesystemslib's independent implementation."""

from __future__ import annotations

import json

import pytest
from securesystemslib import exceptions as sslib_exceptions
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from prov_core.canonical import canonical_json
from prov_core.errors import UntrustedKeyError
from prov_core.signing import Ed25519Signer, Envelope, pae, sign_envelope, verify_envelope
from prov_core.statement import INGEST_V1, STATEMENT_TYPE
from prov_core.trust import TrustStore

PAYLOAD = canonical_json(
    {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "reviews", "digest": {"sha256": "c" * 64}}],
        "predicateType": INGEST_V1,
        "predicate": {"note": "é ü \U0001f600"},
    }
)


def sslib_key(signer: Ed25519Signer) -> SSlibKey:
    return SSlibKey.from_crypto(signer.public_key, keyid=signer.keyid)


def test_pae_matches_securesystemslib() -> None:
    theirs = SslibEnvelope(PAYLOAD, "application/vnd.in-toto+json", {})
    assert theirs.pae() == pae("application/vnd.in-toto+json", PAYLOAD)


def test_securesystemslib_verifies_our_envelope() -> None:
    signer = Ed25519Signer.generate()
    leaf = sign_envelope(PAYLOAD, signer).canonical_bytes()
    theirs = SslibEnvelope.from_dict(json.loads(leaf))
    assert theirs.payload == PAYLOAD
    accepted = theirs.verify([sslib_key(signer)], 1)
    assert list(accepted) == [signer.keyid]


def test_securesystemslib_rejects_our_envelope_when_tampered() -> None:
    signer = Ed25519Signer.generate()
    doc = json.loads(sign_envelope(PAYLOAD, signer).canonical_bytes())
    doc["payloadType"] = "application/json"
    with pytest.raises(sslib_exceptions.VerificationError):
        SslibEnvelope.from_dict(doc).verify([sslib_key(signer)], 1)


def test_we_verify_an_envelope_securesystemslib_signed() -> None:
    ours = Ed25519Signer.generate()  # same key, used by their signer
    their_signer = CryptoSigner(ours.private_key, sslib_key(ours))
    theirs = SslibEnvelope(PAYLOAD, "application/vnd.in-toto+json", {})
    theirs.sign(their_signer)
    data = json.dumps(theirs.to_dict()).encode()

    envelope = Envelope.parse(data)
    assert envelope.raw == data
    store = TrustStore.empty()
    store.add(ours.public_key_pem())
    assert verify_envelope(envelope, store) == PAYLOAD
    # and the leaf we would store is the RFC 8785 form of what they sent
    assert envelope.canonical_bytes() == canonical_json(json.loads(data))


def test_securesystemslib_default_keyid_is_not_ours() -> None:
    # sslib's default key id hashes its own key JSON, not the SPKI DER: such an
    # envelope carries a key id our trust store does not know.
    ours = Ed25519Signer.generate()
    their_signer = CryptoSigner(ours.private_key)
    assert their_signer.public_key.keyid != ours.keyid
    theirs = SslibEnvelope(PAYLOAD, "application/vnd.in-toto+json", {})
    theirs.sign(their_signer)
    store = TrustStore.empty()
    store.add(ours)
    with pytest.raises(UntrustedKeyError, match=their_signer.public_key.keyid):
        verify_envelope(Envelope.parse(json.dumps(theirs.to_dict()).encode()), store)
