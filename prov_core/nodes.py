"""Lineage nodes as orchestrators see them: what the adapters share beyond :mod:`prov_core.step`.

:func:`verify_node` re-verifies one recorded node, as an orchestrator's check shows it.

An adapter records a step (or an ingest, or a snapshot) and keeps the
:class:`~prov_core.step.Attestation` in its orchestrator's own metadata
(Dagster materialization metadata, an Airflow asset event, a Prefect
artifact). :func:`verify_node` later answers "does this node still hold?"
from that remembered attestation, the ledger and the stored bytes, and names
every problem. Steps, numbered as in the code:

1. **link**: the ledger entry at the attestation's log index hashes to the
   envelope SHA-256 the orchestrator remembered (an entry edited or replaced
   in the ledger fails here, whatever its signature says);
2. **chain**: :meth:`~prov_core.lineage.Lineage.verify_chain` on that log
   index: the latest checkpoint, then, for the record and every record
   upstream of it, the link its child signed, its signature, the trust
   store's decision on its key (``signature``, ``trust``), its inclusion in
   the checkpointed tree (``inclusion``), and that the chain reaches ingest
   records;
3. **content**: each stored output (a file or directory the node wrote) is
   re-digested and its BLAKE3 must be one the record signs as an output (a
   step's ``byproducts``, an ingest's manifest root); a snapshot node's
   commit is re-read and re-hashed against its signed record
   (:func:`~prov_core.snapshot_record.verify_snapshot`).

Nothing stops at the first problem. A store, ledger or trust store that
cannot be read is a problem (the check fails closed), never a pass.
:func:`outputs_digest` is the identity adapters give a node's outputs in
their orchestrator (Dagster's ``DataVersion``): computed here with the
canonical manifest of :mod:`prov_core.digest`, never by the orchestrator.
:func:`attestation_from_dict` reads back the attestation an adapter kept in its
orchestrator's metadata, and :func:`ensure_branch` creates an embedded repository
on first use, as ``provgate snapshot commit`` does.

:func:`previous_attempt` links a retry to the try before it, and
:func:`try_identity` builds the ``orchestrator`` that carries the link. An
adapter files each try of a task instance under ``orchestrator["instance"]``
(the parts naming the instance across tries) and ``orchestrator["attempt"]``;
the next try finds the latest earlier one in the lineage index, checks it against the
ledger, and names it as ``orchestrator["previous_attempt"]``, which the index
turns into a ``retry-of`` edge that :func:`~prov_core.lineage.verify_chain`
follows like any other signed link.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core.errors import FormatError, InputError, ProvgateError
from prov_core.statement import Subject
from prov_core.step import Artifact, Attestation

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.snapshots.base import SnapshotStore

__all__ = [
    "NodeProblem",
    "NodeReport",
    "attestation_from_dict",
    "ensure_branch",
    "outputs_digest",
    "previous_attempt",
    "try_identity",
    "verify_node",
]


@dataclass(frozen=True)
class NodeProblem:
    """NodeProblem is one thing that does not hold: the check, the record (if any), why."""

    check: str  # link | checkpoint | signature | trust | inclusion | input | ingest | content
    message: str
    log_index: int | None = None

    def __str__(self) -> str:
        where = "" if self.log_index is None else f"record {self.log_index}: "
        return f"{self.check}: {where}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "log_index": self.log_index, "message": self.message}


@dataclass
class NodeReport:
    """NodeReport is the outcome of :func:`verify_node`; ``ok`` only if there is no problem.

    ``checks`` maps ``link``, ``signature``, ``trust``, ``inclusion``,
    ``chain`` and ``content`` to ``"ok"``, ``"failed"`` or ``"unchecked"``.
    """

    log_index: int
    checks: dict[str, str] = field(default_factory=dict)
    problems: list[NodeProblem] = field(default_factory=list)
    records_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "log_index": self.log_index,
            "checks": dict(self.checks),
            "records_checked": self.records_checked,
            "problems": [p.to_dict() for p in self.problems],
        }


def attestation_from_dict(data: Mapping[str, Any]) -> Attestation:
    """attestation_from_dict parses :meth:`Attestation.to_dict` strictly; InputError otherwise."""
    try:
        log_index = data["log_index"]
        sha = data["envelope_sha256"]
        ptype = data["predicate_type"]
        subjects = tuple(
            Subject(name=s["name"], sha256=s["digest"]["sha256"]) for s in data["subjects"]
        )
        origin = data.get("origin", "")
    except (KeyError, TypeError, FormatError, InputError) as exc:
        raise InputError(f"not an attestation (Attestation.to_dict form): {exc}") from None
    if (
        not isinstance(log_index, int)
        or isinstance(log_index, bool)
        or log_index < 0
        or not isinstance(sha, str)
        or len(sha) != 64
        or any(c not in "0123456789abcdef" for c in sha)
        or not isinstance(ptype, str)
        or not isinstance(origin, str)
    ):
        raise InputError(f"not an attestation (Attestation.to_dict form): {dict(data)!r}")
    return Attestation(log_index, sha, ptype, subjects, origin)


def previous_attempt(
    home: Home, system: str, instance: Sequence[str | int], attempt: int | None = None
) -> dict[str, Any] | None:
    """previous_attempt is the link a retry names: the latest earlier try of an instance.

    Returns ``{"log_index", "envelope_sha256", "attempt"}`` (for
    ``orchestrator["previous_attempt"]``) of the newest record filed under
    ``system`` and ``instance`` whose attempt is below ``attempt`` (every
    record when ``attempt`` is None), or None when there is none. The lineage
    index is caught up first; the entry it names is re-read from the ledger
    and must hash to the envelope SHA-256 the index holds and verify against
    the trust store, else :class:`~prov_core.errors.VerificationError` (or
    its subclass for a bad signature, an untrusted or a revoked key) names
    the record: a retry never links to a record that does not hold.
    """
    from prov_core.errors import VerificationError
    from prov_core.lineage import open_lineage
    from prov_core.lineage_index import parse_record
    from prov_core.signing import Envelope, verify_envelope

    with open_lineage(home) as lineage:
        lineage.catch_up()
        tries = [
            a
            for a in lineage.index.attempts(system, instance)
            if attempt is None or a.attempt is None or a.attempt < attempt
        ]
        if not tries:
            return None
        last = tries[-1]
        leaf = lineage.ledger.entry(last.log_index)
        trust = lineage.trust or home.trust()
    what = f"record {last.log_index} (an earlier try of {system} instance {list(instance)})"
    if hashlib.sha256(leaf).hexdigest() != last.envelope_sha256:
        raise VerificationError(
            f"{what} no longer hashes to {last.envelope_sha256}: the ledger entry was changed"
        )
    ptype = parse_record(last.log_index, leaf).predicate_type
    try:
        verify_envelope(Envelope.parse(leaf), trust, predicate_type=ptype)
    except VerificationError as exc:
        raise type(exc)(
            f"{what} does not verify: {exc}", keyid=exc.keyid, reason=exc.reason
        ) from exc
    return last.to_dict()


def try_identity(
    home: Home, system: str, instance: Sequence[str | int], attempt: int, **fields: Any
) -> dict[str, Any]:
    """try_identity is the ``orchestrator`` of one try of a task instance.

    ``{"name": system, **fields, "instance", "attempt"}``, and from the second
    try on ``previous_attempt``: the record of the try before, found and
    checked by :func:`previous_attempt` (absent when there is none). Try
    numbers only grow, so a first try has no earlier one to look for.
    """
    identity: dict[str, Any] = {
        "name": system,
        **fields,
        "instance": list(instance),
        "attempt": attempt,
    }
    if attempt > 1:
        link = previous_attempt(home, system, instance, attempt)
        if link is not None:
            identity["previous_attempt"] = link
    return identity


def ensure_branch(store: SnapshotStore, repo: str, branch: str) -> bool:
    """ensure_branch creates embedded repository ``repo`` with branch ``main`` if it is missing.

    Returns whether it was created. Only the embedded store (``kind == "local"``)
    and only branch ``main`` are created; anything else missing raises
    :class:`~prov_core.errors.NotFoundError` (lakeFS repositories are created
    by their administrators, other branches on purpose).
    """
    from prov_core.errors import NotFoundError

    try:
        store.resolve(repo, branch)
    except NotFoundError as missing:
        if store.kind != "local" or branch != "main":
            raise
        try:  # a new repository; an existing one that lacks branch main stays an error
            store.create_repository(repo, "main")
        except InputError:
            try:  # another worker may have created it since: then its main is there
                store.resolve(repo, branch)
            except NotFoundError:
                raise missing from None
            return False
        return True
    return False


def outputs_digest(outputs: Sequence[Artifact]) -> str:
    """outputs_digest is the identity of a node's outputs, 64 hex characters.

    One artifact: its BLAKE3 (the content digest ``b3sum`` prints), or its
    SHA-256 subject digest when it has none. Several: the BLAKE3 of their
    manifest (``b3sum`` lines of ``name`` and content digest, sorted by name,
    see docs/digests.md), so the identity changes with any name or byte.
    """
    from prov_core.digest import digest_bytes, manifest_bytes

    if not outputs:
        raise InputError("a node with no outputs has no output digest")
    if len(outputs) == 1:
        return outputs[0].blake3 or outputs[0].sha256
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise InputError(f"output names must be unique, got {names}")
    return digest_bytes(manifest_bytes((o.name, o.blake3 or o.sha256) for o in outputs))


def verify_node(
    attestation: Attestation,
    *,
    home: Home,
    outputs: Mapping[str, str | os.PathLike[str]] | None = None,
    snapshot: str | None = None,
) -> NodeReport:
    """verify_node re-checks one node (steps in the module docstring).

    ``outputs`` maps each output's name to where it is stored (a file or a
    directory); ``snapshot`` is a pinned snapshot URI the node committed
    (``provgate://REPO/COMMIT`` or ``lakefs://REPO/COMMIT``).
    """
    from prov_core.lineage import open_lineage
    from prov_core.lineage_index import parse_record

    report = NodeReport(attestation.log_index)
    checks = report.checks

    def fail(check: str, message: str, log_index: int | None = attestation.log_index) -> None:
        report.problems.append(NodeProblem(check, message, log_index))
        checks[check] = "failed"

    signed_outputs: set[str] = set()
    try:
        with open_lineage(home) as lineage:
            # 1. The record the orchestrator remembered is the one in the ledger.
            leaf = lineage.ledger.entry(attestation.log_index)
            sha = hashlib.sha256(leaf).hexdigest()
            if sha != attestation.envelope_sha256:
                fail(
                    "link",
                    f"the ledger entry's envelope sha256 is {sha}, the attestation recorded "
                    f"{attestation.envelope_sha256}: the entry was changed or replaced",
                )
            else:
                checks["link"] = "ok"
            rec = parse_record(attestation.log_index, leaf)
            signed_outputs = {
                d for d, role, algo in rec.digests if (role, algo) == ("output", "blake3")
            }
            # 2. The record and its chain of custody.
            chain = lineage.verify_chain(attestation.log_index)
    except ProvgateError as exc:
        fail("link", f"the ledger cannot be read, so the node is not verified: {exc}")
        return report
    own = chain.records.get(attestation.log_index)
    for check in ("signature", "trust", "inclusion"):
        state = own.checks.get(check, "unchecked") if own is not None else "unchecked"
        checks.setdefault(check, state)
    report.records_checked = len(chain.records)
    for p in chain.problems:
        fail(p.check if p.log_index == attestation.log_index else "chain", p.message, p.log_index)
    checks.setdefault("chain", "ok")
    # 3. The stored bytes.
    content_checked = False
    for name, where in (outputs or {}).items():
        content_checked = True
        try:
            got = Artifact.from_path(Path(where), name=name).blake3
        except ProvgateError as exc:
            fail("content", f"output {name!r} at {where} cannot be read: {exc}")
            continue
        if got not in signed_outputs:
            fail(
                "content",
                f"output {name!r} at {where} has BLAKE3 {got}, which the record does not sign "
                "as an output: the stored bytes changed",
            )
    if snapshot is not None:
        content_checked = True
        _check_snapshot(snapshot, home, fail)
    if content_checked:
        checks.setdefault("content", "ok")
    else:
        checks.setdefault("content", "unchecked")
    return report


def _check_snapshot(uri_text: str, home: Home, fail: Callable[..., None]) -> None:
    from prov_core.snapshot_record import open_store_for, verify_snapshot
    from prov_core.snapshots.base import SnapshotURI

    try:
        uri = SnapshotURI.parse(uri_text)
        store = open_store_for(uri, home)
        try:
            with home.open_ledger() as ledger, home.open_index() as index:
                result = verify_snapshot(
                    store, uri.repository, uri.ref, ledger=ledger, trust=home.trust(), index=index
                )
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()
    except (ProvgateError, OSError) as exc:
        fail("content", f"snapshot {uri_text} cannot be verified: {exc}")
        return
    for p in result.problems:
        where = f" ({p.path})" if p.path else ""
        fail("content", f"snapshot {uri_text}: {p.kind}{where}: {p.message}", result.log_index)
