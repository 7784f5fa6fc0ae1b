"""The training gate: pinned + verified + policy-allowed, or refused with every reason.

:func:`evaluate_gate` judges the inputs a training step declares (snapshot
URIs, ``provgate://REPO/COMMIT[/PATH]`` or ``lakefs://REPO/COMMIT[/PATH]``)
and returns a :class:`GateDecision`; :func:`require` raises
:class:`~prov_core.errors.GateRefused` instead of returning a refusal, and
:func:`gated` wraps a plain Python training function so it only runs when
the gate allows. For every input, in this order, every reason is collected
(nothing stops at the first failure):

1. **Pinned.** The URI's ref must be a full 64-hex commit id. A branch, tag
   or commit prefix is refused, naming it and the commit it points at now;
   the rest of the checks then run on that commit, so that one refusal lists
   everything that would still be wrong once it is pinned.
2. **Snapshot record.** The commit's signed snapshot record is found
   (content index, then a ledger scan) and its envelope verified against
   the trust store (untrusted, revoked and forged signatures each named).
3. **Content.** :func:`~prov_core.snapshot_record.verify_snapshot` re-reads
   and re-hashes every object of the commit against the *signed* manifest:
   missing, extra and changed objects are each named. Objects under the
   input's path that the signed record does not list (written outside
   provgate, or outside the snapshot's prefix) are named too.
4. **Lineage.** Each object of the input (the record's objects under the
   URI's path) must be covered by at least one *verified* record, found by
   the log indices the signed snapshot record names; each such entry must
   hash to the envelope SHA-256 the snapshot record's ``derivedFrom`` holds.
   An ingest record covers it if it verifies against the trust store (a
   single-file ingest must also have that object's BLAKE3 as its manifest
   root, or as its one file sample). A transform step (SLSA Provenance)
   covers it if it verifies, its signed outputs name the object's BLAKE3,
   and *every* one of its inputs leads, recursively, to verified ingest
   records (see :class:`~prov_core.custody.CustodyWalk`: attestation inputs by log index and
   envelope SHA-256, artifact inputs by BLAKE3 through the content index; at
   most :data:`MAX_STEP_DEPTH` steps, cycle-safe). An input that leads
   nowhere is a ``step-input`` reason naming the step's log index. Objects
   with no verified record behind them are *uncovered*, each named.
5. **Policy.** :class:`~prov_core.policy.InputFacts`,
   :class:`~prov_core.policy.IngestFacts` (every ingest record reached,
   directly or through steps) and :class:`~prov_core.policy.StepFacts`
   (every step walked) are built from the records and
   every rule of the policy (default :meth:`Policy.default`) is evaluated on
   :func:`~prov_core.policy.activation`; each failed rule is a reason
   carrying the rule id.

Fail closed: a store or ledger that cannot be opened or read (``StoreError``,
``LedgerError``, ``OSError``, lakeFS connection refused, ...) is a reason
(``store-unreachable``, ``ledger-unreachable``), never an exception and never
an allow; any unexpected error refuses too (``internal-error``).

The decision is recorded as a signed SLSA VSA v1 statement
(``https://slsa.dev/verification_summary/v1``)::

    subject              one per input: its pinned URI, sha256 of its snapshot
                         manifest (or of the URI text when there is no record)
    verifier.id          VERIFIER_ID
    resourceUri          the first input's URI (each input is also a subject)
    policy               {"name": "policy", "uri": <source>, "digest": {"sha256": <policy digest>}}
    verificationResult   "PASSED" | "FAILED"
    verifiedLevels       ["PROVGATE_CUSTODY_VERIFIED"] when passed, else []
    inputAttestations    the snapshot, step and ingest records consulted (log URI,
                         envelope sha256)
    provgateInputs       [{"uri", "commit", "pinned", "snapshotRecord"}]
    provgateReasons      [{"code", "input", "rule", "message"}] (at most MAX_RECORDED_REASONS)

If the decision cannot be recorded (the ledger or the signing key is
unavailable), it is a refusal whatever the checks said, and the reasons say
that the record is missing (``not-recorded``).

Reason codes: ``unpinned``, ``not-found``, ``no-snapshot-record``,
``snapshot-record``, ``untrusted-key``, ``revoked-key``, ``bad-signature``,
``content-missing``, ``content-extra``, ``content-changed``,
``content-metadata``, ``unrecorded-object``, ``empty-input``,
``record-mismatch``, ``coverage-mismatch``, ``malformed-record``,
``step-input``, ``lineage-too-deep``, ``unsupported-record``, ``uncovered``,
``policy``, ``store-unreachable``, ``ledger-unreachable``,
``trust-unavailable``, ``not-judged`` (an input left unchecked because the
trust store, ledger or content index is unavailable), ``internal-error``,
``not-recorded``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from prov_core.custody import (
    MAX_NAMED_OBJECTS,
    MAX_STEP_DEPTH,
    CustodyWalk,
    InputState,
    Reason,
    derived_from,
    signature_code,
)
from prov_core.errors import (
    FormatError,
    GateRefused,
    InputError,
    IntegrityError,
    LedgerError,
    NotFoundError,
    ProvgateError,
    StoreError,
    VerificationError,
)
from prov_core.policy import InputFacts, Policy, activation
from prov_core.snapshots.base import SnapshotStore, SnapshotURI
from prov_core.statement import (
    DSSE_MEDIA_TYPE,
    SNAPSHOT_V1,
    ResourceDescriptor,
    Statement,
    Subject,
    VerificationSummary,
)
from prov_core.step import Attestation, Recorder

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger
    from prov_core.sample_store import SampleStore
    from prov_core.signing import KeyPolicy, Signer
    from prov_core.trust import TrustStore

__all__ = [
    "CUSTODY_LEVEL",
    "MAX_STEP_DEPTH",
    "VERIFIER_ID",
    "GateDecision",
    "Reason",
    "evaluate_gate",
    "gated",
    "policy_uri",
    "require",
]

VERIFIER_ID: Final = "https://provgate.dev/gate"
"""VERIFIER_ID is the ``verifier.id`` of the gate's VSA statements."""
CUSTODY_LEVEL: Final = "PROVGATE_CUSTODY_VERIFIED"
"""CUSTODY_LEVEL is the ``verifiedLevels`` entry of a PASSED decision (not an SLSA level)."""
MAX_RECORDED_REASONS: Final = 1000
"""MAX_RECORDED_REASONS bounds the reasons copied into the VSA record."""

_HEX64: Final = re.compile(r"[0-9a-f]{64}")

_P = ParamSpec("_P")
_R = TypeVar("_R")

StoreOpener = Callable[[SnapshotURI], SnapshotStore]


@dataclass(frozen=True)
class GateDecision:
    """GateDecision is the gate's verdict: ``allowed`` only if there is no reason."""

    allowed: bool
    reasons: list[Reason]
    inputs: list[InputFacts]
    policy_digest: str
    vsa: Attestation | None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON form: ``{"allowed", "reasons", "vsa_log_index", "policy_digest"}``."""
        return {
            "allowed": self.allowed,
            "reasons": [r.to_dict() for r in self.reasons],
            "vsa_log_index": None if self.vsa is None else self.vsa.log_index,
            "policy_digest": self.policy_digest,
        }


def _parse_inputs(inputs: Sequence[str | SnapshotURI]) -> list[tuple[str, SnapshotURI]]:
    if isinstance(inputs, str | SnapshotURI):
        raise InputError("inputs must be a sequence of snapshot URIs, not a single one")
    parsed: list[tuple[str, SnapshotURI]] = []
    for item in inputs:
        if isinstance(item, SnapshotURI):
            parsed.append((str(item), item))
        elif isinstance(item, str):
            parsed.append((item, SnapshotURI.parse(item)))
        else:
            raise InputError(f"input {item!r} is not a snapshot URI")
    if not parsed:
        raise InputError("the gate needs at least one input (a pinned snapshot URI)")
    return parsed


def _home_store_opener(home: Home) -> StoreOpener:
    """_home_store_opener opens a URI's store without creating anything the gate then reads."""

    def open_store(uri: SnapshotURI) -> SnapshotStore:
        if uri.scheme == "provgate":
            if home.ledger_url is None and not (home.store_path / "store.sqlite").is_file():
                raise StoreError(
                    f"the embedded snapshot store {home.store_path} does not exist or was "
                    "removed; commit snapshots with `provgate snapshot commit` first"
                )
            return home.open_store()
        from prov_core.snapshots.lakefs import LakeFSStore

        try:
            return LakeFSStore.from_env()
        except InputError as exc:  # not configured: the store cannot be reached
            raise StoreError(str(exc)) from exc

    return open_store


def evaluate_gate(
    inputs: Sequence[str | SnapshotURI],
    *,
    home: Home | None = None,
    ledger: Ledger | None = None,
    trust: TrustStore | None = None,
    index: ContentIndex | None = None,
    open_store: StoreOpener | None = None,
    signer: Signer | None = None,
    origin: str | None = None,
    policy: Policy | None = None,
    now: datetime | None = None,
    record: bool = True,
    samples: SampleStore | None = None,
) -> GateDecision:
    """evaluate_gate judges ``inputs`` and records the decision (steps in the module doc).

    Either give ``home`` (its ledger, trust store, content index, embedded
    store and signing key are used for whatever is not given explicitly), or
    give ``ledger``, ``trust``, ``index``, ``open_store`` and, to record the
    decision, ``signer``. Stores and databases the gate opens itself it also
    closes; those passed in, or returned by a caller's ``open_store``, stay
    open. ``record=False`` skips the VSA (and
    then never allows: an unrecorded decision is a refusal). ``samples`` (the
    home's by default) holds ingests' sample sets: with it, the claim that an
    ingest of several files covers an object is checked against the ingest's
    signed sample root too.

    Raises :class:`InputError` only for caller mistakes found before anything
    is judged (a malformed URI, no inputs, a naive ``now``); every other
    failure is a reason in the returned refusal.
    """
    parsed = _parse_inputs(inputs)
    when = datetime.now(UTC) if now is None else now
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(f"now must be a timezone-aware datetime, got {when!r}")
    policy = Policy.default() if policy is None else policy
    reasons: list[Reason] = []
    states = [InputState(text, uri) for text, uri in parsed]
    with ExitStack() as stack:
        # The trust store, the ledger and the content index: a failure to open
        # one is a reason, and the checks that need it are skipped.
        if trust is None and home is not None:
            try:
                trust = home.trust()
            except ProvgateError as exc:
                reasons.append(
                    Reason("trust-unavailable", None, f"cannot load the trust store: {exc}")
                )
        if ledger is None and home is not None:
            try:
                ledger = stack.enter_context(home.open_ledger())
            except (ProvgateError, OSError, sqlite3.Error) as exc:
                reasons.append(Reason("ledger-unreachable", None, _unreachable("ledger", exc)))
        if index is None and home is not None:
            try:
                index = stack.enter_context(home.open_index())
            except (ProvgateError, OSError, sqlite3.Error) as exc:
                reasons.append(
                    Reason("ledger-unreachable", None, _unreachable("content index", exc))
                )
        if samples is None and home is not None:
            from prov_core.sample_store import SAMPLES_DIR, SampleStore

            samples = SampleStore(home.path / SAMPLES_DIR)
        owns_stores = open_store is None
        if open_store is None and home is not None:
            open_store = _home_store_opener(home)
        missing = [
            name
            for name, value in (
                ("trust store", trust),
                ("ledger", ledger),
                ("content index", index),
                ("store opener", open_store),
            )
            if value is None
        ]
        if home is None and missing:
            raise InputError(f"evaluate_gate needs home= or {', '.join(missing)}")
        stores = _Stores(open_store, stack, owned=owns_stores)
        for state in states:
            if trust is None or ledger is None or index is None or open_store is None:
                reasons.append(
                    Reason(
                        "not-judged", state.text, "not checked: the gate's own state is unavailable"
                    )
                )
                continue
            reasons.extend(_judge(state, stores, ledger, trust, index, samples=samples))
        # Policies: every rule over every input.
        keys = {} if trust is None else {e.keyid: e.status for e in trust.entries()}
        facts = [s.facts() for s in states]
        try:
            results = policy.evaluate(activation(facts, now=when, keys=keys))
        except Exception as exc:  # fail closed: a policy that cannot run refuses
            reasons.append(Reason("policy", None, f"the policy could not be evaluated: {exc}"))
            results = []
        for result in results:
            if not result.passed:
                message = result.message + (f" ({result.error})" if result.error else "")
                where, culprits = _localize(policy, result.id, facts, when, keys)
                reasons.append(Reason("policy", where, message + culprits, result.id))
        # The record of the decision.
        vsa: Attestation | None = None
        if not record:
            reasons.append(
                Reason("not-recorded", None, "the decision was not recorded (record=False)")
            )
        elif ledger is None:
            reasons.append(
                Reason("not-recorded", None, "the decision could not be recorded: no ledger")
            )
        else:
            try:
                vsa = _record(
                    ledger,
                    home,
                    signer=signer,
                    origin=origin,
                    policy=policy,
                    states=states,
                    reasons=reasons,
                    when=when,
                )
            except (ProvgateError, OSError, sqlite3.Error) as exc:
                reasons.append(
                    Reason(
                        "not-recorded",
                        None,
                        f"the decision could not be recorded in the ledger, so it is a refusal: "
                        f"{exc}",
                    )
                )
    return GateDecision(
        allowed=not reasons,
        reasons=reasons,
        inputs=facts,
        policy_digest=policy.digest,
        vsa=vsa,
    )


class _Stores:
    """_Stores opens each scheme's store once; ``owned`` ones are closed with the stack."""

    def __init__(self, opener: StoreOpener | None, stack: ExitStack, *, owned: bool) -> None:
        self._opener = opener
        self._stack = stack
        self._owned = owned
        self._open: dict[str, SnapshotStore] = {}

    def get(self, uri: SnapshotURI) -> SnapshotStore:
        store = self._open.get(uri.scheme)
        if store is None:
            if self._opener is None:  # pragma: no cover - checked by the caller
                raise StoreError("no store opener")
            store = self._opener(uri)
            close = getattr(store, "close", None)
            if self._owned and callable(close):
                self._stack.callback(close)
            self._open[uri.scheme] = store
        return store


def _localize(
    policy: Policy,
    rule_id: str,
    facts: Sequence[InputFacts],
    when: datetime,
    keys: Mapping[str, str],
) -> tuple[str | None, str]:
    """_localize names where a failed rule fails: ``(the input, if one alone, text)``.

    The rule is re-run on each input alone; an input on which it fails is
    the reason's input when it is the only one (else the text names each).
    If the rule passes on such an input without its generations, it is re-run
    with each generation alone, and the generation records on which it fails
    are named. Nothing is named for a rule that fails on no input alone, or
    that is not one of ``policy``'s own rules. Only failed rules are re-run,
    so an allowed decision costs nothing more.
    """
    rule = next((r for r in policy.rules if r.id == rule_id), None)
    if rule is None or len(facts) == 0:
        return None, ""

    def fails(one: InputFacts) -> bool:
        try:
            return not rule.run(activation([one], now=when, keys=keys)).passed
        except ProvgateError:
            return False

    named: list[str] = []
    failing: list[str] = []
    alone = len(facts) == 1
    for f in facts:
        if not fails(f):
            continue
        failing.append(f.uri)
        records: list[str] = []
        if f.generations and not fails(dataclasses.replace(f, generations=())):
            records = [
                f"generation record {g.log_index} ({g.name})"
                for g in f.generations
                if fails(dataclasses.replace(f, generations=(g,)))
            ]
        if records:
            named.append(", ".join(records) + ("" if alone else f" of {f.uri}"))
        elif not alone:
            named.append(f.uri)
    where = failing[0] if len(failing) == 1 else None
    return where, (f" [fails on {'; '.join(named)}]" if named else "")


def _unreachable(what: str, exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"the {what} cannot be reached, so the gate refuses (fails closed): {detail}"


def _judge(
    state: InputState,
    stores: _Stores,
    ledger: Ledger,
    trust: KeyPolicy,
    index: ContentIndex,
    *,
    samples: SampleStore | None,
) -> list[Reason]:
    """_judge runs steps 1-4 on one input; store or ledger failures become reasons."""
    reasons: list[Reason] = []
    try:
        _judge_input(
            state,
            stores,
            ledger=ledger,
            trust=trust,
            index=index,
            reasons=reasons,
            samples=samples,
        )
    except (StoreError, ConnectionError, TimeoutError) as exc:
        reasons.append(Reason("store-unreachable", state.text, _unreachable("snapshot store", exc)))
    except (LedgerError, sqlite3.Error) as exc:
        reasons.append(Reason("ledger-unreachable", state.text, _unreachable("ledger", exc)))
    except OSError as exc:
        reasons.append(Reason("store-unreachable", state.text, _unreachable("snapshot store", exc)))
    except NotFoundError as exc:
        reasons.append(Reason("not-found", state.text, str(exc)))
    except ProvgateError as exc:
        reasons.append(Reason("internal-error", state.text, f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # fail closed on anything unforeseen
        reasons.append(
            Reason("internal-error", state.text, f"unexpected {type(exc).__name__}: {exc}")
        )
    return reasons


def _judge_input(
    state: InputState,
    stores: _Stores,
    *,
    ledger: Ledger,
    trust: KeyPolicy,
    index: ContentIndex,
    reasons: list[Reason],
    samples: SampleStore | None = None,
) -> None:
    from prov_core.signing import Envelope, verify_envelope
    from prov_core.snapshot_record import find_snapshot_record, verify_snapshot

    uri, text = state.uri, state.text
    store = stores.get(uri)
    state.store_kind = store.kind
    # 1. Pinned.
    commit = store.get_commit(uri.repository, uri.ref)
    state.commit = commit.id
    if not uri.pinned:
        pinned = SnapshotURI(uri.scheme, uri.repository, commit.id, uri.path)
        reasons.append(
            Reason(
                "unpinned",
                text,
                f"ref {uri.ref!r} is a branch, tag or commit prefix, not a pin; it currently "
                f"points at commit {commit.id}: give {pinned} to train on that snapshot",
            )
        )
    # 2. The snapshot record and its signature.
    try:
        rec = find_snapshot_record(ledger, index, store, uri.repository, commit)
    except (IntegrityError, FormatError) as exc:
        reasons.append(Reason("no-snapshot-record", text, str(exc)))
        return
    state.attestations[rec.log_index] = hashlib.sha256(rec.leaf).hexdigest()
    try:
        verify_envelope(Envelope.parse(rec.leaf), trust, predicate_type=SNAPSHOT_V1)
    except VerificationError as exc:
        reasons.append(Reason(signature_code(exc), text, f"snapshot record {rec.log_index}: {exc}"))
        return
    state.record = rec
    # 3. Content against the signed manifest.
    report = verify_snapshot(
        store, uri.repository, commit.id, ledger=ledger, trust=trust, index=index
    )
    for problem in report.problems:
        code = "snapshot-record" if problem.kind == "record" else f"content-{problem.kind}"
        reasons.append(Reason(code, text, problem.message))
    if any(p.kind == "record" for p in report.problems):
        return
    reported = {p.path for p in report.problems if p.path is not None}
    prefix = uri.path.rstrip("/")
    selected = [o for o in rec.objects if _under(o.path, prefix)]
    signed = {o.path for o in rec.objects}
    unrecorded = [
        p
        for p in _list_paths(store, uri.repository, commit.id, prefix)
        if _under(p, prefix) and p not in signed and p not in reported
    ]
    reasons.extend(
        _named(
            "unrecorded-object",
            text,
            unrecorded,
            "at the commit but not in its signed snapshot record (written outside provgate?)",
        )
    )
    state.objects = len(selected) + len(unrecorded)
    if not selected and not unrecorded:
        reasons.append(Reason("empty-input", text, f"the snapshot has no object under {prefix!r}"))
    # 4. Lineage: the records the signed record names for each object, walked
    # through transform steps back to ingest records.
    derived = derived_from(rec.statement.predicate)
    lineage = CustodyWalk(state, ledger, trust, index, reasons, samples=samples)
    uncovered = list(unrecorded)
    for obj in selected:
        records = [(i, derived.get(i)) for i in obj.records]
        via = "the signed snapshot record derives from"
        nodes = lineage.cover(obj.path, obj.blake3, records, via=via)
        if not nodes:
            uncovered.append(obj.path)
        state.add_object(obj.path, obj.size, nodes, obj.blake3)
    state.uncovered = uncovered
    reasons.extend(
        _named(
            "uncovered",
            text,
            [p for p in uncovered if p not in unrecorded],
            "no verified ingest record covers this object, directly or through verified "
            "transform steps",
        )
    )


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _list_paths(store: SnapshotStore, repo: str, commit: str, prefix: str) -> Iterator[str]:
    after = ""
    while True:
        page = store.list_objects(repo, commit, prefix=prefix, after=after, amount=1000)
        for stat in page.results:
            yield stat.path
        if not page.has_more:
            return
        after = page.next_after


def _named(code: str, text: str, paths: Sequence[str], what: str) -> list[Reason]:
    out = [Reason(code, text, f"{p}: {what}") for p in paths[:MAX_NAMED_OBJECTS]]
    if len(paths) > MAX_NAMED_OBJECTS:
        out.append(
            Reason(code, text, f"... and {len(paths) - MAX_NAMED_OBJECTS} more object(s): {what}")
        )
    return out


def _record(
    ledger: Ledger,
    home: Home | None,
    *,
    signer: Signer | None,
    origin: str | None,
    policy: Policy,
    states: Sequence[InputState],
    reasons: Sequence[Reason],
    when: datetime,
) -> Attestation:
    """_record signs the decision as an SLSA VSA v1 statement and appends it."""
    from prov_core import __version__

    if signer is None:
        if home is None:
            raise InputError("cannot record the decision: no signer= and no home=")
        signer = home.signer
    if origin is None:
        origin = home.origin if home is not None else ledger.origin
    passed = not reasons
    subjects: list[Subject] = []
    for s in states:
        name = (
            str(s.uri)
            if s.commit is None
            else str(SnapshotURI(s.uri.scheme, s.uri.repository, s.commit, s.uri.path))
        )
        if s.record is not None:
            sha = s.record.statement.subjects[0].sha256
        else:
            sha = hashlib.sha256(name.encode()).hexdigest()
        subjects.append(Subject(name=name, sha256=sha))
    attestations = sorted({(i, sha) for s in states for i, sha in s.attestations.items()})
    vsa = VerificationSummary(
        verifier_id=VERIFIER_ID,
        verifier_version={"provgate": __version__},
        time_verified=when,
        resource_uri=subjects[0].name,
        policy=ResourceDescriptor(
            name="policy", uri=policy_uri(policy), digest={"sha256": policy.digest}
        ),
        passed=passed,
        verified_levels=[CUSTODY_LEVEL] if passed else [],
        input_attestations=[
            ResourceDescriptor(
                name=f"attestation:{i}",
                uri=f"provgate+log://{origin}/{i}",
                digest={"sha256": sha},
                media_type=DSSE_MEDIA_TYPE,
                annotations={"logIndex": i},
            )
            for i, sha in attestations
        ],
        slsa_version=None,
    )
    predicate = vsa.to_dict()
    predicate["provgateInputs"] = [
        {
            "uri": s.text,
            "commit": s.commit,
            "pinned": s.uri.pinned and s.commit == s.uri.ref,
            "snapshotRecord": None if s.record is None else s.record.log_index,
        }
        for s in states
    ]
    predicate["provgateReasons"] = [r.to_dict() for r in reasons[:MAX_RECORDED_REASONS]]
    statement = Statement(subjects, VerificationSummary.predicate_type, predicate)
    return Recorder(ledger, signer, origin=origin).record(statement)


def policy_uri(policy: Policy) -> str:
    """policy_uri names a policy in a record: its file, or ``provgate:policy/NAME`` if built in."""
    source = policy.source
    if source.startswith("<"):
        return "provgate:policy/" + source.strip("<>").replace(" ", "-")
    return source


# --------------------------------------------------------------------------
# The Python API for training code


def require(inputs: Sequence[str | SnapshotURI], **kwargs: Any) -> GateDecision:
    """require runs :func:`evaluate_gate`; returns the decision if allowed, else raises.

    Raises :class:`GateRefused` whose ``reasons`` are the reasons as text and
    whose ``decision`` is the :class:`GateDecision`.
    """
    decision = evaluate_gate(inputs, **kwargs)
    if not decision.allowed:
        n = len(decision.reasons)
        listing = "\n".join(f"  - {r}" for r in decision.reasons)
        raise GateRefused(
            f"the training gate refused ({n} reason{'s' if n != 1 else ''}):\n{listing}",
            reasons=tuple(str(r) for r in decision.reasons),
            decision=decision,
        )
    return decision


def gated(
    inputs: Sequence[str | SnapshotURI] | Callable[..., Sequence[str | SnapshotURI]],
    **gate_kwargs: Any,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """gated wraps a training function so it runs only if the gate allows its inputs.

    ``inputs`` is a list of snapshot URIs, or a callable given the wrapped
    function's arguments that returns them; ``gate_kwargs`` go to
    :func:`evaluate_gate` (``home=``, ``policy=``, ...). A refusal raises
    :class:`GateRefused` and the function is not called::

        @gated(inputs=["provgate://reviews/3f2a.../train"], policy=Policy.load("provgate.toml"))
        def train() -> None: ...
    """

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            declared = inputs(*args, **kwargs) if callable(inputs) else inputs
            require(declared, **gate_kwargs)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
