"""Federated learning: clients attest their updates; the aggregator verifies them, then aggregates.

A federation shares one ledger (each client records its own data's ingest and
snapshot records there, with its own key; only digests leave a client) and
one trust store, which says which keys may sign which predicate types.

Client side, :func:`attest_update` signs, with the client's own key, a
``https://provgate.dev/federated-update/v1`` statement
(:class:`~prov_core.statement.FederatedUpdatePredicate`) about the update it
is about to send: federation, round, client id, the BLAKE3 of the global
model it started from, its local data snapshots (pinned URI, manifest root,
signed snapshot record) and the BLAKE3, SHA-256, size and example count of
the update. The result, a :class:`SignedUpdate`, is what travels: the update
bytes with their DSSE envelope. The client appends nothing for the update.

Aggregator side, :meth:`Aggregator.check` judges one update against the
trust store and the ledger; every reason is collected (a failed signature
ends the checks: nothing else in the envelope can be believed):

1. ``unattested``: no envelope came with the update.
2. ``malformed``: the envelope does not parse or has more than one signature;
   ``untrusted-key``, ``revoked-key``, ``bad-signature``: it does not verify
   against the trust store for the federated-update predicate type.
3. ``malformed``: the payload is not a federated-update statement.
4. ``client-mismatch``: the signed client id is not the sender's;
   ``client-key``: clients are enrolled (``clients=``) and the key is not one
   of this client's.
5. ``wrong-federation``, ``wrong-round``, ``wrong-base-model``: not this
   federation, this round, or the global model the round starts from.
6. ``update-digest``: the bytes received do not hash to the signed BLAKE3 and
   SHA-256, have another size, or the subject is not the update's
   (a tampered update).
7. ``data-record``: a data snapshot's record is not in the ledger at its log
   index, does not hash to the signed envelope SHA-256, does not verify, or
   is not the snapshot record of that URI; ``data-root``: its manifest root
   is not the one signed; ``data-uncovered``: the snapshot holds objects no
   signed record covers.

:meth:`Aggregator.aggregate` runs one round (numbered as in the code):

1. check every update; a client's second update in a round is refused
   (``duplicate``);
2. record each refusal as a signed SLSA VSA v1 (``FAILED``) naming the
   client, its key and every reason (:data:`VERIFIER_ID`, subject: the update
   received; the refused envelope is named by SHA-256 only, never appended);
3. if fewer than ``min_accepted`` updates verified: raise
   :class:`~prov_core.errors.FederatedRoundRefused` naming every refusal;
4. append the accepted envelopes to the ledger as the clients signed them;
5. ``combine`` (FedAvg, ...) gets exactly the accepted updates;
6. sign the aggregate as SLSA Provenance v1 (buildType
   :data:`~prov_core.step.TRAINING_BUILD_TYPE`: the aggregate is a model)
   whose inputs are the base model (by BLAKE3) and every accepted update's
   record. So a lineage walk from the aggregate reaches every accepted
   client's update, its data snapshot record and that snapshot's ingest
   records, and none of a refused client's.

The core holds no numeric code: ``combine`` is the caller's (numpy, a
framework's state dicts, ...); provgate digests its bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from prov_core.canonical import canonical_json
from prov_core.custody import Reason, signature_code
from prov_core.digest import digest_bytes, manifest_sha256
from prov_core.errors import (
    FederatedRoundRefused,
    FormatError,
    InputError,
    VerificationError,
)
from prov_core.signing import Envelope, Signer, sign_envelope, verify_envelope
from prov_core.statement import (
    DSSE_MEDIA_TYPE,
    FEDERATED_UPDATE_V1,
    SNAPSHOT_V1,
    ClientData,
    FederatedUpdatePredicate,
    ResourceDescriptor,
    Statement,
    Subject,
    VerificationSummary,
    attestation_ref,
    check_identifier,
)
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, Recorder, record_step

if TYPE_CHECKING:
    from prov_core.snapshot_record import SnapshotResult
    from prov_core.trust import TrustStore

__all__ = [
    "POLICY_URI",
    "VERIFIER_ID",
    "AcceptedUpdate",
    "Aggregator",
    "Combine",
    "GlobalModel",
    "Refusal",
    "RoundResult",
    "SignedUpdate",
    "UpdateCheck",
    "attest_update",
    "client_data",
    "model_name",
    "update_name",
]

VERIFIER_ID: Final = "https://provgate.dev/federated/aggregator"
"""VERIFIER_ID is the ``verifier.id`` of the aggregator's refusal records."""
POLICY_URI: Final = "provgate:policy/federated-update"
"""POLICY_URI names the aggregator's acceptance checks in its refusal records."""

Combine = Callable[[Sequence["AcceptedUpdate"]], bytes]
"""Combine aggregates the accepted updates of a round into the new global model's bytes."""


def update_name(federation: str, round: int, client_id: str) -> str:
    """The subject name of a client's update: ``FEDERATION/round-N/CLIENT.update``."""
    return f"{federation}/round-{round}/{client_id}.update"


def model_name(federation: str, round: int) -> str:
    """The artifact name of a round's global model: ``FEDERATION/round-N/global.model``."""
    return f"{federation}/round-{round}/global.model"


# --------------------------------------------------------------------------
# Client side


@dataclass(frozen=True)
class SignedUpdate:
    """What a client sends: its id, the update's bytes and their DSSE envelope.

    ``envelope`` is the envelope's bytes (RFC 8785 JSON), or ``None`` for an
    update sent without an attestation (the aggregator refuses it).
    """

    client_id: str
    update: bytes
    envelope: bytes | None

    def __post_init__(self) -> None:
        check_identifier(self.client_id, "client id")
        if not isinstance(self.update, bytes):
            raise InputError(f"the update of {self.client_id} must be bytes")
        if self.envelope is not None and not isinstance(self.envelope, bytes):
            raise InputError(f"the envelope of {self.client_id} must be bytes or None")


def client_data(snapshot: SnapshotResult) -> ClientData:
    """The :class:`ClientData` of a snapshot a client committed (``commit_snapshot``'s result)."""
    a = snapshot.attestation
    d = a.descriptor()
    return ClientData(
        snapshot=a.subjects[0].name,
        root=snapshot.manifest.blake3,
        record=ResourceDescriptor(
            name=d["name"],
            uri=d["uri"],
            digest=d["digest"],
            media_type=DSSE_MEDIA_TYPE,
            annotations=d["annotations"],
        ),
    )


def attest_update(
    signer: Signer,
    *,
    federation: str,
    round: int,
    client_id: str,
    base_model: bytes,
    data: Sequence[ClientData],
    update: bytes,
    examples: int,
    parameters: Mapping[str, Any] | None = None,
    trained_at: datetime | None = None,
) -> SignedUpdate:
    """Sign an attestation of ``update`` with the client's key; return what to send.

    ``base_model`` is the global model's bytes as the client received them
    (their BLAKE3 is signed); ``data`` the local snapshots it trained on
    (:func:`client_data`); ``examples`` how many training examples the update
    stands for (its FedAvg weight). Raises :class:`InputError` for bad
    arguments; nothing is written anywhere.
    """
    if not isinstance(update, bytes) or not isinstance(base_model, bytes):
        raise InputError("update and base_model must be bytes")
    b3 = digest_bytes(update)
    name = update_name(
        check_identifier(federation, "federation"), round, check_identifier(client_id, "client id")
    )
    predicate = FederatedUpdatePredicate(
        federation=federation,
        round=round,
        client_id=client_id,
        base_model=digest_bytes(base_model),
        data=tuple(data),
        update_blake3=b3,
        update_sha256=hashlib.sha256(update).hexdigest(),
        update_size=len(update),
        examples=examples,
        trained_at=trained_at or datetime.now(UTC),
        parameters=parameters,
    )
    statement = Statement.of([Subject(name, manifest_sha256([(name, b3)]))], predicate)
    envelope = sign_envelope(statement.canonical_bytes(), signer)
    return SignedUpdate(client_id, update, envelope.canonical_bytes())


# --------------------------------------------------------------------------
# Aggregator side


@dataclass(frozen=True)
class GlobalModel:
    """A round's global model: its bytes and the record that produced them."""

    federation: str
    round: int
    data: bytes
    attestation: Attestation

    @functools.cached_property
    def blake3(self) -> str:
        """BLAKE3 of :attr:`data` (what clients sign as their base model), hashed once."""
        return digest_bytes(self.data)

    @functools.cached_property
    def artifact(self) -> Artifact:
        """The model as an artifact named :func:`model_name`."""
        return Artifact.from_bytes(model_name(self.federation, self.round), self.data)


@dataclass(frozen=True)
class UpdateCheck:
    """UpdateCheck is :meth:`Aggregator.check`'s verdict on one update: ``ok`` if no reason."""

    client_id: str
    update: bytes
    reasons: tuple[Reason, ...]
    envelope: Envelope | None = None
    statement: Statement | None = None
    keyid: str | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def examples(self) -> int:
        """The signed example count (0 when the statement did not verify)."""
        if self.statement is None:
            return 0
        return int(self.statement.predicate["update"]["examples"])


@dataclass(frozen=True)
class AcceptedUpdate:
    """An update that verified: the client, its bytes, its weight, and its record in the ledger."""

    client_id: str
    update: bytes
    examples: int
    keyid: str
    attestation: Attestation


@dataclass(frozen=True)
class Refusal:
    """A refused update: the client, every reason, and the recorded decision (SLSA VSA)."""

    client_id: str
    reasons: tuple[Reason, ...]
    decision: Attestation
    keyid: str | None = None
    envelope_sha256: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes, in order, each once."""
        return tuple(dict.fromkeys(r.code for r in self.reasons))

    def __str__(self) -> str:
        detail = "; ".join(r.message for r in self.reasons)
        return (
            f"{self.client_id}: {', '.join(self.codes)}: {detail} "
            f"(decision at log index {self.decision.log_index})"
        )


@dataclass(frozen=True)
class RoundResult:
    """One aggregated round: the new global model, the updates in it, and those refused."""

    round: int
    model: GlobalModel
    accepted: tuple[AcceptedUpdate, ...]
    refused: tuple[Refusal, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON summary: round, model digest and record, accepted and refused clients."""
        return {
            "round": self.round,
            "model": {
                "blake3": self.model.blake3,
                "log_index": self.model.attestation.log_index,
            },
            "accepted": [
                {
                    "client": a.client_id,
                    "examples": a.examples,
                    "log_index": a.attestation.log_index,
                }
                for a in self.accepted
            ],
            "refused": [
                {
                    "client": r.client_id,
                    "codes": list(r.codes),
                    "reasons": [x.message for x in r.reasons],
                    "decision": r.decision.log_index,
                }
                for r in self.refused
            ],
        }


class Aggregator:
    """Aggregator verifies client updates against a trust store and signs each round's model.

    ``recorder`` holds the federation's ledger and the aggregator's key (it
    must be allowed to sign SLSA Provenance and SLSA VSA records); ``trust``
    is the trust store updates are verified against. ``clients`` enrols
    clients: client id -> the key ids that may sign its updates; ``None``
    accepts any key the trust store allows for federated updates.
    """

    def __init__(
        self,
        recorder: Recorder,
        trust: TrustStore,
        *,
        federation: str,
        clients: Mapping[str, Collection[str]] | None = None,
        algorithm: str = "FedAvg",
    ) -> None:
        self.recorder = recorder
        self.trust = trust
        self.federation = check_identifier(federation, "federation")
        self.clients = (
            None
            if clients is None
            else {check_identifier(c, "client id"): frozenset(keys) for c, keys in clients.items()}
        )
        if not isinstance(algorithm, str) or not algorithm:
            raise InputError("algorithm must name the aggregation, e.g. 'FedAvg'")
        self.algorithm = algorithm

    # ---------------------------------------------------------------- start

    def start(self, model: bytes) -> GlobalModel:
        """Record the initial global model (round 0) and return it."""
        if not isinstance(model, bytes):
            raise InputError("the initial model must be bytes")
        artifact = Artifact.from_bytes(model_name(self.federation, 0), model)
        attestation = record_step(
            self.recorder,
            f"{self.federation}/round-0/init",
            outputs=[artifact],
            parameters={"federation": self.federation, "round": 0},
        )
        return GlobalModel(self.federation, 0, model, attestation)

    # ---------------------------------------------------------------- check

    def check(self, update: SignedUpdate, *, round: int, base: GlobalModel) -> UpdateCheck:
        """Judge one update for ``round`` started from ``base`` (steps in the module doc).

        Reads the ledger (the clients' data records); records nothing.
        """
        client = update.client_id
        reasons: list[Reason] = []

        def fail(
            code: str, message: str, envelope: Envelope | None = None, keyid: str | None = None
        ) -> UpdateCheck:
            reasons.append(Reason(code, client, message))
            return UpdateCheck(client, update.update, tuple(reasons), envelope, keyid=keyid)

        # 1. An attestation at all.
        if update.envelope is None:
            return fail(
                "unattested",
                "the update came without an attestation; the client must sign it "
                "(prov_core.federated.attest_update) with a key the trust store allows",
            )
        # 2. The envelope and its one signature, against the trust store.
        try:
            envelope = Envelope.parse(update.envelope)
        except FormatError as exc:
            return fail("malformed", f"the envelope does not parse: {exc}")
        if len(envelope.signatures) != 1:
            return fail(
                "malformed",
                f"the envelope carries {len(envelope.signatures)} signatures; an update is "
                "signed by its client alone",
            )
        keyid = envelope.signatures[0].keyid
        try:
            verify_envelope(envelope, self.trust, predicate_type=FEDERATED_UPDATE_V1)
        except VerificationError as exc:
            return fail(
                signature_code(exc), f"the attestation does not verify: {exc}", envelope, keyid
            )
        # 3. A federated-update statement.
        try:
            statement = Statement.parse(envelope.payload)
        except (FormatError, InputError) as exc:
            return fail("malformed", f"the statement does not parse: {exc}", envelope, keyid)
        if statement.predicate_type != FEDERATED_UPDATE_V1:
            return fail(
                "malformed",
                f"the statement is a {statement.predicate_type} record, "
                f"not a {FEDERATED_UPDATE_V1} record",
                envelope,
                keyid,
            )
        p = statement.predicate
        # 4. The client and its key.
        signed_client = p["client"]["id"]
        if signed_client != client:
            reasons.append(
                Reason(
                    "client-mismatch",
                    client,
                    f"the attestation was signed for client {signed_client!r}, "
                    f"but the update came from {client!r}",
                )
            )
        if self.clients is not None and keyid not in self.clients.get(client, frozenset()):
            reasons.append(
                Reason(
                    "client-key",
                    client,
                    f"key {keyid} is not enrolled for client {client!r}",
                )
            )
        # 5. This federation, this round, this base model.
        for code, what, signed, expected in (
            ("wrong-federation", "federation", p["federation"], self.federation),
            ("wrong-round", "round", p["round"], round),
            (
                "wrong-base-model",
                "base model BLAKE3",
                p["baseModel"]["digest"]["blake3"],
                base.blake3,
            ),
        ):
            if signed != expected:
                reasons.append(
                    Reason(code, client, f"signed {what} {signed!r}; this round's is {expected!r}")
                )
        # 6. The bytes received are the bytes signed.
        reasons.extend(_update_digest_reasons(client, update.update, statement))
        # 7. The local data: signed snapshot records in the ledger, with those roots.
        for i, item in enumerate(p["data"]):
            reasons.extend(self._data_reasons(client, i, item))
        return UpdateCheck(client, update.update, tuple(reasons), envelope, statement, keyid)

    def _data_reasons(self, client: str, i: int, item: Mapping[str, Any]) -> list[Reason]:
        """Step 7 for ``data[i]``: its snapshot record in the ledger, verified, with its root."""
        from prov_core.snapshot_record import parse_snapshot_record

        uri = item["snapshot"]
        record = item["record"]
        log_index: int = record["annotations"]["logIndex"]
        signed_sha = record["digest"]["sha256"]
        where = f"data[{i}] {uri}: snapshot record {log_index}"
        ledger = self.recorder.ledger
        size = ledger.size()
        if log_index >= size:
            msg = f"{where} is not in the ledger (size {size}); record the snapshot first"
            return [Reason("data-record", client, msg)]
        leaf = ledger.entry(log_index)
        if hashlib.sha256(leaf).hexdigest() != signed_sha:
            msg = f"{where} is not the record the client signed (its envelope sha256 differs)"
            return [Reason("data-record", client, msg)]
        try:
            rec = parse_snapshot_record(log_index, leaf)
            verify_envelope(Envelope.parse(leaf), self.trust, predicate_type=SNAPSHOT_V1)
        except FormatError as exc:
            return [Reason("data-record", client, f"{where} is not a snapshot record: {exc}")]
        except VerificationError as exc:
            return [Reason("data-record", client, f"{where} does not verify: {exc}")]
        reasons: list[Reason] = []
        if rec.statement.subjects[0].name != uri:
            msg = f"{where} describes {rec.statement.subjects[0].name}, not {uri}"
            reasons.append(Reason("data-record", client, msg))
        if rec.manifest_root != item["root"]["blake3"]:
            msg = (
                f"{where} signs manifest root {rec.manifest_root}; "
                f"the update signs {item['root']['blake3']}"
            )
            reasons.append(Reason("data-root", client, msg))
        if rec.uncovered:
            msg = (
                f"{where}: {len(rec.uncovered)} object(s) no signed record covers, "
                f"e.g. {rec.uncovered[0]}"
            )
            reasons.append(Reason("data-uncovered", client, msg))
        return reasons

    # ------------------------------------------------------------ aggregate

    def aggregate(
        self,
        updates: Sequence[SignedUpdate],
        *,
        base: GlobalModel,
        combine: Combine,
        round: int | None = None,
        min_accepted: int = 1,
        now: datetime | None = None,
    ) -> RoundResult:
        """Run one round from ``base`` (steps in the module doc); return what was recorded.

        ``round`` defaults to ``base.round + 1``. Raises
        :class:`FederatedRoundRefused` (after recording every refusal) when
        fewer than ``min_accepted`` updates verify, and :class:`InputError`
        for bad arguments or a ``combine`` that does not return bytes.
        """
        if base.federation != self.federation:
            raise InputError(
                f"the base model is of federation {base.federation!r}, not {self.federation!r}"
            )
        r = base.round + 1 if round is None else round
        if type(r) is not int or r < 1:
            raise InputError(f"round must be a positive integer, got {r!r}")
        if type(min_accepted) is not int or min_accepted < 1:
            raise InputError(f"min_accepted must be a positive integer, got {min_accepted!r}")
        when = datetime.now(UTC) if now is None else now
        # 1. Judge every update; a client's second update in the round is refused.
        passed: list[UpdateCheck] = []
        failed: list[UpdateCheck] = []
        seen: set[str] = set()
        for u in updates:
            if not isinstance(u, SignedUpdate):
                raise InputError(f"{u!r} is not a SignedUpdate")
            verdict = self.check(u, round=r, base=base)
            if verdict.ok and u.client_id in seen:
                verdict = dataclasses.replace(
                    verdict,
                    reasons=(
                        Reason("duplicate", u.client_id, f"a second update from it in round {r}"),
                    ),
                )
            (passed if verdict.ok else failed).append(verdict)
            if verdict.ok:
                seen.add(u.client_id)
        # 2. Record every refusal.
        refused = self._record_refusals(failed, round=r, base=base, when=when)
        # 3. Enough updates verified?
        if len(passed) < min_accepted:
            n = len(passed)
            listing = "\n".join(f"  - {x}" for x in refused)
            raise FederatedRoundRefused(
                f"round {r} of {self.federation} not aggregated: {n} update(s) verified, "
                f"{min_accepted} needed; {len(refused)} refused:\n{listing}",
                refusals=tuple(refused),
            )
        # 4. Append the accepted envelopes as the clients signed them.
        leaves = [v.envelope.canonical_bytes() for v in passed if v.envelope is not None]
        first = self.recorder.ledger.append(leaves).first_index
        accepted = tuple(
            AcceptedUpdate(
                client_id=v.client_id,
                update=v.update,
                examples=v.examples,
                keyid=v.keyid or "",
                attestation=Attestation(
                    first + i,
                    hashlib.sha256(leaf).hexdigest(),
                    FEDERATED_UPDATE_V1,
                    v.statement.subjects if v.statement is not None else (),
                    self.recorder.origin,
                ),
            )
            for i, (v, leaf) in enumerate(zip(passed, leaves, strict=True))
        )
        # 5. Combine exactly the accepted updates.
        data = combine(accepted)
        if not isinstance(data, bytes):
            raise InputError(f"combine returned {type(data).__name__}, not the model's bytes")
        # 6. Sign the aggregate: inputs are the base model and every accepted update.
        output = Artifact.from_bytes(model_name(self.federation, r), data)
        attestation = record_step(
            self.recorder,
            f"{self.federation}/round-{r}/aggregate",
            inputs=[base.artifact, *(a.attestation for a in accepted)],
            outputs=[output],
            parameters={
                "federation": self.federation,
                "round": r,
                "algorithm": self.algorithm,
                "accepted": [
                    {
                        "client": a.client_id,
                        "examples": a.examples,
                        "update": {"blake3": digest_bytes(a.update)},
                        "record": a.attestation.log_index,
                    }
                    for a in accepted
                ],
                "refused": [
                    {
                        "client": x.client_id,
                        "codes": list(x.codes),
                        "decision": x.decision.log_index,
                    }
                    for x in refused
                ],
            },
            started_on=when,
            build_type=TRAINING_BUILD_TYPE,
        )
        model = GlobalModel(self.federation, r, data, attestation)
        return RoundResult(r, model, accepted, tuple(refused))

    def _policy_digest(self, round: int, base: GlobalModel) -> str:
        """SHA-256 of what the checks were judged against: trust store, enrolment, round, base."""
        clients = None if self.clients is None else {c: sorted(k) for c, k in self.clients.items()}
        return hashlib.sha256(
            canonical_json(
                {
                    "federation": self.federation,
                    "round": round,
                    "baseModel": base.blake3,
                    "trustStore": hashlib.sha256(self.trust.to_bytes()).hexdigest(),
                    "clients": clients,
                }
            )
        ).hexdigest()

    def _record_refusals(
        self, failed: Sequence[UpdateCheck], *, round: int, base: GlobalModel, when: datetime
    ) -> list[Refusal]:
        """Step 2: one signed SLSA VSA (FAILED) per refused update, appended in one batch."""
        from prov_core import __version__

        if not failed:
            return []
        policy = ResourceDescriptor(
            name="policy", uri=POLICY_URI, digest={"sha256": self._policy_digest(round, base)}
        )
        statements = []
        envelope_shas = [None if v.envelope is None else v.envelope.sha256() for v in failed]
        for v, envelope_sha in zip(failed, envelope_shas, strict=True):
            name = update_name(self.federation, round, v.client_id)
            b3 = digest_bytes(v.update)
            vsa = VerificationSummary(
                verifier_id=VERIFIER_ID,
                verifier_version={"provgate": __version__},
                time_verified=when,
                resource_uri=f"federated:{name}",
                policy=policy,
                passed=False,
                input_attestations=[] if envelope_sha is None else [attestation_ref(envelope_sha)],
                slsa_version=None,
            )
            predicate = vsa.to_dict()
            predicate["provgateFederated"] = {
                "federation": self.federation,
                "round": round,
                "client": v.client_id,
                "keyid": v.keyid,
                "baseModel": {"blake3": base.blake3},
                "update": {
                    "blake3": b3,
                    "sha256": hashlib.sha256(v.update).hexdigest(),
                    "size": len(v.update),
                },
            }
            predicate["provgateReasons"] = [r.to_dict() for r in v.reasons]
            subject = Subject(name, manifest_sha256([(name, b3)]))
            statements.append(Statement([subject], VerificationSummary.predicate_type, predicate))
        decisions = self.recorder.record_many(statements)  # fails the round if it fails
        return [
            Refusal(v.client_id, v.reasons, d, v.keyid, envelope_sha)
            for v, d, envelope_sha in zip(failed, decisions, envelope_shas, strict=True)
        ]


def _update_digest_reasons(client: str, data: bytes, statement: Statement) -> list[Reason]:
    """Step 6: BLAKE3, SHA-256, size and subject of the bytes received against the signed ones."""
    signed = statement.predicate["update"]
    b3 = digest_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    reasons = []
    if b3 != signed["digest"]["blake3"] or sha != signed["digest"]["sha256"]:
        reasons.append(
            Reason(
                "update-digest",
                client,
                f"the update received has BLAKE3 {b3}, the attestation signs "
                f"{signed['digest']['blake3']}: its bytes were changed after signing",
            )
        )
    if len(data) != signed["size"]:
        reasons.append(
            Reason(
                "update-digest",
                client,
                f"the update received is {len(data)} bytes, the attestation signs {signed['size']}",
            )
        )
    subjects = statement.subjects
    if len(subjects) != 1 or subjects[0].sha256 != manifest_sha256(
        [(subjects[0].name, signed["digest"]["blake3"])]
    ):
        reasons.append(
            Reason(
                "update-digest",
                client,
                "the statement's subject is not the signed update (one subject, SHA-256 of the "
                "update's one-line manifest)",
            )
        )
    return reasons
