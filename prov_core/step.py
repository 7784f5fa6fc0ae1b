"""The step API: the one call every adapter uses to record a lineage node.

A step has inputs (artifacts, or attestations of earlier steps), outputs, a
code identity, parameters, an environment and an orchestrator identity.
:func:`record_step` turns them into an in-toto Statement whose predicate is
SLSA Provenance v1, signs it into a DSSE envelope, appends the envelope to the
ledger and returns the :class:`Attestation` — the log index, the SHA-256 of
the stored envelope bytes and the subject digests. Everything an adapter
needs; no hashing, signing or storage logic lives in an adapter.

SLSA mapping (``https://slsa.dev/provenance/v1``)::

    buildDefinition.buildType            STEP_BUILD_TYPE or TRAINING_BUILD_TYPE
    buildDefinition.externalParameters   {"step": name, "parameters": {...}}
    buildDefinition.internalParameters   {"code": {...}, "environment": {...},
                                          "orchestrator": {...}}
    buildDefinition.resolvedDependencies one ResourceDescriptor per input; an
                                         attestation input is named
                                         "attestation:<log index>", digest
                                         {"sha256": <envelope_sha256>}
    runDetails.builder.id                BUILDER_ID + orchestrator name
    runDetails.metadata                  invocationId (run id), startedOn, finishedOn
    runDetails.byproducts                one ResourceDescriptor per output with
                                         its BLAKE3 digest in annotations
    subject                              the outputs, sha256 only

Each output's BLAKE3 travels in the record (``byproducts``), which is how a
snapshot finds the step that wrote a file: the content index reads it from
the ledger when it is next consulted (``ContentIndex.catch_up``), so
recording a step costs no second database write. A directory output is
named by its manifest root only, which no snapshot object matches: record a
step's files as one artifact each.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core import __version__
from prov_core.errors import ConfigError, InputError
from prov_core.signing import Ed25519Signer, Signer, SigningPool, sign_leaves
from prov_core.statement import SLSA_PROVENANCE_V1, Statement, Subject

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger

__all__ = [
    "BUILDER_ID",
    "STEP_BUILD_TYPE",
    "TRAINING_BUILD_TYPE",
    "Artifact",
    "Attestation",
    "CodeIdentity",
    "Recorder",
    "record_step",
]

STEP_BUILD_TYPE = "https://provgate.dev/step/v1"
TRAINING_BUILD_TYPE = "https://provgate.dev/training/v1"
BUILDER_ID = "https://provgate.dev/builder"

_HEX64 = re.compile(r"[0-9a-f]{64}")

#: Batches of at least this many statements are signed with worker processes.
#: Smaller ones (a single step above all) sign in-process: they would not
#: repay the pipe traffic, nor the worker's start (~50 ms of CPU) on first use.
POOL_THRESHOLD = 256


#: Environment variable: how many signing worker processes a Recorder starts
#: by default (``0`` keeps all signing in-process).
ENV_SIGNING_WORKERS = "PROVGATE_SIGNING_WORKERS"


def _default_signing_workers() -> int:
    """``$PROVGATE_SIGNING_WORKERS``, else one per CPU beyond the first, at most two.

    The calling process canonicalizes, appends and signs whatever the workers
    have not taken; beyond two workers nothing is left for more to take.
    """
    value = os.environ.get(ENV_SIGNING_WORKERS, "").strip()
    if value:
        if not (value.isascii() and value.isdigit()):
            raise ConfigError(
                f"{ENV_SIGNING_WORKERS}={value!r} is not a number of processes; "
                "set it to 0 (sign in-process) or a positive integer"
            )
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus - 1, 2)


@dataclass(frozen=True)
class Artifact:
    """Data a step reads or writes, named by its digests.

    ``sha256`` is the subject digest (SHA-256 over the artifact's manifest or
    Merkle root, see docs/digests.md); ``blake3`` is the content digest.
    """

    name: str
    sha256: str
    blake3: str | None = None
    uri: str | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], name: str | None = None) -> Artifact:
        """Digest a file or directory (streaming) and name it by path."""
        from prov_core.digest import digest_path

        tree = digest_path(Path(path))
        p = Path(path)
        return cls(
            name=name or p.name,
            sha256=tree.sha256_subject,
            blake3=tree.blake3,
            uri=p.resolve().as_uri(),
        )

    @classmethod
    def from_bytes(cls, name: str, data: bytes, uri: str | None = None) -> Artifact:
        """Digest in-memory bytes as if they were a file called ``name``."""
        from prov_core.digest import digest_bytes, manifest_sha256

        b3 = digest_bytes(data)
        return cls(name=name, sha256=manifest_sha256([(name, b3)]), blake3=b3, uri=uri)

    def descriptor(self) -> dict[str, Any]:
        """This artifact as an in-toto ResourceDescriptor (sha256 digest; BLAKE3 annotated)."""
        d: dict[str, Any] = {"name": self.name, "digest": {"sha256": self.sha256}}
        if self.uri:
            d["uri"] = self.uri
        if self.blake3:
            d["annotations"] = {"blake3": self.blake3}
        return d


@dataclass(frozen=True)
class Attestation:
    """A record in the ledger: where it is and what it says it is about."""

    log_index: int
    envelope_sha256: str
    predicate_type: str
    subjects: tuple[Subject, ...]
    origin: str = ""

    @property
    def uri(self) -> str:
        """``provgate+log://ORIGIN/INDEX``: where to find this record."""
        return f"provgate+log://{self.origin}/{self.log_index}"

    def descriptor(self) -> dict[str, Any]:
        """This attestation as an input ResourceDescriptor of a later step."""
        return {
            "name": f"attestation:{self.log_index}",
            "uri": self.uri,
            "digest": {"sha256": self.envelope_sha256},
            "annotations": {"logIndex": self.log_index, "predicateType": self.predicate_type},
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form adapters pass between tasks (XCom, metadata, artifacts)."""
        return {
            "log_index": self.log_index,
            "envelope_sha256": self.envelope_sha256,
            "predicate_type": self.predicate_type,
            "subjects": [s.to_dict() for s in self.subjects],
            "origin": self.origin,
        }


@dataclass(frozen=True)
class CodeIdentity:
    """Which code ran: the function, its declared version, the git commit if any."""

    function: str | None = None
    version: str | None = None
    git_commit: str | None = None

    @classmethod
    def of(cls, fn: Callable[..., Any], version: str | None = None) -> CodeIdentity:
        """Identify ``fn`` as ``module.qualname`` with the git commit of its source tree."""
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        source = getattr(getattr(fn, "__code__", None), "co_filename", None)
        commit = git_commit(Path(source).parent) if source else None
        return cls(function=name, version=version, git_commit=commit)

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


@lru_cache(maxsize=64)
def git_commit(start: Path) -> str | None:
    """The commit HEAD points at in the git work tree containing ``start``, or None.

    Reads ``.git`` directly (HEAD, loose refs, packed-refs): no subprocess.
    """
    for d in (start.resolve(), *start.resolve().parents):
        git = d / ".git"
        if git.is_file():  # worktree or submodule: "gitdir: PATH"
            text = git.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (d / text.removeprefix("gitdir:").strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head if len(head) in (40, 64) else None
    ref = head.removeprefix("ref:").strip()
    common = git
    if (git / "commondir").is_file():
        common = (git / (git / "commondir").read_text().strip()).resolve()
    for base in (git, common):
        try:
            return (base / ref).read_text().strip()
        except OSError:
            pass
        try:
            for line in (base / "packed-refs").read_text().splitlines():
                parts = line.split(" ")
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
        except OSError:
            pass
    return None  # unborn branch


@lru_cache(maxsize=1)
def default_environment() -> dict[str, str]:
    """What ran the step: interpreter, platform and provgate version."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": f"{sys.platform}-{platform.machine()}",
        "provgate": __version__,
    }


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Recorder:
    """Signs statements and appends them to a ledger; one instance per worker.

    ``record`` appends one envelope in one transaction; ``record_many`` signs a
    batch and appends it in one transaction (the fast path for bulk work).
    """

    def __init__(
        self,
        ledger: Ledger,
        signer: Signer,
        *,
        origin: str = "",
        signing_workers: int | None = None,
    ) -> None:
        """A recorder appending to ``ledger``, signing with ``signer``.

        ``signing_workers`` is how many worker processes help sign batches of
        at least :data:`POOL_THRESHOLD` statements (with an
        :class:`~prov_core.signing.Ed25519Signer`; other signers, subclasses
        included, always sign in-process): ``None`` for ``$PROVGATE_SIGNING_WORKERS``, else one per
        CPU this process may use beyond the first, at most two (none on a
        single CPU); ``0`` for none. They start with the first such batch
        and end with :meth:`close`; see :class:`~prov_core.signing.SigningPool`.
        """
        self.ledger = ledger
        self.signer = signer
        self.origin = origin
        if signing_workers is None:
            signing_workers = _default_signing_workers()
        self._pool_workers = signing_workers
        self._pool: SigningPool | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_home(cls, home: Home) -> Recorder:
        """A recorder on a home's ledger with its signing key."""
        signer = home.signer
        return cls(home.open_ledger(), signer, origin=home.origin)

    def close(self) -> None:
        """Close the ledger and end any signing workers."""
        pool, self._pool = self._pool, None
        self._pool_workers = 0
        if pool is not None:
            pool.close()
        self.ledger.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, statement: Statement) -> Attestation:
        """Sign ``statement``, append it, and return its attestation."""
        return self.record_many([statement])[0]

    def record_many(self, statements: Sequence[Statement]) -> list[Attestation]:
        """Sign every statement and append them all in one ledger transaction.

        A batch of at least :data:`POOL_THRESHOLD` statements is signed partly
        in worker processes (see ``signing_workers``), overlapping with the
        canonicalization of the rest; the records are the same bytes.
        """
        pool = self._signing_pool() if len(statements) >= POOL_THRESHOLD else None
        leaves = sign_leaves((st.canonical_bytes() for st in statements), self.signer, pool=pool)
        appended = self.ledger.append(leaves)
        first, origin, sha256 = appended.first_index, self.origin, hashlib.sha256
        return [
            Attestation(first + i, sha256(leaf).hexdigest(), st.predicate_type, st.subjects, origin)
            for i, (st, leaf) in enumerate(zip(statements, leaves, strict=True))
        ]

    def _signing_pool(self) -> SigningPool | None:
        """The worker pool, started on first use; None when signing stays in-process."""
        if self._pool is None and self._pool_workers > 0:
            with self._pool_lock:
                signer = self.signer
                # Exactly Ed25519Signer: a subclass may sign differently (a KMS, a log).
                if self._pool is None and type(signer) is Ed25519Signer:
                    self._pool = SigningPool.start(signer, self._pool_workers)
                if self._pool is None:  # unavailable here: do not try again
                    self._pool_workers = 0
        return self._pool


@dataclass(frozen=True)
class _StepSpec:
    name: str
    inputs: Sequence[Artifact | Attestation]
    outputs: Sequence[Artifact]
    code: CodeIdentity
    parameters: Mapping[str, Any]
    environment: Mapping[str, Any]
    orchestrator: Mapping[str, Any]
    started_on: datetime | None
    finished_on: datetime | None
    build_type: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def step_statement(spec: _StepSpec) -> Statement:
    """The SLSA Provenance v1 statement of a step (see the module docstring)."""
    if not spec.name:
        raise InputError("a step needs a name")
    if not spec.outputs and not spec.inputs:
        raise InputError(f"step {spec.name!r} has neither inputs nor outputs to record")
    deps = [i.descriptor() for i in spec.inputs]
    orchestrator = dict(spec.orchestrator)
    metadata: dict[str, Any] = {}
    run_id = orchestrator.get("run_id")
    if run_id is not None:
        metadata["invocationId"] = str(run_id)
    if spec.started_on is not None:
        metadata["startedOn"] = _rfc3339(spec.started_on)
    metadata["finishedOn"] = _rfc3339(spec.finished_on or datetime.now(UTC))
    builder_id = f"{BUILDER_ID}/{orchestrator.get('name', 'python')}"
    predicate: dict[str, Any] = {
        "buildDefinition": {
            "buildType": spec.build_type,
            "externalParameters": {"step": spec.name, "parameters": dict(spec.parameters)},
            "internalParameters": {
                "code": spec.code.to_dict(),
                "environment": dict(spec.environment),
                "orchestrator": orchestrator,
                **spec.extra,
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": builder_id, "version": {"provgate": __version__}},
            "metadata": metadata,
            "byproducts": [o.descriptor() for o in spec.outputs],
        },
    }
    subjects = [Subject(name=o.name, sha256=o.sha256) for o in spec.outputs]
    if not subjects:  # a sink step: the subject is the step itself, by its inputs
        joined = "".join(sorted(d["digest"]["sha256"] for d in deps)).encode()
        subjects = [Subject(name=f"step:{spec.name}", sha256=hashlib.sha256(joined).hexdigest())]
    return Statement(subjects=subjects, predicate_type=SLSA_PROVENANCE_V1, predicate=predicate)


def record_step(
    recorder: Recorder,
    name: str,
    *,
    inputs: Sequence[Artifact | Attestation] = (),
    outputs: Sequence[Artifact] = (),
    code: CodeIdentity | None = None,
    parameters: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    orchestrator: Mapping[str, Any] | None = None,
    started_on: datetime | None = None,
    finished_on: datetime | None = None,
    build_type: str = STEP_BUILD_TYPE,
) -> Attestation:
    """Record one step as a signed lineage node and return its attestation.

    ``inputs`` are artifacts (digested data) or attestations of earlier steps;
    ``outputs`` become the statement's subjects. ``orchestrator`` carries the
    run identity (``name``, ``run_id``, task or asset key, attempt, ...).
    Parameters and environment must be JSON values (RFC 8785: no NaN, ints
    within ±2^53); anything else raises :class:`CanonicalizationError`.
    An output BLAKE3 that is not 64 lowercase hex characters raises
    :class:`InputError` before anything is recorded (snapshots find a step's
    outputs by it).
    """
    bad = [o.blake3 for o in outputs if o.blake3 is not None and not _HEX64.fullmatch(o.blake3)]
    if bad:
        raise InputError(
            f"step {name!r}: output BLAKE3 {bad[0]!r} is not 64 lowercase hex characters"
        )
    spec = _StepSpec(
        name=name,
        inputs=inputs,
        outputs=outputs,
        code=code or CodeIdentity(),
        parameters=parameters or {},
        environment=default_environment() if environment is None else environment,
        orchestrator=orchestrator or {"name": "python"},
        started_on=started_on,
        finished_on=finished_on,
        build_type=build_type,
    )
    return recorder.record(step_statement(spec))
