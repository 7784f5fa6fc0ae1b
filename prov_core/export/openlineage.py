"""OpenLineage export: one RunEvent per ledger entry, through any OpenLineage transport.

Every signed record becomes one OpenLineage ``RunEvent`` (spec 2-0-2), so
Marquez, DataHub or any other OpenLineage consumer can draw the graph the
ledger proves. openlineage-python is needed only here and is imported when
an export runs (``pip install 'provgate[openlineage]'``); without it the
functions raise :class:`~prov_core.errors.InputError` saying so.

Two layers:

1. :func:`lineage_runs` reads entries ``start <= index < stop`` and
   translates each into a frozen :class:`LineageRun` (pure Python, no
   openlineage-python): job, run id, time, state, input and output
   :class:`LineageDataset` s and the attestation's identity.
2. :func:`openlineage_events` turns those into openlineage-python
   ``RunEvent`` objects; :func:`openlineage_dicts` into their JSON objects;
   :func:`emit_openlineage` sends them through an ``OpenLineageClient``.

Mapping (record kind -> event)::

    kind                   job.name             eventTime          inputs -> outputs
    ingest/v1              ingest:SUBJECT       retrievedAt        source URI -> subjects
    SLSA provenance v1     externalParameters.step   runDetails.metadata.finishedOn
                                                resolvedDependencies -> byproducts
    snapshot/v1            snapshot:REPOSITORY  committedAt        derivedFrom -> the snapshot
    SLSA VSA v1 (gate)     gate                 timeVerified       subjects (pinned URIs) -> -
    inference/v1           inference:MODEL      answeredAt         model, retrieved chunks -> -
    anything else          record:KIND          predicate "time"   - -> subjects

* ``eventType`` is ``COMPLETE``, or ``FAIL`` for a gate that refused
  (``verificationResult`` FAILED) and an inference the policies blocked; a
  failed run carries the standard ``errorMessage`` facet with the reasons.
* ``job.namespace`` is the ledger's origin unless ``namespace=`` is given;
  the standard ``jobType`` facet says ``integration: PROVGATE`` and the kind.
* ``run.runId`` is a UUIDv7 (RFC 9562) whose 48-bit time is the event time
  in milliseconds and whose 74 other free bits are the first bits of the
  envelope SHA-256: the same entry always exports to the same run id.
* Datasets follow the OpenLineage naming conventions: ``file:///p`` ->
  (``file``, ``/p``); ``file://host/p`` -> (``file://host``, ``/p``);
  ``provgate://REPO/REF[/PATH]`` and ``lakefs://REPO/REF[/PATH]`` ->
  (``SCHEME://REPO``, ``PATH`` or ``/``), the commit being the version, not
  part of the name; other ``scheme://host/path`` -> (``scheme://host``,
  ``path``); an artifact known only by name -> (job namespace, name). An
  input that is another record (``attestation:N``) stands for that record's
  outputs, so the events join into one graph.
* Each dataset with a known digest has ``version``
  (``DatasetVersionDatasetFacet``) = ``sha256:HEX``, the subject digest (the
  same value for the same bytes whichever record names them), and the
  custom ``provgate_digest`` facet; each run has the custom
  ``provgate_attestation`` facet (log index, envelope SHA-256, predicate
  type, key id, ledger origin, and the checkpoint the export read). Their
  schemas are published in ``docs/schemas/`` (see docs/export.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import unquote, urlsplit

from prov_core.errors import FormatError, InputError
from prov_core.statement import (
    INFERENCE_V1,
    INGEST_V1,
    SLSA_PROVENANCE_V1,
    SLSA_VSA_V1,
    SNAPSHOT_V1,
)

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent
    from openlineage.client.transport import Transport

    from prov_core.ledger.base import Ledger

__all__ = [
    "ATTESTATION_FACET",
    "DIGEST_FACET",
    "INSTALL_HINT",
    "PRODUCER",
    "LineageDataset",
    "LineageRun",
    "client_from_config",
    "dataset_for_uri",
    "emit_openlineage",
    "lineage_runs",
    "openlineage_dicts",
    "openlineage_events",
    "openlineage_json_lines",
    "run_uuid",
    "to_openlineage",
]

#: Facet keys (``{prefix}_{name}``, as the spec asks of custom facets).
ATTESTATION_FACET: Final = "provgate_attestation"
DIGEST_FACET: Final = "provgate_digest"
INSTALL_HINT: Final = "pip install 'provgate[openlineage]'"

_TRAINING_BUILD_TYPE: Final = "https://provgate.dev/training/v1"  # prov_core.step
_EPOCH: Final = "1970-01-01T00:00:00Z"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _producer() -> str:
    from prov_core import __version__

    return f"https://provgate.dev/provgate/{__version__}"


#: ``producer`` of every event and facet.
PRODUCER: Final = _producer()

EventType = Literal["COMPLETE", "FAIL"]


@dataclass(frozen=True)
class LineageDataset:
    """A dataset an entry reads or writes, named by OpenLineage's conventions."""

    namespace: str
    name: str
    sha256: str | None = None
    blake3: str | None = None
    sample_count: int | None = None
    sample_root: str | None = None
    commit_id: str | None = None

    @property
    def version(self) -> str | None:
        """``sha256:HEX`` (the subject digest), or None when no digest is known."""
        return None if self.sha256 is None else f"sha256:{self.sha256}"


@dataclass(frozen=True)
class LineageRun:
    """One ledger entry as a lineage run: what :func:`openlineage_events` sends."""

    log_index: int
    envelope_sha256: str
    predicate_type: str
    keyid: str | None
    origin: str
    checkpoint_size: int | None
    checkpoint_root: str | None
    job_namespace: str
    job_name: str
    job_type: str
    event_time: str
    event_type: EventType
    inputs: tuple[LineageDataset, ...] = ()
    outputs: tuple[LineageDataset, ...] = ()
    error: str | None = None

    @property
    def uri(self) -> str:
        """``provgate+log://ORIGIN/INDEX``: where the record is."""
        return f"provgate+log://{self.origin}/{self.log_index}"

    @property
    def run_id(self) -> str:
        """The deterministic UUIDv7 of this run (see the module docstring)."""
        return str(run_uuid(self.event_time, self.envelope_sha256))


def run_uuid(event_time: str, envelope_sha256: str) -> uuid.UUID:
    """UUIDv7: 48-bit Unix milliseconds of ``event_time``, the rest from the envelope SHA-256."""
    when = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    ms = max(0, int(when.timestamp() * 1000)) & ((1 << 48) - 1)
    rand = int(envelope_sha256[:20], 16)  # 80 bits, 6 of them overwritten below
    value = (ms << 80) | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant 10 (RFC 9562)
    return uuid.UUID(int=value)


# --------------------------------------------------------------------------
# Reading the ledger (pure: no openlineage-python)


def _checkpoint(ledger: Ledger) -> tuple[int, str] | None:
    from prov_core.ledger.checkpoint import Checkpoint

    note = ledger.latest_checkpoint()
    if note is None:
        return None
    body = note.split(b"\n\n", 1)[0] + b"\n"
    cp = Checkpoint.parse(body)
    return cp.size, cp.root.hex()


def _range(ledger: Ledger, start: int, stop: int | None) -> tuple[int, int]:
    size = ledger.size()
    end = size if stop is None else stop
    if type(start) is not int or type(end) is not int or not 0 <= start <= end <= size:
        indices = f"indices 0..{size - 1}" if size else "it is empty"
        last = "the end" if stop is None else str(stop - 1)
        raise InputError(
            f"log entries {start} to {last} are out of range: "
            f"the log has {size} entries ({indices})"
        )
    return start, end


def lineage_runs(
    ledger: Ledger, start: int = 0, stop: int | None = None, *, namespace: str | None = None
) -> Iterator[LineageRun]:
    """Translate entries ``start <= index < stop`` (default: all) into :class:`LineageRun` s.

    A range outside ``0 <= start <= stop <= size`` raises :class:`InputError`
    before anything is read; an entry that does not parse raises
    :class:`FormatError` naming its index. Signatures are not verified here
    (``provgate verify`` does that); the run facet carries what is needed to.
    """
    start, stop = _range(ledger, start, stop)
    translator = _Translator(ledger, namespace or ledger.origin, _checkpoint(ledger))
    for index, leaf in ledger.entries(start, stop):
        yield translator.run(index, leaf)


def _decode(index: int, leaf: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    from prov_core.records import decode_entry

    try:
        envelope, statement = decode_entry(leaf)
    except (FormatError, ValueError) as exc:
        raise FormatError(f"log entry {index} does not parse: {exc}") from exc
    if not isinstance(statement, dict):
        raise FormatError(f"log entry {index}: the payload is not a JSON object")
    return envelope, statement


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _hex64(value: Any) -> str | None:
    return value if isinstance(value, str) and _HEX64.fullmatch(value) else None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


class _Translator:
    """Maps decoded statements to runs; remembers each record's outputs for later inputs."""

    def __init__(self, ledger: Ledger, namespace: str, checkpoint: tuple[int, str] | None) -> None:
        self.ledger = ledger
        self.namespace = namespace
        self.checkpoint = checkpoint
        self._outputs: dict[int, tuple[str, tuple[LineageDataset, ...]]] = {}

    # -- one entry

    def run(self, index: int, leaf: bytes) -> LineageRun:
        envelope, statement = _decode(index, leaf)
        sha = hashlib.sha256(leaf).hexdigest()
        ptype = _str(statement.get("predicateType")) or ""
        predicate = _dict(statement.get("predicate"))
        subjects = [_dict(s) for s in _list(statement.get("subject"))]
        sigs = [_dict(s) for s in _list(envelope.get("signatures"))]
        kind = {
            INGEST_V1: self._ingest,
            SLSA_PROVENANCE_V1: self._step,
            SNAPSHOT_V1: self._snapshot,
            SLSA_VSA_V1: self._gate,
            INFERENCE_V1: self._inference,
        }.get(ptype, self._other)
        parts = kind(ptype, predicate, subjects)
        self._outputs[index] = (sha, parts.outputs)
        cp = self.checkpoint
        return LineageRun(
            log_index=index,
            envelope_sha256=sha,
            predicate_type=ptype,
            keyid=_str(sigs[0].get("keyid")) if sigs else None,
            origin=self.ledger.origin,
            checkpoint_size=None if cp is None else cp[0],
            checkpoint_root=None if cp is None else cp[1],
            job_namespace=self.namespace,
            job_name=parts.job_name,
            job_type=parts.job_type,
            event_time=_time(parts.time),
            event_type="FAIL" if parts.error is not None else "COMPLETE",
            inputs=_unique(parts.inputs),
            outputs=_unique(parts.outputs),
            error=parts.error,
        )

    # -- per kind

    def _ingest(self, _: str, p: dict[str, Any], subjects: list[dict[str, Any]]) -> _Parts:
        source = _str(_dict(p.get("source")).get("uri"))
        samples = _dict(p.get("samples"))
        manifest = _dict(p.get("manifest"))
        outputs = tuple(
            _with_digests(
                self._named(_str(s.get("name")) or "dataset"),
                sha256=_hex64(_dict(s.get("digest")).get("sha256")),
                blake3=_hex64(manifest.get("root")),
                sample_count=_int(samples.get("count")),
                sample_root=_hex64(samples.get("root")),
            )
            for s in subjects
        )
        name = outputs[0].name if outputs else "dataset"
        return _Parts(
            job_name=f"ingest:{name}",
            job_type="INGEST",
            time=p.get("retrievedAt"),
            inputs=() if source is None else (self._uri(source),),
            outputs=outputs,
        )

    def _step(self, _: str, p: dict[str, Any], subjects: list[dict[str, Any]]) -> _Parts:
        build = _dict(p.get("buildDefinition"))
        details = _dict(p.get("runDetails"))
        metadata = _dict(details.get("metadata"))
        step = _str(_dict(build.get("externalParameters")).get("step"))
        inputs: list[LineageDataset] = []
        for d in _list(build.get("resolvedDependencies")):
            inputs.extend(self._descriptor(_dict(d)))
        outputs = [self._artifact(_dict(d)) for d in _list(details.get("byproducts"))]
        if not outputs and not step:
            outputs = [self._subject(s) for s in subjects]
        training = build.get("buildType") == _TRAINING_BUILD_TYPE
        return _Parts(
            job_name=step or "step",
            job_type="TRAINING" if training else "STEP",
            time=metadata.get("finishedOn") or metadata.get("startedOn"),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
        )

    def _snapshot(self, _: str, p: dict[str, Any], subjects: list[dict[str, Any]]) -> _Parts:
        repository = _str(p.get("repository")) or "repository"
        scheme = "lakefs" if p.get("store") == "lakefs" else "provgate"
        prefix = _str(p.get("prefix")) or ""
        manifest = _dict(p.get("manifest"))
        output = LineageDataset(
            namespace=f"{scheme}://{repository}",
            name=prefix.strip("/") or "/",
            sha256=_hex64(_dict(subjects[0].get("digest")).get("sha256")) if subjects else None,
            blake3=_hex64(manifest.get("root")),
            commit_id=_str(p.get("commitId")),
        )
        inputs: list[LineageDataset] = []
        for d in _list(p.get("derivedFrom")):
            inputs.extend(self._descriptor(_dict(d)))
        return _Parts(
            job_name=f"snapshot:{repository}",
            job_type="SNAPSHOT",
            time=p.get("committedAt"),
            inputs=tuple(inputs),
            outputs=(output,),
        )

    def _gate(self, _: str, p: dict[str, Any], subjects: list[dict[str, Any]]) -> _Parts:
        recorded = [_dict(i) for i in _list(p.get("provgateInputs"))]
        inputs = []
        for i, s in enumerate(subjects):
            dataset = self._uri(_str(s.get("name")) or "input")
            has_record = i < len(recorded) and recorded[i].get("snapshotRecord") is not None
            if has_record:
                digest = _hex64(_dict(s.get("digest")).get("sha256"))
                dataset = _with_digests(dataset, sha256=digest)
            inputs.append(dataset)
        error = None
        if p.get("verificationResult") != "PASSED":
            reasons = [_str(_dict(r).get("message")) for r in _list(p.get("provgateReasons"))]
            error = "the training gate refused: " + (
                "; ".join(r for r in reasons if r) or "no reason recorded"
            )
        return _Parts(
            job_name="gate",
            job_type="GATE",
            time=p.get("timeVerified"),
            inputs=tuple(inputs),
            error=error,
        )

    def _inference(self, _: str, p: dict[str, Any], __: list[dict[str, Any]]) -> _Parts:
        model = _dict(p.get("model"))
        inputs = [self._artifact(model)] if model else []
        for chunk in _list(p.get("retrieved")):
            c = _dict(chunk)
            snap = _dict(c.get("snapshot"))
            digest = _dict(c.get("digest"))
            inputs.append(
                LineageDataset(
                    namespace=f"provgate://{_str(snap.get('repository')) or 'repository'}",
                    name=(_str(snap.get("path")) or "").strip("/") or "/",
                    sha256=_hex64(digest.get("sha256")),
                    blake3=_hex64(digest.get("blake3")),
                    commit_id=_str(snap.get("commitId")),
                )
            )
        policy = _dict(p.get("policy"))
        error = None
        if policy.get("decision") == "block":
            reasons = [r for r in _list(policy.get("reasons")) if isinstance(r, str)]
            error = "the answer was blocked: " + ("; ".join(reasons) or "no reason recorded")
        name = inputs[0].name if model else "model"
        return _Parts(
            job_name=f"inference:{name}",
            job_type="INFERENCE",
            time=p.get("answeredAt"),
            inputs=tuple(inputs),
            error=error,
        )

    def _other(self, ptype: str, p: dict[str, Any], subjects: list[dict[str, Any]]) -> _Parts:
        kind = ptype.rstrip("/").split("/")
        label = "-".join(kind[-2:]) if len(kind) >= 2 else (ptype or "unknown")
        return _Parts(
            job_name=f"record:{label}",
            job_type="RECORD",
            time=p.get("time"),
            outputs=tuple(self._subject(s) for s in subjects),
        )

    # -- datasets

    def _named(self, name: str) -> LineageDataset:
        return LineageDataset(namespace=self.namespace, name=name)

    def _subject(self, s: dict[str, Any]) -> LineageDataset:
        return _with_digests(
            self._named(_str(s.get("name")) or "subject"),
            sha256=_hex64(_dict(s.get("digest")).get("sha256")),
        )

    def _uri(self, uri: str) -> LineageDataset:
        return dataset_for_uri(uri, self.namespace)

    def _artifact(self, d: dict[str, Any]) -> LineageDataset:
        uri = _str(d.get("uri"))
        base = self._uri(uri) if uri else self._named(_str(d.get("name")) or "artifact")
        digest = _dict(d.get("digest"))
        blake3 = _hex64(_dict(d.get("annotations")).get("blake3")) or _hex64(digest.get("blake3"))
        return _with_digests(base, sha256=_hex64(digest.get("sha256")), blake3=blake3)

    def _descriptor(self, d: dict[str, Any]) -> tuple[LineageDataset, ...]:
        """An input descriptor: another record stands for its outputs, else an artifact."""
        index = _int(_dict(d.get("annotations")).get("logIndex"))
        uri = _str(d.get("uri")) or ""
        if index is None and uri.startswith("provgate+log://"):
            tail = uri.rsplit("/", 1)[-1]
            index = int(tail) if tail.isdigit() else None
        if index is None:
            return (self._artifact(d),)
        sha = _hex64(_dict(d.get("digest")).get("sha256"))
        known = self._record_outputs(index)
        if known is not None and known[0] == sha and known[1]:
            return known[1]
        # Not in this log, or not the record it claims to be: name the reference itself.
        return (_with_digests(self._named(f"attestation:{index}"), sha256=sha),)

    def _record_outputs(self, index: int) -> tuple[str, tuple[LineageDataset, ...]] | None:
        if index not in self._outputs:
            if not 0 <= index < self.ledger.size():
                return None
            try:
                self.run(index, self.ledger.entry(index))  # fills self._outputs[index]
            except FormatError:
                return None
        return self._outputs[index]


@dataclass(frozen=True)
class _Parts:
    job_name: str
    job_type: str
    time: Any
    inputs: tuple[LineageDataset, ...] = ()
    outputs: tuple[LineageDataset, ...] = ()
    error: str | None = None


def _with_digests(dataset: LineageDataset, **digests: Any) -> LineageDataset:
    """``dataset`` with the given digests set (None values leave a field unchanged)."""
    from dataclasses import replace

    return replace(dataset, **{k: v for k, v in digests.items() if v is not None})


def dataset_for_uri(uri: str, namespace: str) -> LineageDataset:
    """The dataset a URI names, by OpenLineage's naming conventions (module docstring)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("provgate", "lakefs"):
        repo, _, tail = (parts.netloc + parts.path).partition("/")
        ref, _, path = tail.partition("/")
        return LineageDataset(
            namespace=f"{scheme}://{repo}",
            name=path.strip("/") or "/",
            commit_id=ref if _HEX64.fullmatch(ref) else None,
        )
    if scheme == "file":
        path = unquote(parts.path) or "/"
        host = parts.netloc
        return LineageDataset(
            namespace="file" if host in ("", "localhost") else f"file://{host}", name=path
        )
    if scheme and parts.netloc:
        name = parts.path.lstrip("/") or "/"
        if parts.query:
            name += "?" + parts.query
        return LineageDataset(namespace=f"{scheme}://{parts.netloc}", name=name)
    return LineageDataset(namespace=namespace, name=uri)


def _unique(datasets: Sequence[LineageDataset]) -> tuple[LineageDataset, ...]:
    return tuple(dict.fromkeys(datasets))


def _time(value: Any) -> str:
    """The record's time as RFC 3339 (``1970-01-01T00:00:00Z`` when it has none)."""
    if not isinstance(value, str):
        return _EPOCH
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        # More than 6 fractional digits: keep microseconds.
        head, dot, rest = value.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        try:
            when = datetime.fromisoformat(
                (head + dot + rest[: min(digits, 6)] + rest[digits:]).replace("Z", "+00:00")
            )
        except ValueError:
            return _EPOCH
    if when.tzinfo is None:
        return _EPOCH
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------
# openlineage-python objects


def _require() -> None:
    try:
        import openlineage.client  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"the OpenLineage export needs openlineage-python: {INSTALL_HINT}"
        ) from exc


def to_openlineage(run: LineageRun) -> RunEvent:
    """The openlineage-python ``RunEvent`` of one :class:`LineageRun`."""
    _require()
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        DatasetFacet,
        JobFacet,
        RunFacet,
        dataset_version_dataset,
        error_message_run,
        job_type_job,
    )

    from prov_core.export._ol_facets import ProvgateAttestationRunFacet, ProvgateDigestDatasetFacet

    def facets(d: LineageDataset) -> dict[str, DatasetFacet]:
        out: dict[str, DatasetFacet] = {}
        if d.version is not None:
            out["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=d.version, producer=PRODUCER
            )
        if d.sha256 or d.blake3 or d.commit_id:
            out[DIGEST_FACET] = ProvgateDigestDatasetFacet(
                sha256=d.sha256,
                blake3=d.blake3,
                sampleCount=d.sample_count,
                sampleRoot=d.sample_root,
                commitId=d.commit_id,
                producer=PRODUCER,
            )
        return out

    run_facets: dict[str, RunFacet] = {
        ATTESTATION_FACET: ProvgateAttestationRunFacet(
            logIndex=run.log_index,
            envelopeSha256=run.envelope_sha256,
            predicateType=run.predicate_type,
            ledgerOrigin=run.origin,
            uri=run.uri,
            keyid=run.keyid,
            checkpointSize=run.checkpoint_size,
            checkpointRootHash=run.checkpoint_root,
            producer=PRODUCER,
        )
    }
    if run.error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=run.error, programmingLanguage="python", producer=PRODUCER
        )
    job_facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PROVGATE", jobType=run.job_type, producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=RunState.FAIL if run.event_type == "FAIL" else RunState.COMPLETE,
        eventTime=run.event_time,
        producer=PRODUCER,
        run=Run(runId=run.run_id, facets=run_facets),
        job=Job(namespace=run.job_namespace, name=run.job_name, facets=job_facets),
        inputs=[InputDataset(d.namespace, d.name, facets=facets(d)) for d in run.inputs],
        outputs=[OutputDataset(d.namespace, d.name, facets=facets(d)) for d in run.outputs],
    )


def openlineage_events(
    ledger: Ledger, start: int = 0, stop: int | None = None, *, namespace: str | None = None
) -> Iterator[RunEvent]:
    """``RunEvent`` s of entries ``start <= index < stop`` (see :func:`lineage_runs`)."""
    _require()
    for run in lineage_runs(ledger, start, stop, namespace=namespace):
        yield to_openlineage(run)


def openlineage_dicts(
    ledger: Ledger, start: int = 0, stop: int | None = None, *, namespace: str | None = None
) -> list[dict[str, Any]]:
    """The events as JSON objects, exactly as a transport would send them."""
    from openlineage.client.serde import Serde

    return [Serde.to_dict(e) for e in openlineage_events(ledger, start, stop, namespace=namespace)]


def openlineage_json_lines(
    ledger: Ledger, start: int = 0, stop: int | None = None, *, namespace: str | None = None
) -> Iterator[str]:
    """One compact JSON line per event (keys sorted), without the newline."""
    for event in openlineage_dicts(ledger, start, stop, namespace=namespace):
        yield json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def client_from_config(path: str | Path) -> OpenLineageClient:
    """An ``OpenLineageClient`` configured by a file in openlineage-python's own format.

    The file is ``openlineage.yml`` syntax (YAML or JSON), e.g.
    ``{"transport": {"type": "file", "log_file_path": "events.jsonl", "append": true}}``.
    """
    _require()
    import yaml
    from openlineage.client import OpenLineageClient

    p = Path(path)
    try:
        config = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{p}: cannot read the OpenLineage config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not a YAML or JSON OpenLineage config: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("transport"), dict):
        raise InputError(f"{p}: an OpenLineage config needs a 'transport' mapping with a 'type'")
    try:
        return OpenLineageClient(config=config)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{p}: OpenLineage cannot use this transport config: {exc}") from exc


def emit_openlineage(
    ledger: Ledger,
    start: int = 0,
    stop: int | None = None,
    *,
    client: OpenLineageClient | None = None,
    transport: Transport | None = None,
    namespace: str | None = None,
) -> int:
    """Send the events of entries ``start <= index < stop`` and return how many were sent.

    Through ``client``, or a client on ``transport``, or else
    ``OpenLineageClient()``, which openlineage-python configures itself
    (``OPENLINEAGE_CONFIG``, ``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__*``
    or ``OPENLINEAGE_URL``; the console when nothing is configured). The range
    is checked before anything is sent.
    """
    _require()
    from openlineage.client import OpenLineageClient

    events = list(openlineage_events(ledger, start, stop, namespace=namespace))
    if client is None:
        client = OpenLineageClient(transport=transport) if transport else OpenLineageClient()
    for event in events:
        client.emit(event)
    return len(events)
