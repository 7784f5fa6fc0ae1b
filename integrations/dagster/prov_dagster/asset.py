"""provenance_asset: ``@asset`` that records each materialization as a signed lineage node.

The one-line change per asset is ``@asset`` -> ``@provenance_asset`` (same arguments).
The decorated function writes its data and returns where it is stored:

- ``Path``, a sequence of them, or a mapping name -> ``Path``: files (or directories)
  the asset wrote; they are digested *after* the function returned, so the record
  names the bytes actually stored, and recorded with ``prov_core.step.record_step``;
- :class:`Ingest`: data entering the pipeline, digested per sample and recorded with
  its source and license (``prov_core.ingest.ingest_path``);
- :class:`Snapshot`: files committed as an immutable snapshot
  (``prov_core.snapshot_record.commit_snapshot``); its data version is the commit id.

The inputs of each record are the *attestations* of the upstream assets' latest
materializations (of the same partition, for partitioned upstreams), read from the
Dagster instance; an upstream with none fails the step. ``training=True`` asks the
training gate first (``prov_core.gate.evaluate_gate``) about the pinned snapshots of the
upstream snapshot assets, refuses with every reason (:class:`ProvenanceRefused`), and
records the training step with the gate's decision among its inputs.

Every materialization carries provgate's metadata (:data:`METADATA_KEYS`) and a
``DataVersion`` that is provgate's digest of the outputs, so Dagster's own
data-version tracking follows provgate's canonical identity.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterInstance,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from prov_dagster.errors import ProvenanceError, ProvenanceRefused
from prov_dagster.resource import RESOURCE_KEY, ProvenanceResource

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ingest import IngestRequest
    from prov_core.step import Artifact, Attestation

__all__ = [
    "METADATA_KEYS",
    "Ingest",
    "Snapshot",
    "latest_provenance",
    "provenance_asset",
]

PREFIX = "provgate/"
ATTESTATION = PREFIX + "attestation"
LOG_INDEX = PREFIX + "log_index"
ENVELOPE = PREFIX + "envelope_sha256"
STATEMENT = PREFIX + "statement"
CONTENT = PREFIX + "content_digest"
SAMPLES = PREFIX + "samples"
OUTPUTS = PREFIX + "outputs"
SNAPSHOT_COMMIT = PREFIX + "snapshot_commit"
SNAPSHOT_URI = PREFIX + "snapshot_uri"
LINEAGE = PREFIX + "lineage"
PARENT = PREFIX + "parent/"
GATE = PREFIX + "gate_vsa_log_index"
METADATA_KEYS = (ATTESTATION, LOG_INDEX, ENVELOPE, STATEMENT, CONTENT, SAMPLES, LINEAGE)
"""METADATA_KEYS are on every provenance materialization (plus parents, outputs, snapshot)."""

#: The parameter a training function may declare to receive the pinned inputs that passed.
PINNED_PARAM = "pinned"


@dataclass(frozen=True)
class Ingest:
    """Return this from an ingest asset: ``path`` enters the pipeline under ``request``."""

    path: Path
    request: IngestRequest


@dataclass(frozen=True)
class Snapshot:
    """Return this to commit ``path`` as a snapshot ``SCHEME://repo/branch[/prefix]``.

    ``scheme`` is ``provgate`` (the home's embedded store) or ``lakefs``
    (configured as lakectl is).
    """

    path: Path
    repo: str
    branch: str = "main"
    prefix: str = ""
    message: str = ""
    scheme: str = "provgate"


@dataclass(frozen=True)
class _Parent:
    """_Parent is an upstream asset's latest materialization (of one partition) and its record."""

    key: AssetKey
    partition: str | None
    attestation: Attestation
    snapshot_uri: str | None


@dataclass(frozen=True)
class _Node:
    attestation: Attestation
    leaf: bytes  # the ledger entry, as stored
    content: str
    samples: int
    outputs: dict[str, str] = field(default_factory=dict)
    snapshot_uri: str | None = None
    snapshot_commit: str | None = None


# ---------------------------------------------------------------------------
# Reading upstream provenance back from the instance


def _value(meta: Mapping[str, Any], key: str) -> Any:
    v = meta.get(key)
    return getattr(v, "value", v)


def latest_provenance(
    instance: DagsterInstance, key: AssetKey, partition: str | None
) -> tuple[Attestation, dict[str, Any]]:
    """The attestation (and other provgate metadata) of ``key``'s latest materialization."""
    from dagster import AssetRecordsFilter

    from prov_core.errors import InputError
    from prov_core.nodes import attestation_from_dict

    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=key, asset_partitions=None if partition is None else [partition]
        ),
        limit=1,
    ).records
    mat = records[0].asset_materialization if records else None
    where = key.to_user_string() + (f" partition {partition!r}" if partition else "")
    if mat is None:
        raise ProvenanceError(
            f"upstream asset {where} has not been materialized, so it has no provgate "
            "attestation; materialize it first"
        )
    raw = _value(mat.metadata, ATTESTATION)
    if raw is None:
        raise ProvenanceError(
            f"upstream asset {where} has no provgate attestation in its latest "
            "materialization; decorate it with @provenance_asset"
        )
    try:
        attestation = attestation_from_dict(raw)
    except InputError as exc:
        raise ProvenanceError(f"upstream asset {where}: {exc}") from exc
    return attestation, {
        "snapshot_uri": _value(mat.metadata, SNAPSHOT_URI),
        "outputs": _value(mat.metadata, OUTPUTS) or {},
    }


def _upstream(context: AssetExecutionContext) -> list[_Parent]:
    """Every upstream asset's latest attestation; partitioned ones per mapped partition."""
    ad = context.assets_def
    key = context.asset_key
    input_names = {k: n for n, k in ad.keys_by_input_name.items()}
    found = []
    for dep in sorted(ad.asset_deps.get(key, ()), key=lambda k: k.to_user_string()):
        partitions: Sequence[str | None] = [None]
        if _is_partitioned(context, dep) and dep in input_names:
            partitions = list(context.asset_partition_keys_for_input(input_names[dep]))
        for partition in partitions:
            attestation, extra = latest_provenance(context.instance, dep, partition)
            found.append(_Parent(dep, partition, attestation, extra.get("snapshot_uri")))
    return found


def _is_partitioned(context: AssetExecutionContext, key: AssetKey) -> bool:
    try:
        return context.job_def.asset_layer.get(key).partitions_def is not None
    except Exception:  # not in this job's asset graph: an external, unpartitioned source
        return False


def _previous(context: AssetExecutionContext) -> dict[str, Any] | None:
    """The attestation this materialization supersedes, if any (same partition)."""
    partition = context.partition_key if context.has_partition_key else None
    try:
        attestation, _ = latest_provenance(context.instance, context.asset_key, partition)
    except ProvenanceError:
        return None
    return {"log_index": attestation.log_index, "envelope_sha256": attestation.envelope_sha256}


# ---------------------------------------------------------------------------
# Recording


def _orchestrator(context: AssetExecutionContext) -> dict[str, Any]:
    o: dict[str, Any] = {
        "name": "dagster",
        "run_id": context.run.run_id,
        "asset_key": context.asset_key.to_user_string(),
        "job": context.job_name,
        "attempt": context.retry_number,
    }
    if context.has_partition_key:
        o["partition_key"] = context.partition_key
    previous = _previous(context)
    if previous is not None:
        o["supersedes"] = previous
    return o


def _as_outputs(value: Any, asset_name: str) -> dict[str, Path]:
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        return {p.name: p}
    if isinstance(value, Mapping):
        return {str(k): Path(v) for k, v in value.items()}
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, str | os.PathLike) for v in value)
    ):
        out = {Path(v).name: Path(v) for v in value}
        if len(out) != len(value):
            raise ProvenanceError(
                f"{asset_name}: output file names must be unique; return a mapping name -> path"
            )
        return out
    raise ProvenanceError(
        f"{asset_name} returned {type(value).__name__}; a provenance asset returns the "
        "Path(s) it wrote (or a mapping name -> Path), Ingest(...) or Snapshot(...)"
    )


def _record(
    context: AssetExecutionContext,
    home: Home,
    value: Any,
    *,
    fn: Callable[..., Any],
    upstream: list[_Parent],
    gate_vsa: Attestation | None,
    started: datetime,
    code_version: str | None,
    parameters: Mapping[str, Any],
) -> _Node:
    from prov_core.nodes import ensure_branch, outputs_digest
    from prov_core.step import (
        STEP_BUILD_TYPE,
        TRAINING_BUILD_TYPE,
        Artifact,
        CodeIdentity,
        Recorder,
        record_step,
    )

    name = context.asset_key.to_user_string()
    inputs: list[Artifact | Attestation] = [p.attestation for p in upstream]
    with Recorder.from_home(home) as recorder:
        if isinstance(value, Ingest):
            from prov_core.ingest import ingest_path

            with home.open_index() as index:
                result = ingest_path(
                    recorder,
                    Path(value.path),
                    value.request,
                    index=index,
                    samples_store=home.open_samples(),
                    reuse_written=True,
                )
            return _Node(
                result.attestation,
                recorder.ledger.entry(result.attestation.log_index),
                result.root,
                result.samples,
                outputs={Path(value.path).name: str(value.path)},
            )
        if isinstance(value, Snapshot):
            from prov_core.snapshot_record import commit_snapshot, open_store_for
            from prov_core.snapshots.base import SnapshotURI

            uri = SnapshotURI.parse(f"{value.scheme}://{value.repo}/{value.branch}")
            store = open_store_for(uri, home)
            try:
                ensure_branch(store, value.repo, value.branch)
                with home.open_index() as index:
                    snap = commit_snapshot(
                        recorder,
                        store,
                        value.repo,
                        value.branch,
                        value.path,
                        prefix=value.prefix,
                        message=value.message or f"{name} (dagster run {context.run.run_id})",
                        derived_from=[a for a in inputs if not isinstance(a, Artifact)],
                        index=index,
                    )
            finally:
                close = getattr(store, "close", None)
                if callable(close):
                    close()
            pinned = f"{value.scheme}://{value.repo}/{snap.commit_id}"
            return _Node(
                snap.attestation,
                recorder.ledger.entry(snap.attestation.log_index),
                snap.commit_id,
                len(snap.objects),
                snapshot_uri=pinned,
                snapshot_commit=snap.commit_id,
            )
        files = _as_outputs(value, name)
        artifacts = [Artifact.from_path(p, name=n, reuse_written=True) for n, p in files.items()]
        if gate_vsa is not None:
            inputs.insert(0, gate_vsa)
        attestation = record_step(
            recorder,
            name,
            inputs=inputs,
            outputs=artifacts,
            code=CodeIdentity.of(fn, version=code_version),
            parameters=parameters,
            orchestrator=_orchestrator(context),
            started_on=started,
            build_type=TRAINING_BUILD_TYPE if gate_vsa is not None else STEP_BUILD_TYPE,
        )
        return _Node(
            attestation,
            recorder.ledger.entry(attestation.log_index),
            outputs_digest(artifacts),
            len(artifacts),
            outputs={n: str(p) for n, p in files.items()},
        )


def _statement(leaf: bytes) -> dict[str, Any]:
    """The statement a ledger entry holds, as stored (shown in the UI, not verified here)."""
    from prov_core.records import decode_entry

    return decode_entry(leaf)[1]


def _metadata(
    provenance: ProvenanceResource,
    node: _Node,
    upstream: list[_Parent],
    gate_vsa: Attestation | None,
) -> dict[str, Any]:
    a = node.attestation
    statement = _statement(node.leaf)
    meta: dict[str, Any] = {
        LOG_INDEX: MetadataValue.text(str(a.log_index)),
        ENVELOPE: MetadataValue.text(a.envelope_sha256),
        STATEMENT: MetadataValue.json(statement),
        CONTENT: MetadataValue.text(node.content),
        SAMPLES: MetadataValue.int(node.samples),
    }
    link = provenance.lineage_link(a.log_index)
    if link:
        meta[LINEAGE] = MetadataValue.url(link)
    if node.outputs:
        meta[OUTPUTS] = MetadataValue.json(node.outputs)
        if len(node.outputs) == 1:
            meta["dagster/uri"] = MetadataValue.path(next(iter(node.outputs.values())))
    if node.snapshot_uri:
        meta[SNAPSHOT_URI] = MetadataValue.text(node.snapshot_uri)
        meta[SNAPSHOT_COMMIT] = MetadataValue.text(node.snapshot_commit or "")
    if gate_vsa is not None:
        meta[GATE] = MetadataValue.text(str(gate_vsa.log_index))
    for parent in upstream:
        label = PARENT + parent.key.to_user_string()
        if parent.partition is not None:
            label += f"[{parent.partition}]"
        meta[label] = MetadataValue.asset(parent.key)
    meta[ATTESTATION] = MetadataValue.json(a.to_dict())  # last: for machines, shown long
    return meta


def _gate(
    context: AssetExecutionContext,
    provenance: ProvenanceResource,
    uris: Sequence[str],
) -> tuple[Attestation, list[str], Home]:
    """_gate judges ``uris``; returns the decision, the URIs and the home it opened."""
    from prov_core.gate import evaluate_gate

    name = context.asset_key.to_user_string()
    if not uris:
        raise ProvenanceError(
            f"training asset {name} has no snapshot among its upstream assets; declare the "
            "snapshot asset in deps (or give gate_inputs=)"
        )
    try:
        home = provenance.open_home()
        decision = evaluate_gate(uris, home=home, policy=provenance.load_policy())
    except Exception as exc:  # a malformed URI or policy: fail the step with the reason
        raise ProvenanceError(f"training asset {name}: {exc}") from exc
    vsa_index = None if decision.vsa is None else decision.vsa.log_index
    if not decision.allowed or decision.vsa is None:
        reasons = [str(r) for r in decision.reasons]  # the core's wording, every one
        for reason in reasons:
            context.log.error(f"provgate gate: {reason}")
        raise ProvenanceRefused(
            name,
            reasons,
            vsa_log_index=vsa_index,
            metadata={
                "provgate/reasons": MetadataValue.json([r.to_dict() for r in decision.reasons]),
                GATE: MetadataValue.text(str(vsa_index)),
                "provgate/inputs": MetadataValue.json(list(uris)),
            },
        )
    context.log.info(f"provgate gate: allowed {list(uris)} (decision at log index {vsa_index})")
    return decision.vsa, list(uris), home


def provenance_asset(
    fn: Callable[..., Any] | None = None,
    *,
    training: bool = False,
    gate_inputs: Callable[[AssetExecutionContext, list[str]], Sequence[str]] | None = None,
    parameters: Callable[[AssetExecutionContext], Mapping[str, Any]] | None = None,
    **asset_kwargs: Any,
) -> Any:
    """``@asset`` that records every materialization in provgate (see the module docstring).

    Takes everything ``@asset`` takes. ``training=True`` puts the training gate in front of
    the function: its inputs are the pinned snapshots of the upstream snapshot assets, or
    ``gate_inputs(context, those)``; a function declaring a ``pinned`` parameter receives
    the URIs that passed. ``parameters(context)`` returns the JSON parameters to record
    (default: the asset's run config, if any).
    """

    def decorate(user_fn: Callable[..., Any]) -> Any:
        try:  # resolve string annotations in the user's module: Dagster reads ours
            sig = inspect.signature(user_fn, eval_str=True)
        except NameError:
            sig = inspect.signature(user_fn)
        params = list(sig.parameters.values())
        takes_context = bool(params) and (
            params[0].name in ("context", "_context", "_")
            or params[0].annotation in (AssetExecutionContext, "AssetExecutionContext")
        )
        rest = params[1:] if takes_context else params
        takes_pinned = any(p.name == PINNED_PARAM for p in rest)
        takes_resource = any(p.name == RESOURCE_KEY for p in rest)
        if takes_pinned and not training:
            raise TypeError(f"{user_fn.__name__}: only a training asset receives {PINNED_PARAM!r}")
        outer = [
            inspect.Parameter(
                "context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=AssetExecutionContext
            ),
            *(
                p.replace(annotation=ProvenanceResource) if p.name == RESOURCE_KEY else p
                for p in rest
                if p.name != PINNED_PARAM
            ),
        ]
        if not takes_resource:
            outer.append(
                inspect.Parameter(
                    RESOURCE_KEY, inspect.Parameter.KEYWORD_ONLY, annotation=ProvenanceResource
                )
            )
        code_version = asset_kwargs.get("code_version")

        @functools.wraps(user_fn)
        def compute(context: AssetExecutionContext, **kwargs: Any) -> MaterializeResult[Any]:
            provenance: ProvenanceResource = kwargs[RESOURCE_KEY]
            if not takes_resource:
                del kwargs[RESOURCE_KEY]
            started = datetime.now(UTC)
            upstream = _upstream(context)
            gate_vsa: Attestation | None = None
            home: Home | None = None  # opened once per materialization
            if training:
                snapshots = [p.snapshot_uri for p in upstream if p.snapshot_uri]
                uris = list(gate_inputs(context, snapshots)) if gate_inputs else snapshots
                gate_vsa, passed, home = _gate(context, provenance, uris)
                if takes_pinned:
                    kwargs[PINNED_PARAM] = passed
            value = user_fn(context, **kwargs) if takes_context else user_fn(**kwargs)
            if parameters is not None:
                params_value = dict(parameters(context))
            else:
                config = context.op_execution_context.op_config
                params_value = dict(config) if isinstance(config, Mapping) else {}
            try:
                if home is None:
                    home = provenance.open_home()
                node = _record(
                    context,
                    home,
                    value,
                    fn=user_fn,
                    upstream=upstream,
                    gate_vsa=gate_vsa,
                    started=started,
                    code_version=code_version,
                    parameters=params_value,
                )
            except ProvenanceError:
                raise
            except Exception as exc:  # a core error: fail the step naming it
                raise ProvenanceError(
                    f"provgate could not record {context.asset_key.to_user_string()}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            context.log.info(
                f"provgate: recorded {context.asset_key.to_user_string()} at log index "
                f"{node.attestation.log_index}"
            )
            return MaterializeResult(
                metadata=_metadata(provenance, node, upstream, gate_vsa),
                data_version=DataVersion(node.content),
            )

        compute.__signature__ = inspect.Signature(outer, return_annotation=MaterializeResult)  # type: ignore[attr-defined]
        del compute.__wrapped__  # type: ignore[attr-defined]
        kwargs = dict(asset_kwargs)
        kwargs.setdefault("kinds", {"provgate"})
        return asset(compute, **kwargs)

    return decorate if fn is None else decorate(fn)
