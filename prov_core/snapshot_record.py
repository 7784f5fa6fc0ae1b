"""Snapshot records: commit files as an immutable snapshot, sign what it holds, verify it.

:func:`commit_snapshot` is ``lakectl fs upload`` + ``lakectl commit`` + a
signed record, in these steps:

1. Walk the source (a file or a directory) with
   :func:`~prov_core.digest.digest_path` — its rules: no links out of the
   tree, no special files, UTF-8 names — and upload each file to
   ``PREFIX + relative path`` on the branch. The bytes uploaded are hashed as
   they are sent and must equal the walk's digest, so a file changed in the
   meantime is refused rather than mis-recorded. The local store's checksum
   is already the blob's BLAKE3; :class:`~prov_core.snapshots.lakefs.LakeFSStore`
   stores the BLAKE3 as object metadata itself.
2. Take the *snapshot manifest* of every object under the prefix on the branch
   (what a reader of ``REPO/COMMIT/PREFIX`` will get: the uploaded files and
   any object already there), in the format of :mod:`prov_core.digest`
   (``b3sum`` lines over the full object paths, sorted by UTF-8 bytes); its
   root is BLAKE3(manifest), even for a single object.
3. Link each object to the records covering its bytes, found by content
   digest in the :class:`~prov_core.content_index.ContentIndex` (ingest
   indexes every file's BLAKE3; step outputs are read from the step records
   in the ledger as the lookup catches up): ingest records and the transform
   steps that wrote those bytes alike, each ``derivedFrom`` descriptor
   carrying the record's kind (``annotations.predicateType``) beside its
   log index. Objects no record covers are listed as
   ``uncovered``: committed, but the gate refuses them. A record that would
   not fit in a ledger leaf is refused here, before anything is committed.
4. Reserve the next log index (:meth:`~prov_core.ledger.base.Ledger.reserve`
   holds the ledger's write lock until the record is appended), commit with
   metadata ``provgate-manifest-blake3`` (the root), ``provgate-manifest-files``,
   ``provgate-manifest-bytes``, ``provgate-prefix``, ``provgate-log-index``
   (the index the snapshot record is about to get) and ``provgate-log-origin``
   (the ledger's origin), then check that the commit holds exactly the
   manifest's paths (a concurrent writer on the branch would show here).
5. Record a ``https://provgate.dev/snapshot/v1`` statement naming the commit
   id at that index, release the ledger, and index ``commit -> log index``.

So the commit names its record and the record names its commit. The record
cannot be made first (it names the commit id, which depends on the
metadata), hence the reservation: no other writer can take the index in
between. If the process dies after the commit and before the append, the
commit's metadata names an index that some other record will take; readers
check that the entry there is this commit's snapshot record, so such a
commit is simply unrecorded (the gate refuses it), never mis-attributed.

The predicate is :class:`~prov_core.statement.SnapshotPredicate`'s
(``store``, ``repository``, ``commitId``, ``ref``, ``committedAt``,
``manifest``, ``derivedFrom``: one attestation descriptor per covering record
with its log index, then the caller's ``derived_from``) plus::

    "prefix":    ""  or  "dir/"                 the snapshot is the commit under it
    "objects":   [{"path": str, "blake3": HEX64, "size": int,
                   "records": [log index, ...]}, ...]     in manifest order
    "uncovered": [path, ...]                     objects with "records": []
    "samples":   {"count", "algorithm", "leafEncoding": "provgate-file/v1", "root"}
                 the objects as a sample set (one id per object's BLAKE3), so
                 one file can be proven in or out with a short Merkle proof

Per-object digests are inline, so the signed record alone names every object
and where its content came from, with no further trust in the store's
listing or metadata. :data:`MAX_OBJECTS` and the ledger's leaf limit bound
it (checked before the commit); larger snapshots will need a committed,
root-addressed manifest object instead.

:func:`verify_snapshot` re-reads every object at the commit, re-hashes it and
compares it with the *signed* manifest, after checking the record's signature
against the trust store; it names every missing, extra or changed object.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from prov_core._samples import SampleSet
from prov_core.content_index import ContentIndex, RecordRef
from prov_core.digest import FileDigest, TreeDigest, digest_bytes, digest_path, manifest_bytes
from prov_core.errors import (
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
    ProvgateError,
    StoreError,
    VerificationError,
)
from prov_core.snapshots.base import (
    Commit,
    SnapshotStore,
    SnapshotURI,
    check_path,
    is_commit_id,
)
from prov_core.statement import (
    DSSE_MEDIA_TYPE,
    SNAPSHOT_V1,
    ManifestSummary,
    ResourceDescriptor,
    SnapshotPredicate,
    Statement,
    Subject,
)
from prov_core.step import Attestation, Recorder

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger
    from prov_core.signing import KeyPolicy

__all__ = [
    "MAX_OBJECTS",
    "METADATA_BYTES",
    "METADATA_FILES",
    "METADATA_LOG_INDEX",
    "METADATA_LOG_ORIGIN",
    "METADATA_MANIFEST",
    "METADATA_PREFIX",
    "SnapshotObject",
    "SnapshotProblem",
    "SnapshotRecord",
    "SnapshotResult",
    "SnapshotVerifyReport",
    "commit_snapshot",
    "find_snapshot_record",
    "normalize_prefix",
    "open_store_for",
    "parse_snapshot_record",
    "read_snapshot",
    "verify_snapshot",
]

METADATA_MANIFEST: Final = "provgate-manifest-blake3"
"""METADATA_MANIFEST is the commit-metadata key holding the snapshot manifest's root."""
METADATA_FILES: Final = "provgate-manifest-files"
"""METADATA_FILES is the commit-metadata key holding the number of objects (decimal)."""
METADATA_BYTES: Final = "provgate-manifest-bytes"
"""METADATA_BYTES is the commit-metadata key holding the objects' total size (decimal)."""
METADATA_PREFIX: Final = "provgate-prefix"
"""METADATA_PREFIX is the commit-metadata key holding the snapshot's prefix."""
METADATA_LOG_INDEX: Final = "provgate-log-index"
"""METADATA_LOG_INDEX is the commit-metadata key holding the snapshot record's log index."""
METADATA_LOG_ORIGIN: Final = "provgate-log-origin"
"""METADATA_LOG_ORIGIN is the commit-metadata key naming the ledger that holds the record."""
MAX_OBJECTS: Final = 50_000
"""MAX_OBJECTS bounds the objects of one snapshot record (inline digests, see module doc)."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SnapshotObject:
    """SnapshotObject is one object of a snapshot and the log indices of the records covering it."""

    path: str
    blake3: str
    size: int
    records: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "blake3", "size", "records"}``."""
        return {
            "path": self.path,
            "blake3": self.blake3,
            "size": self.size,
            "records": list(self.records),
        }


@dataclass(frozen=True)
class SnapshotResult:
    """SnapshotResult is what :func:`commit_snapshot` made: the pin and its signed record."""

    commit_id: str
    log_index: int
    attestation: Attestation
    manifest: TreeDigest
    objects: tuple[SnapshotObject, ...]
    uncovered: tuple[str, ...]


@dataclass(frozen=True)
class SnapshotRecord:
    """SnapshotRecord is a snapshot statement read back from the ledger (not yet verified)."""

    log_index: int
    leaf: bytes
    statement: Statement
    prefix: str
    objects: tuple[SnapshotObject, ...]
    uncovered: tuple[str, ...]

    @property
    def manifest_root(self) -> str:
        return str(self.statement.predicate["manifest"]["root"])


@dataclass(frozen=True)
class SnapshotProblem:
    """SnapshotProblem is one thing that does not hold; ``path`` names the object, if any."""

    kind: Literal["missing", "extra", "changed", "record", "metadata"]
    message: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "message": self.message}


@dataclass
class SnapshotVerifyReport:
    """SnapshotVerifyReport is the outcome of :func:`verify_snapshot`; ``ok`` if no problem."""

    uri: str
    commit_id: str
    log_index: int | None = None
    objects: int = 0
    checked: int = 0
    problems: list[SnapshotProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "uri": self.uri,
            "commit": self.commit_id,
            "log_index": self.log_index,
            "objects": self.objects,
            "checked": self.checked,
            "problems": [p.to_dict() for p in self.problems],
        }


def normalize_prefix(prefix: str) -> str:
    """normalize_prefix returns ``""`` or ``"a/b/"`` for a safe prefix, else raises InputError.

    ``../``, ``./``, absolute paths, empty segments and NUL are refused, as in
    object paths.
    """
    if not isinstance(prefix, str):
        raise InputError(f"prefix must be a string, not {type(prefix).__name__}")
    if prefix in ("", "/"):
        return ""
    body = prefix[:-1] if prefix.endswith("/") else prefix
    try:
        check_path(body)
    except InputError as exc:
        raise InputError(f"prefix {prefix!r}: {exc}") from None
    return body + "/"


def _manifest_of(objects: Sequence[tuple[str, str, int]]) -> TreeDigest:
    """_manifest_of returns the snapshot manifest of ``(path, blake3, size)`` (module doc)."""
    manifest = manifest_bytes((p, h) for p, h, _ in objects)
    files = sorted((FileDigest(p, h, n) for p, h, n in objects), key=lambda f: f.path.encode())
    return TreeDigest(
        blake3=digest_bytes(manifest),
        sha256_subject=hashlib.sha256(manifest).hexdigest(),
        files=files,
        bytes=sum(f.size for f in files),
        is_dir=True,
    )


def _list_all(store: SnapshotStore, repo: str, ref: str, prefix: str) -> dict[str, int]:
    """_list_all returns path -> size of every object under ``prefix`` at ``ref``."""
    out: dict[str, int] = {}
    after = ""
    while True:
        page = store.list_objects(repo, ref, prefix=prefix, after=after, amount=1000)
        for stat in page.results:
            out[stat.path] = stat.size
        if not page.has_more:
            return out
        after = page.next_after


def _upload(
    store: SnapshotStore, repo: str, branch: str, *, source: Path, obj: str, f: FileDigest
) -> None:
    """_upload writes one source file and checks the bytes sent are the bytes digested."""
    try:
        with open(source, "rb") as fh:
            if store.kind == "local":  # streams; its checksum is the blob's BLAKE3
                got = store.write(repo, branch, obj, fh).checksum
            else:
                data = fh.read()
                got = digest_bytes(data)
                store.write(repo, branch, obj, data)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from exc
    if got != f.blake3:
        raise InputError(
            f"{source} changed while it was being snapshotted (BLAKE3 {f.blake3} when "
            f"walked, {got} when uploaded); retry when it no longer changes"
        )


def commit_snapshot(
    recorder: Recorder,
    store: SnapshotStore,
    repo: str,
    branch: str,
    source_path: str | os.PathLike[str],
    *,
    prefix: str = "",
    message: str = "",
    derived_from: Sequence[Attestation] = (),
    index: ContentIndex,
    orchestrator: Mapping[str, Any] | None = None,
) -> SnapshotResult:
    """commit_snapshot uploads, commits and records a snapshot (steps in the module doc).

    ``orchestrator`` is the run identity of the task committing (as a step's,
    docs/record-format.md): it goes in the record.

    ``branch`` must be a branch (a commit id is refused: commits are
    immutable). A missing ``source_path``, an unsafe ``prefix`` or more than
    :data:`MAX_OBJECTS` objects raise :class:`InputError` before anything is
    written.
    """
    if is_commit_id(branch) or branch.endswith("@"):
        raise InputError(f"snapshot commit needs a branch, not {branch!r}")
    pre = normalize_prefix(prefix)
    source = Path(source_path)
    tree = digest_path(source)  # 1. the walk (InputError for a missing path)
    if not tree.files:
        raise InputError(f"{source}: no files to snapshot")
    if len(tree.files) > MAX_OBJECTS:
        raise InputError(
            f"{source} has {len(tree.files)} files; one snapshot records at most {MAX_OBJECTS}"
        )
    uploads = {pre + f.path: f for f in tree.files}
    for obj in uploads:
        check_path(obj)
    _check_record_size([SnapshotObject(p, f.blake3, f.size) for p, f in uploads.items()], ())
    for obj, f in uploads.items():
        _upload(
            store, repo, branch, source=source / f.path if tree.is_dir else source, obj=obj, f=f
        )
    # 2. The manifest of everything under the prefix on the branch.
    listed = _list_all(store, repo, branch, pre)
    entries: list[tuple[str, str, int]] = []
    for path in listed:
        known = uploads.get(path)
        if known is not None:
            entries.append((path, known.blake3, known.size))
        else:  # already on the branch, perhaps written outside provgate: hash what is there
            data = _read_unverified(store, repo, branch, path)
            entries.append((path, digest_bytes(data), len(data)))
    if len(entries) > MAX_OBJECTS:
        raise InputError(f"{repo}/{branch}/{pre} holds more than {MAX_OBJECTS} objects")
    manifest = _manifest_of(entries)
    # 3. Link each object to the records covering its content.
    covering = index.covering((f.blake3 for f in manifest.files), ledger=recorder.ledger)
    objects = tuple(
        SnapshotObject(
            f.path, f.blake3, f.size, tuple(r.log_index for r in covering.get(f.blake3, ()))
        )
        for f in manifest.files
    )
    uncovered = tuple(o.path for o in objects if not o.records)
    records = sorted({r for refs in covering.values() for r in refs})
    _check_record_size(objects, uncovered)
    file_samples = SampleSet.of_files(o.blake3 for o in objects).summary()
    # 4. Reserve the record's log index, commit naming it, check the commit's paths.
    ledger = recorder.ledger
    with ledger.reserve() as log_index:
        commit = store.commit(
            repo,
            branch,
            message or f"provgate snapshot of {source.name or source}",
            {
                METADATA_MANIFEST: manifest.blake3,
                METADATA_FILES: str(len(manifest.files)),
                METADATA_BYTES: str(manifest.bytes),
                METADATA_PREFIX: pre,
                METADATA_LOG_INDEX: str(log_index),
                METADATA_LOG_ORIGIN: ledger.origin,
            },
        )
        at_commit = _list_all(store, repo, commit.id, pre)
        if at_commit != {f.path: f.size for f in manifest.files}:
            raise StoreError(
                f"commit {commit.id} of {repo!r} does not hold the objects provgate uploaded "
                "(another writer committed on the branch meanwhile?); nothing was recorded"
            )
        # 5. Record the statement at the reserved index.
        uri = SnapshotURI(store.scheme, repo, commit.id, pre.rstrip("/"))  # type: ignore[arg-type]
        predicate = SnapshotPredicate(
            store=store.kind,
            repository=repo,
            commit_id=commit.id,
            manifest=ManifestSummary(
                files=len(manifest.files), total_bytes=manifest.bytes, root=manifest.blake3
            ),
            derived_from=[_record_descriptor(r, recorder.origin) for r in records]
            + [_attestation_descriptor(a) for a in derived_from],
            ref=branch,
            committed_at=datetime.fromtimestamp(commit.creation_date, UTC),
            orchestrator=orchestrator,
        ).to_dict()
        predicate["prefix"] = pre
        predicate["objects"] = [o.to_dict() for o in objects]
        predicate["uncovered"] = list(uncovered)
        predicate["samples"] = file_samples
        statement = Statement(
            [Subject(name=str(uri), sha256=manifest.sha256_subject)], SNAPSHOT_V1, predicate
        )
        attestation = recorder.record(statement)
    if attestation.log_index != log_index:  # the reservation is the ledger's contract
        raise IntegrityError(
            f"snapshot record of commit {commit.id} landed at log index "
            f"{attestation.log_index}, not the reserved {log_index} its metadata names",
            reason="snapshot record misplaced",
        )
    index.put_snapshot(
        store.scheme,
        repo,
        commit.id,
        RecordRef(attestation.log_index, attestation.envelope_sha256, SNAPSHOT_V1),
    )
    return SnapshotResult(
        commit_id=commit.id,
        log_index=attestation.log_index,
        attestation=attestation,
        manifest=manifest,
        objects=objects,
        uncovered=uncovered,
    )


def _read_unverified(store: SnapshotStore, repo: str, ref: str, path: str) -> bytes:
    """_read_unverified reads bytes the caller checks against a signed digest itself.

    lakeFS objects written outside provgate carry no digest metadata for
    :meth:`LakeFSStore.read` to check; the local store's check is its
    content address, which always holds for what it stores.
    """
    raw = getattr(store, "read_unverified", None)
    return bytes(raw(repo, ref, path)) if raw is not None else store.read(repo, ref, path)


def _check_record_size(objects: Sequence[SnapshotObject], uncovered: Sequence[str]) -> None:
    """_check_record_size refuses a record whose envelope would exceed a ledger leaf.

    The envelope base64-encodes the statement (4/3) beside a few KiB of
    fixed fields; long paths, not the object count alone, decide the size.
    """
    from prov_core.canonical import canonical_json
    from prov_core.ledger.base import MAX_LEAF_BYTES

    body = len(canonical_json([o.to_dict() for o in objects])) + len(
        canonical_json(list(uncovered))
    )
    if body * 4 // 3 + 64 * 1024 > MAX_LEAF_BYTES:
        raise InputError(
            f"a snapshot of {len(objects)} objects would need a record of about "
            f"{body * 4 // 3 >> 20} MiB; the ledger takes at most {MAX_LEAF_BYTES >> 20} MiB: "
            "snapshot fewer objects (a narrower prefix) per commit"
        )


def _record_descriptor(ref: RecordRef, origin: str) -> ResourceDescriptor:
    return ResourceDescriptor(
        name=f"attestation:{ref.log_index}",
        uri=f"provgate+log://{origin}/{ref.log_index}",
        digest={"sha256": ref.envelope_sha256},
        media_type=DSSE_MEDIA_TYPE,
        annotations={"logIndex": ref.log_index, "predicateType": ref.predicate_type},
    )


def _attestation_descriptor(a: Attestation) -> ResourceDescriptor:
    d = a.descriptor()
    return ResourceDescriptor(
        name=d["name"],
        uri=d["uri"],
        digest=d["digest"],
        media_type=DSSE_MEDIA_TYPE,
        annotations=d["annotations"],
    )


# --------------------------------------------------------------------------
# Reading records back


def _parse_record(log_index: int, leaf: bytes) -> SnapshotRecord:
    """_parse_record reads a snapshot statement strictly (FormatError names the field)."""
    from prov_core.signing import Envelope

    statement = Statement.parse(Envelope.parse(leaf).payload)
    if statement.predicate_type != SNAPSHOT_V1:
        raise FormatError(
            f"entry {log_index} is a {statement.predicate_type} record, not a snapshot record"
        )
    p = statement.predicate
    prefix = p.get("prefix", "")
    if type(prefix) is not str:
        raise FormatError(f"entry {log_index}: predicate.prefix: expected a string")
    raw_objects = p.get("objects")
    if type(raw_objects) is not list:
        raise FormatError(f"entry {log_index}: predicate.objects: expected an array")
    objects = []
    for i, o in enumerate(raw_objects):
        where = f"entry {log_index}: predicate.objects[{i}]"
        if (
            type(o) is not dict
            or type(o.get("path")) is not str
            or type(o.get("blake3")) is not str
            or not _HEX64.fullmatch(o["blake3"])
            or type(o.get("size")) is not int
            or o["size"] < 0
            or type(o.get("records")) is not list
            or not all(type(r) is int and r >= 0 for r in o["records"])
        ):
            raise FormatError(f"{where}: expected {{path, blake3 (hex64), size, records}}")
        objects.append(SnapshotObject(o["path"], o["blake3"], o["size"], tuple(o["records"])))
    uncovered = p.get("uncovered", [])
    if type(uncovered) is not list or not all(type(u) is str for u in uncovered):
        raise FormatError(f"entry {log_index}: predicate.uncovered: expected an array of paths")
    return SnapshotRecord(log_index, leaf, statement, prefix, tuple(objects), tuple(uncovered))


def parse_snapshot_record(log_index: int, leaf: bytes) -> SnapshotRecord:
    """parse_snapshot_record reads ledger entry ``log_index`` as a snapshot record (unverified).

    Raises :class:`FormatError` naming the field that is wrong.
    """
    return _parse_record(log_index, leaf)


def _matches(record: SnapshotRecord, store_kind: str, repo: str, commit_id: str) -> bool:
    p = record.statement.predicate
    return (
        p.get("store") == store_kind
        and p.get("repository") == repo
        and p.get("commitId") == commit_id
    )


def find_snapshot_record(
    ledger: Ledger,
    index: ContentIndex,
    store: SnapshotStore,
    repo: str,
    commit: Commit | str,
) -> SnapshotRecord:
    """find_snapshot_record returns the snapshot record of a commit, not yet verified.

    The commit's metadata names the record (``provgate-log-index`` in the log
    ``provgate-log-origin``); the entry there must describe this commit. A
    commit without that metadata (made before provgate wrote it) is looked up
    in the index, whose entry must hash to the envelope SHA-256 the index
    holds, and then by scanning the ledger (the newest matching record wins).
    Raises :class:`IntegrityError` when no record describes the commit.
    """
    if isinstance(commit, str):
        commit = store.get_commit(repo, commit)
    commit_id = commit.id
    where = f"{store.scheme}://{repo}/{commit_id}"
    named = commit.metadata.get(METADATA_LOG_INDEX)
    if named is not None:
        return _named_record(ledger, store, repo, commit, named)
    ref = index.snapshot(store.scheme, repo, commit_id)
    if ref is not None:
        leaf = _read_entry(ledger, ref.log_index, where, "the index points at")
        if hashlib.sha256(leaf).hexdigest() != ref.envelope_sha256:
            raise IntegrityError(
                f"{where}: log entry {ref.log_index} is not the snapshot record the index "
                f"names (envelope sha256 {ref.envelope_sha256})",
                reason="snapshot record differs",
            )
        record = _parse_record(ref.log_index, leaf)
        if not _matches(record, store.kind, repo, commit_id):
            raise IntegrityError(
                f"{where}: log entry {ref.log_index} describes another commit",
                reason="snapshot record differs",
            )
        return record
    found: SnapshotRecord | None = None
    for i, leaf in ledger.entries():
        try:
            record = _parse_record(i, leaf)
        except ProvgateError:
            continue
        if _matches(record, store.kind, repo, commit_id):
            found = record
    if found is None:
        raise IntegrityError(
            f"{where}: no snapshot record in the ledger describes this commit; it was not "
            "committed with `provgate snapshot commit`",
            reason="no snapshot record",
        )
    return found


def _read_entry(ledger: Ledger, log_index: int, where: str, how: str) -> bytes:
    try:
        return ledger.entry(log_index)
    except ProvgateError as exc:
        raise IntegrityError(
            f"{where}: {how} log entry {log_index}, which cannot be read: {exc}",
            reason="snapshot record unreadable",
        ) from exc


def _named_record(
    ledger: Ledger, store: SnapshotStore, repo: str, commit: Commit, named: str
) -> SnapshotRecord:
    """_named_record reads the record a commit's ``provgate-log-index`` metadata names."""
    where = f"{store.scheme}://{repo}/{commit.id}"
    origin = commit.metadata.get(METADATA_LOG_ORIGIN)
    if origin is not None and origin != ledger.origin:
        raise IntegrityError(
            f"{where}: its record is in the log {origin!r}, not in this ledger "
            f"({ledger.origin!r}); open the home that holds that log",
            reason="snapshot record in another log",
        )
    if not named.isascii() or not named.isdigit() or len(named) > 18:
        raise IntegrityError(
            f"{where}: commit metadata {METADATA_LOG_INDEX}={named!r} is not a log index",
            reason="no snapshot record",
        )
    log_index = int(named)
    if log_index >= ledger.size():
        raise IntegrityError(
            f"{where}: commit metadata names log entry {log_index}, but the log holds "
            f"{ledger.size()} entries (the record was never appended)",
            reason="no snapshot record",
        )
    leaf = _read_entry(ledger, log_index, where, "its metadata names")
    try:
        record = _parse_record(log_index, leaf)
    except FormatError as exc:
        raise IntegrityError(
            f"{where}: commit metadata names log entry {log_index}, which is not its "
            f"snapshot record ({exc})",
            reason="no snapshot record",
        ) from exc
    if not _matches(record, store.kind, repo, commit.id):
        raise IntegrityError(
            f"{where}: commit metadata names log entry {log_index}, which describes "
            "another commit (the record of this commit was never appended)",
            reason="no snapshot record",
        )
    return record


def verify_snapshot(
    store: SnapshotStore,
    repo: str,
    ref: str,
    *,
    ledger: Ledger,
    trust: KeyPolicy,
    index: ContentIndex,
) -> SnapshotVerifyReport:
    """verify_snapshot checks a commit against its signed snapshot record; names every problem.

    Steps: 1. resolve ``ref`` to a commit id; 2. find the record (index, then
    ledger scan); 3. verify its signature against ``trust``; 4. check the
    signed objects re-derive the signed manifest root, and the commit's
    metadata agrees; 5. list the commit under the record's prefix: each
    signed path not there is *missing*, each path there not signed is
    *extra*; 6. read and re-hash every signed object: bytes that differ from
    the signed BLAKE3 or size (or that the store itself finds damaged) are
    *changed*. Store or ledger failures raise (fail closed), never pass.
    """
    from prov_core.signing import Envelope, verify_envelope

    # 1. The pin.
    commit = store.get_commit(repo, ref)
    report = SnapshotVerifyReport(uri=f"{store.scheme}://{repo}/{commit.id}", commit_id=commit.id)
    # 2. The record.
    try:
        record = find_snapshot_record(ledger, index, store, repo, commit)
    except (IntegrityError, FormatError) as exc:
        report.problems.append(SnapshotProblem("record", str(exc)))
        return report
    report.log_index = record.log_index
    report.objects = len(record.objects)
    # 3. Its signature.
    try:
        verify_envelope(Envelope.parse(record.leaf), trust, predicate_type=SNAPSHOT_V1)
    except VerificationError as exc:
        report.problems.append(
            SnapshotProblem("record", f"snapshot record {record.log_index}: {exc}")
        )
        return report
    # 4. The signed objects against the signed root; the commit metadata.
    root = _manifest_of([(o.path, o.blake3, o.size) for o in record.objects]).blake3
    if root != record.manifest_root:
        report.problems.append(
            SnapshotProblem(
                "record",
                f"snapshot record {record.log_index}: its objects hash to manifest root "
                f"{root}, not the signed root {record.manifest_root}",
            )
        )
        return report
    signed_samples = record.statement.predicate.get("samples")
    if signed_samples is not None:
        want = SampleSet.of_files(o.blake3 for o in record.objects).summary()
        if signed_samples != want:
            report.problems.append(
                SnapshotProblem(
                    "record",
                    f"snapshot record {record.log_index}: its samples summary "
                    f"{signed_samples} is not that of its objects ({want['root']})",
                )
            )
            return report
    stated = commit.metadata.get(METADATA_MANIFEST)
    if stated is not None and stated != root:
        report.problems.append(
            SnapshotProblem(
                "metadata",
                f"commit {commit.id}: metadata {METADATA_MANIFEST}={stated} differs from the "
                f"signed manifest root {root}",
            )
        )
    # 5. Paths.
    listed = _list_all(store, repo, commit.id, record.prefix)
    signed = {o.path: o for o in record.objects}
    for path in sorted(set(signed) - set(listed)):
        report.problems.append(
            SnapshotProblem("missing", f"{path}: signed, but absent at the commit", path)
        )
    for path in sorted(set(listed) - set(signed)):
        report.problems.append(
            SnapshotProblem("extra", f"{path}: at the commit, not in the signed snapshot", path)
        )
    # 6. Content.
    for path in sorted(set(signed) & set(listed)):
        o = signed[path]
        try:
            data = store.read(repo, commit.id, path)
        except IntegrityError as exc:
            if exc.reason != "missing digest":
                report.problems.append(SnapshotProblem("changed", f"{path}: {exc}", path))
                continue
            # Written outside provgate (signed as uncovered): the signed digest is the check.
            data = _read_unverified(store, repo, commit.id, path)
        except NotFoundError:
            report.problems.append(
                SnapshotProblem("missing", f"{path}: listed at the commit but unreadable", path)
            )
            continue
        report.checked += 1
        got = digest_bytes(data)
        if got != o.blake3 or len(data) != o.size:
            report.problems.append(
                SnapshotProblem(
                    "changed",
                    f"{path}: {len(data)} bytes with BLAKE3 {got}; the signed snapshot has "
                    f"{o.size} bytes with BLAKE3 {o.blake3}",
                    path,
                )
            )
    return report


def read_snapshot(uri: str | SnapshotURI, home: Home) -> dict[str, bytes]:
    """read_snapshot returns every object under ``SCHEME://REPO/REF[/PATH]``: path -> bytes.

    What a training or indexing step reads from a pinned snapshot; each read is
    checked by the store (the local store's content address, lakeFS's digest
    metadata). It does not judge the snapshot: the gate does.
    """
    parsed = uri if isinstance(uri, SnapshotURI) else SnapshotURI.parse(uri)
    store = open_store_for(parsed, home)
    try:
        under = parsed.path.strip("/")  # a directory or one object
        return {
            path: store.read(parsed.repository, parsed.ref, path)
            for path in _list_all(store, parsed.repository, parsed.ref, under)
            if not under or path == under or path.startswith(under + "/")
        }
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def open_store_for(uri: SnapshotURI, home: Home) -> SnapshotStore:
    """open_store_for opens the store a URI names: the home's embedded store, or lakeFS."""
    if uri.scheme == "provgate":
        return home.open_store()
    from prov_core.snapshots.lakefs import LakeFSStore

    return LakeFSStore.from_env()
