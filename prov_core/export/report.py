"""The audit report: the data-governance documentation the signed records can support.

:func:`build_report` reads the lineage of a model or artifact (anything
:meth:`prov_core.lineage.Lineage.resolve` accepts) and returns an
:class:`AuditReport`; :func:`to_markdown` and :func:`to_html` render it. The
report is organised after the documentation the EU AI Act asks of training,
validation and testing data (Art. 10(2), Annex IV 2(d) and 2(g), Art. 12;
``docs/compliance.md`` maps each section to its provision). It is an aid
for the people who write that documentation, not a conformity assessment.

What is in it, for each *dataset* (an input of the target's records: a
pinned snapshot, or an ingest or step output read directly):

- origin and collection: every ingest record upstream (source URI, issuer,
  title, retrieval time, collection method, collector, geography,
  confidentiality, consent location, intended use, format);
- licences (SPDX expressions as signed);
- preparation: the transform steps between the sources and the dataset;
- sizes and counts: files, bytes and samples of each source and snapshot;
- the snapshot commit the training read;
- its split (training / validation / test) when a record marks it (below);
- the gate decisions (SLSA VSA) on it, with their policy digest and reasons.

Then an evidence appendix (the latest checkpoint and, for every record, the
result of each verification check and a ``c2sp.org/tlog-proof@v1`` receipt
against that checkpoint) and the list of what the records cannot show, for
a person to complete.

Every record is re-verified (:meth:`Lineage.verify_chain`); a record that
fails a check is marked FAILED wherever it appears, and what it says is
shown as stored, which is not evidence. Gate decisions on a snapshot that
the training record does not name are found by a downstream walk from the
snapshot (one per snapshot used) and verified on their own.

Split markers: the records have no dedicated field. A training record marks
an input as validation or test data by either of

- ``annotations.split`` on the input's ResourceDescriptor in
  ``resolvedDependencies``, or
- ``externalParameters.parameters.splits``: an object mapping the input's
  ``name``, ``uri`` or log index (as a string) to ``"training"``,
  ``"validation"`` or ``"test"`` (``record_step(..., parameters={"splits": ...})``).

An input named only by BLAKE3 (an artifact, not an attestation) marks the
records that produced those bytes. An input without a marker is reported as
"not marked in the records".
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from prov_core.errors import ProvgateError

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.lineage import ChainReport, Graph, Lineage
    from prov_core.lineage_index import ParsedRecord

__all__ = [
    "NOT_MARKED",
    "SPLITS",
    "AuditReport",
    "DatasetInfo",
    "GateInfo",
    "RecordEvidence",
    "SnapshotInfo",
    "SourceInfo",
    "StepInfo",
    "build_report",
    "to_html",
    "to_markdown",
]

SPLITS: Final = ("training", "validation", "test")
"""SPLITS are the values a split marker may take (module docstring)."""
NOT_MARKED: Final = "not marked in the records"
"""NOT_MARKED is what the report says of a dataset no record marks with a split."""

_DATA_KINDS: Final = ("ingest", "transform", "training", "snapshot", "other")

HUMAN_SECTIONS: Final[tuple[tuple[str, str], ...]] = (
    (
        "Art. 10(2)(a)",
        "The relevant design choices (why these data, this preparation, this split).",
    ),
    (
        "Art. 10(2)(b)",
        "For personal data: the original purpose of the data collection. The records hold "
        "the declared intended use and consent location where given, not the purpose.",
    ),
    (
        "Art. 10(2)(c)",
        "What each preparation step does (annotation, labelling, cleaning, updating, "
        "enrichment, aggregation). The records name each step, its code identity and its "
        "inputs and outputs by digest, not its method.",
    ),
    (
        "Art. 10(2)(d)",
        "The assumptions, in particular about what the data are supposed to measure and represent.",
    ),
    (
        "Art. 10(2)(e)",
        "An assessment of the availability, quantity and suitability of the data sets needed. "
        "The records give counts and sizes; suitability is a judgement they cannot make.",
    ),
    (
        "Art. 10(2)(f)",
        "The examination in view of possible biases affecting health, safety or fundamental "
        "rights, or leading to prohibited discrimination.",
    ),
    (
        "Art. 10(2)(g)",
        "The measures to detect, prevent and mitigate the biases found under (f).",
    ),
    (
        "Art. 10(2)(h)",
        "The relevant data gaps or shortcomings, and how they can be addressed.",
    ),
    (
        "Art. 10(3), 10(4)",
        "Relevance, representativeness, freedom from errors and completeness in view of the "
        "intended purpose; the geographical, contextual, behavioural or functional setting.",
    ),
    (
        "Art. 10(5)",
        "Whether special categories of personal data were processed for bias detection, and "
        "the safeguards applied.",
    ),
    (
        "Annex IV 2(d)",
        "Labelling procedures and data-cleaning methodologies (e.g. outlier detection), and "
        "how the data were selected.",
    ),
    (
        "Annex IV 2(g)",
        "The validation and testing procedures and metrics (accuracy, robustness, "
        "potentially discriminatory impacts), and the dated, signed test logs and reports.",
    ),
)
"""HUMAN_SECTIONS lists what the records cannot show: ``(provision, what to write)``."""


# --------------------------------------------------------------------------
# The report's parts


@dataclass(frozen=True)
class RecordEvidence:
    """RecordEvidence is one record's verification: each check's result and its receipt.

    ``checks`` maps link, signature, trust, inclusion and content to ``ok``,
    ``failed`` or ``unchecked`` (see :class:`prov_core.lineage.RecordCheck`);
    ``receipt`` is a tlog-proof@v1 against the report's checkpoint, or None
    with ``receipt_error`` saying why not.
    """

    log_index: int
    kind: str
    name: str
    envelope_sha256: str
    keyid: str
    predicate_type: str
    checks: Mapping[str, str]
    problems: tuple[str, ...] = ()
    receipt: str | None = None
    receipt_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and "failed" not in self.checks.values()

    @property
    def status(self) -> str:
        return "verified" if self.ok else "FAILED"


@dataclass(frozen=True)
class SourceInfo:
    """SourceInfo is one ingest record: where the data came from and on what terms."""

    log_index: int
    source_uri: str
    license: str
    license_url: str | None
    title: str | None
    issuer: str | None
    collection_method: str | None
    retrieved_at: str | None
    collector: str | None
    origin_geography: str | None
    confidentiality: str | None
    consent_location: str | None
    intended_use: str | None
    data_format: str | None
    samples: int | None
    sample_encoding: str | None
    sample_root: str | None
    files: int | None
    total_bytes: int | None


@dataclass(frozen=True)
class StepInfo:
    """StepInfo is a transform or training record: what ran on which inputs, making what."""

    log_index: int
    kind: str  # transform | training
    name: str
    build_type: str
    builder: str | None
    code: Mapping[str, Any]
    parameters: Mapping[str, Any]
    finished_on: str | None
    inputs: tuple[str, ...]  # "record N" for an attestation input, else its name or URI
    outputs: tuple[tuple[str, str], ...]  # (name, sha256)


@dataclass(frozen=True)
class SnapshotInfo:
    """SnapshotInfo is a snapshot record: the pinned commit and its size."""

    log_index: int
    uri: str
    store: str
    repository: str
    commit_id: str
    ref: str | None
    committed_at: str | None
    files: int | None
    total_bytes: int | None
    samples: int | None
    manifest_root: str | None
    uncovered: tuple[str, ...]


@dataclass(frozen=True)
class GateInfo:
    """GateInfo is a gate decision (SLSA VSA): result, policy and reasons."""

    log_index: int
    result: str
    time_verified: str | None
    resource_uri: str
    policy_uri: str | None
    policy_digest: str | None
    verified_levels: tuple[str, ...]
    commits: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DatasetInfo:
    """DatasetInfo is one input of the target: its sources, preparation, snapshot and gates."""

    name: str
    log_index: int
    kind: str
    split: str | None
    snapshot: SnapshotInfo | None
    sources: tuple[int, ...]
    steps: tuple[int, ...]
    snapshots: tuple[int, ...]
    gates: tuple[int, ...]

    @property
    def split_text(self) -> str:
        return self.split or NOT_MARKED


@dataclass
class AuditReport:
    """AuditReport is everything :func:`build_report` found, ready to render.

    ``sources``, ``steps``, ``snapshots``, ``gates`` and ``evidence`` are keyed
    by log index; datasets refer to them by index.
    """

    target: str
    generated_at: str
    origin: str
    roots: tuple[int, ...]
    models: tuple[int, ...]
    datasets: list[DatasetInfo] = field(default_factory=list)
    sources: dict[int, SourceInfo] = field(default_factory=dict)
    steps: dict[int, StepInfo] = field(default_factory=dict)
    snapshots: dict[int, SnapshotInfo] = field(default_factory=dict)
    gates: dict[int, GateInfo] = field(default_factory=dict)
    evidence: dict[int, RecordEvidence] = field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_size: int | None = None
    root_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """ok: every record in the report verified and the chain reached ingest records."""
        return not self.problems and all(e.ok for e in self.evidence.values())

    def status(self, log_index: int) -> str:
        e = self.evidence.get(log_index)
        return e.status if e is not None else "unchecked"

    @property
    def title(self) -> str:
        """title names the model(s) by their output names, else the target as given."""
        names = [n for i in self.models if i in self.steps for n, _ in self.steps[i].outputs]
        return ", ".join(names) if names else self.target

    @property
    def failing(self) -> list[int]:
        return sorted(i for i, e in self.evidence.items() if not e.ok)


# --------------------------------------------------------------------------
# Building


def build_report(target: str | int, home: Home, *, now: datetime | None = None) -> AuditReport:
    """build_report gathers the audit report of ``target`` (a model or artifact) in ``home``.

    Raises :class:`~prov_core.errors.InputError` or
    :class:`~prov_core.errors.NotFoundError` for a target that names no
    record; a record that fails verification does not raise, it is marked.
    """
    from prov_core.lineage import open_lineage

    with open_lineage(home) as lineage:
        return _Builder(lineage, now or datetime.now(UTC)).build(target)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _i(value: Any) -> int | None:
    return value if type(value) is int else None


class _Builder:
    def __init__(self, lineage: Lineage, now: datetime) -> None:
        self.lineage = lineage
        self.now = now
        self.parsed: dict[int, ParsedRecord] = {}

    def build(self, target: str | int) -> AuditReport:
        graph = self.lineage.upstream(target)
        chain = self.lineage.verify_chain(target)
        parents: dict[int, list[tuple[int, str]]] = {}
        for e in graph.edges:
            parents.setdefault(e.child, []).append((e.parent, e.kind))
        report = AuditReport(
            target=graph.target,
            generated_at=self.now.astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            origin=self.lineage.ledger.origin,
            roots=graph.roots,
            models=tuple(
                i for i in graph.roots if i in graph.nodes and graph.nodes[i].kind == "training"
            ),
            checkpoint_size=chain.checkpoint_size,
            root_hash=chain.root_hash,
        )
        note = self.lineage.ledger.latest_checkpoint()
        report.checkpoint = note.decode("utf-8", "replace") if note is not None else None
        records = set(graph.nodes)
        for i in sorted(graph.nodes):
            self._describe(report, i)
        # Gate decisions on the snapshots used: the training record may not name them.
        extra_gates: set[int] = set()
        for i in sorted(report.snapshots):
            extra_gates.update(self._gates_on(i))
        extra_gates -= records
        for g in sorted(extra_gates):
            self._describe(report, g)
        records |= extra_gates
        for root in graph.roots:
            report.datasets.extend(self._datasets(report, graph, parents, root))
        self._evidence(report, chain, records, extra_gates)
        for p in chain.problems:
            if p.log_index is None:
                report.problems.append(f"{p.check}: {p.message}")
        return report

    # -- reading records -------------------------------------------------------

    def _record(self, log_index: int) -> ParsedRecord | None:
        from prov_core.lineage_index import parse_record

        if log_index not in self.parsed:
            try:
                self.parsed[log_index] = parse_record(
                    log_index, self.lineage.ledger.entry(log_index)
                )
            except ProvgateError:
                return None
        return self.parsed[log_index]

    def _describe(self, report: AuditReport, log_index: int) -> None:
        rec = self._record(log_index)
        if rec is None or rec.statement is None:
            return
        statement = rec.statement
        p = _d(statement.get("predicate"))
        if rec.kind == "ingest":
            report.sources[log_index] = _source(log_index, p)
        elif rec.kind in ("transform", "training"):
            report.steps[log_index] = _step(log_index, rec.kind, rec.name, p)
        elif rec.kind == "snapshot":
            report.snapshots[log_index] = _snapshot(log_index, statement, p)
        elif rec.kind == "gate":
            report.gates[log_index] = _gate(log_index, p)

    def _gates_on(self, snapshot: int) -> list[int]:
        """The gate decisions whose ``inputAttestations`` name ``snapshot`` directly."""
        try:
            down = self.lineage.downstream(snapshot)
        except ProvgateError:
            return []
        return sorted(
            e.child
            for e in down.edges
            if e.parent == snapshot
            and e.kind == "verified"
            and e.child in down.nodes
            and down.nodes[e.child].kind == "gate"
        )

    # -- datasets ----------------------------------------------------------------

    def _datasets(
        self,
        report: AuditReport,
        graph: Graph,
        parents: Mapping[int, list[tuple[int, str]]],
        root: int,
    ) -> list[DatasetInfo]:
        node = graph.nodes.get(root)
        if node is None:
            return []
        if node.kind in ("snapshot", "ingest"):
            starts = [root]
        else:
            starts = sorted(
                {p for p, _ in parents.get(root, []) if p in graph.nodes}
                - {p for p, _ in parents.get(root, []) if graph.nodes[p].kind == "gate"}
            )
        splits = self._splits(root, graph)
        out: list[DatasetInfo] = []
        for start in starts:
            reach = _ancestors(start, parents)
            kind = graph.nodes[start].kind
            snap = report.snapshots.get(start)
            gates: set[int] = set()
            if snap is not None:  # decisions on this commit, wherever they are in the graph
                gates.update(
                    g for g, info in report.gates.items() if snap.commit_id in info.commits
                )
            gates.update(i for i in reach if i in report.gates)
            out.append(
                DatasetInfo(
                    name=_dataset_name(report, graph, start),
                    log_index=start,
                    kind=kind,
                    split=splits.get(start),
                    snapshot=snap,
                    sources=tuple(sorted(i for i in reach if i in report.sources)),
                    steps=tuple(sorted(i for i in reach if i in report.steps and i != root)),
                    snapshots=tuple(sorted(i for i in reach if i in report.snapshots)),
                    gates=tuple(sorted(gates)),
                )
            )
        return out

    def _splits(self, root: int, graph: Graph) -> dict[int, str]:
        """The split each input of ``root`` is marked with (module docstring).

        An input named by BLAKE3 only marks the records that edge leads to.
        """
        rec = self._record(root)
        if rec is None or rec.statement is None:
            return {}
        build = _d(_d(rec.statement.get("predicate")).get("buildDefinition"))
        by_key = _d(_d(_d(build.get("externalParameters")).get("parameters")).get("splits"))
        out: dict[int, str] = {}
        for dep in _l(build.get("resolvedDependencies")):
            d = _d(dep)
            index = _i(_d(d.get("annotations")).get("logIndex"))
            marked = _d(d.get("annotations")).get("split")
            for key in (d.get("name"), d.get("uri"), None if index is None else str(index)):
                if isinstance(key, str) and key in by_key:
                    marked = by_key[key]
            if marked not in SPLITS:
                continue
            if index is not None:
                out[index] = str(marked)
                continue
            b3 = _d(d.get("annotations")).get("blake3")
            for e in graph.edges:
                if e.child == root and b3 is not None and e.via == b3:
                    out[e.parent] = str(marked)
        return out

    # -- evidence ----------------------------------------------------------------

    def _evidence(
        self,
        report: AuditReport,
        chain: ChainReport,
        records: Iterable[int],
        extra: set[int],
    ) -> None:
        checks: dict[int, dict[str, str]] = {i: dict(c.checks) for i, c in chain.records.items()}
        problems: dict[int, list[str]] = {}
        for p in chain.problems:
            if p.log_index is not None:
                problems.setdefault(p.log_index, []).append(f"{p.check}: {p.message}")
        for g in sorted(extra):  # gate decisions found downstream: verified on their own
            try:
                own = self.lineage.verify_chain(g)
            except ProvgateError as exc:
                problems.setdefault(g, []).append(f"verify: {exc}")
                continue
            if g in own.records:
                checks[g] = dict(own.records[g].checks)
            problems[g] = [f"{p.check}: {p.message}" for p in own.problems if p.log_index == g]
        ledger = self.lineage.ledger
        for i in sorted(records):
            rec = self._record(i)
            receipt: str | None = None
            error: str | None = None
            if report.checkpoint_size is None:
                error = "no verified checkpoint"
            elif i >= report.checkpoint_size:
                error = f"not in the checkpoint of size {report.checkpoint_size}"
            else:
                try:
                    receipt = ledger.receipt(i, report.checkpoint_size).decode("utf-8", "replace")
                except ProvgateError as exc:
                    error = str(exc)
            report.evidence[i] = RecordEvidence(
                log_index=i,
                kind=rec.kind if rec else "unreadable",
                name=rec.name if rec else "",
                envelope_sha256=rec.envelope_sha256 if rec else "",
                keyid=rec.keyid if rec else "",
                predicate_type=rec.predicate_type if rec else "",
                checks=checks.get(i, {}),
                problems=tuple(problems.get(i, ())),
                receipt=receipt,
                receipt_error=error,
            )


def _ancestors(start: int, parents: Mapping[int, list[tuple[int, str]]]) -> set[int]:
    seen = {start}
    stack = [start]
    while stack:
        for p, _ in parents.get(stack.pop(), []):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _dataset_name(report: AuditReport, graph: Graph, start: int) -> str:
    if start in report.snapshots:
        return report.snapshots[start].uri
    if start in report.sources:
        return report.sources[start].source_uri
    step = report.steps.get(start)
    if step is not None and step.outputs:
        return ", ".join(name for name, _ in step.outputs)
    return graph.nodes[start].name


def _source(log_index: int, p: Mapping[str, Any]) -> SourceInfo:
    source, lic = _d(p.get("source")), _d(p.get("license"))
    samples, manifest = _d(p.get("samples")), _d(p.get("manifest"))
    return SourceInfo(
        log_index=log_index,
        source_uri=_s(source.get("uri")) or "",
        license=_s(lic.get("spdx")) or "",
        license_url=_s(lic.get("url")),
        title=_s(source.get("title")) or _s(p.get("datasetTitle")),
        issuer=_s(source.get("issuer")),
        collection_method=_s(p.get("collectionMethod")),
        retrieved_at=_s(p.get("retrievedAt")),
        collector=_s(_d(p.get("collector")).get("id")),
        origin_geography=_s(p.get("originGeography")),
        confidentiality=_s(p.get("confidentiality")),
        consent_location=_s(p.get("consentLocation")),
        intended_use=_s(p.get("intendedUse")),
        data_format=_s(p.get("dataFormat")),
        samples=_i(samples.get("count")),
        sample_encoding=_s(samples.get("leafEncoding")),
        sample_root=_s(samples.get("root")),
        files=_i(manifest.get("files")),
        total_bytes=_i(manifest.get("totalBytes")),
    )


def _step(log_index: int, kind: str, name: str, p: Mapping[str, Any]) -> StepInfo:
    build, run = _d(p.get("buildDefinition")), _d(p.get("runDetails"))
    inputs = []
    for dep in _l(build.get("resolvedDependencies")):
        d = _d(dep)
        index = _i(_d(d.get("annotations")).get("logIndex"))
        label = _s(d.get("name")) or _s(d.get("uri")) or "?"
        inputs.append(f"record {index}" if index is not None and label.startswith("att") else label)
    outputs = tuple(
        (_s(_d(b).get("name")) or "?", _s(_d(_d(b).get("digest")).get("sha256")) or "")
        for b in _l(run.get("byproducts"))
    )
    internal = _d(build.get("internalParameters"))
    external = _d(build.get("externalParameters"))
    return StepInfo(
        log_index=log_index,
        kind=kind,
        name=name,
        build_type=_s(build.get("buildType")) or "",
        builder=_s(_d(run.get("builder")).get("id")),
        code=_d(internal.get("code")),
        parameters=_d(external.get("parameters")),
        finished_on=_s(_d(run.get("metadata")).get("finishedOn")),
        inputs=tuple(inputs),
        outputs=outputs,
    )


def _snapshot(log_index: int, statement: Mapping[str, Any], p: Mapping[str, Any]) -> SnapshotInfo:
    subjects = _l(statement.get("subject"))
    store, repo, commit = _s(p.get("store")), _s(p.get("repository")), _s(p.get("commitId"))
    scheme = {"local": "provgate", "lakefs": "lakefs"}.get(store or "", store or "?")
    uri = _s(_d(subjects[0]).get("name")) if subjects else None
    manifest, samples = _d(p.get("manifest")), _d(p.get("samples"))
    return SnapshotInfo(
        log_index=log_index,
        uri=uri or f"{scheme}://{repo}/{commit}",
        store=store or "",
        repository=repo or "",
        commit_id=commit or "",
        ref=_s(p.get("ref")),
        committed_at=_s(p.get("committedAt")),
        files=_i(manifest.get("files")),
        total_bytes=_i(manifest.get("totalBytes")),
        samples=_i(samples.get("count")),
        manifest_root=_s(manifest.get("root")),
        uncovered=tuple(str(u) for u in _l(p.get("uncovered"))),
    )


def _gate(log_index: int, p: Mapping[str, Any]) -> GateInfo:
    policy = _d(p.get("policy"))
    reasons = []
    for r in _l(p.get("provgateReasons")):
        d = _d(r)
        rule = f" [{d['rule']}]" if _s(d.get("rule")) else ""
        reasons.append(f"{d.get('code', '?')}{rule}: {d.get('message', '')}")
    return GateInfo(
        log_index=log_index,
        result=_s(p.get("verificationResult")) or "?",
        time_verified=_s(p.get("timeVerified")),
        resource_uri=_s(p.get("resourceUri")) or "",
        policy_uri=_s(policy.get("uri")),
        policy_digest=_s(_d(policy.get("digest")).get("sha256")),
        verified_levels=tuple(str(v) for v in _l(p.get("verifiedLevels"))),
        commits=tuple(
            c for c in (_s(_d(i).get("commit")) for i in _l(p.get("provgateInputs"))) if c
        ),
        reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------
# Rendering: one neutral outline, two writers


@dataclass
class _Block:
    """_Block is a piece of the outline: a heading, a paragraph, a table, code or a list."""

    kind: str  # h | p | table | code | list | status
    level: int = 0
    text: str = ""
    rows: Sequence[Sequence[str]] = ()
    header: Sequence[str] = ()
    items: Sequence[str] = ()
    ok: bool = True


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "—"
    return str(value)


def _input_text(report: AuditReport, text: str) -> str:
    """_input_text says what a step's input ``record N`` is, when the report has it."""
    head, _, tail = text.partition(" ")
    if head != "record" or not tail.isdigit():
        return text
    i = int(tail)
    if i in report.snapshots:
        return f"{text} (snapshot {report.snapshots[i].uri})"
    if i in report.sources:
        return f"{text} (ingest {report.sources[i].source_uri})"
    if i in report.steps:
        return f"{text} (step {report.steps[i].name!r})"
    if i in report.gates:
        return f"{text} (gate decision {report.gates[i].result})"
    return text


def _status_text(report: AuditReport, i: int) -> str:
    return f"record {i}: {report.status(i)}"


def _outline(r: AuditReport) -> list[_Block]:
    b: list[_Block] = []
    b.append(_Block("h", 1, f"Data governance report: {r.title}"))
    b.append(
        _Block(
            "table",
            header=("", ""),
            rows=[
                ("Target", r.target),
                ("Records it resolves to", ", ".join(_status_text(r, i) for i in r.roots)),
                ("Ledger (log origin)", r.origin),
                ("Checkpoint", f"tree size {_fmt(r.checkpoint_size)}, root {_fmt(r.root_hash)}"),
                ("Generated", r.generated_at),
            ],
        )
    )
    if r.ok:
        b.append(
            _Block(
                "status",
                text=f"Verification: all {len(r.evidence)} records verified "
                "(signature, trust, inclusion, links).",
            )
        )
    else:
        failing = ", ".join(str(i) for i in r.failing) or "none"
        text = (
            f"Verification FAILED: records {failing} do not verify. What they say is shown "
            "as stored and is not evidence; see the evidence appendix."
        )
        b.append(_Block("status", text=text, ok=False))
        if r.problems:
            b.append(_Block("list", items=list(r.problems)))
    b.append(
        _Block(
            "p",
            text="This report is generated from signed provenance records. It documents what "
            "the records show; it is not a conformity assessment. docs/compliance.md maps "
            "each section to the provision it serves. Section 6 lists what a person must add.",
        )
    )

    # 1. Models
    b.append(_Block("h", 2, "1. Model and training records"))
    shown = [i for i in r.roots if i in r.steps]
    if not shown:
        b.append(_Block("p", text="The target is not the output of a recorded step."))
    for i in shown:
        s = r.steps[i]
        b.append(_Block("h", 3, f"{s.kind} step {s.name!r} ({_status_text(r, i)})"))
        b.append(
            _Block(
                "table",
                header=("Field", "Value"),
                rows=[
                    ("Outputs", "; ".join(f"{n} (sha256 {d})" for n, d in s.outputs) or "—"),
                    ("Inputs", "; ".join(_input_text(r, x) for x in s.inputs) or "—"),
                    ("Build type", s.build_type),
                    ("Builder", _fmt(s.builder)),
                    ("Code", _fmt(s.code)),
                    ("Parameters", _fmt(s.parameters)),
                    ("Finished", _fmt(s.finished_on)),
                ],
            )
        )

    # 2. Datasets
    b.append(_Block("h", 2, "2. Datasets"))
    if not r.datasets:
        b.append(_Block("p", text="No dataset input is recorded for the target."))
    for n, ds in enumerate(r.datasets, 1):
        b.append(_Block("h", 3, f"2.{n} {ds.name} ({_status_text(r, ds.log_index)})"))
        b.append(
            _Block(
                "table",
                header=("Field", "Value"),
                rows=[
                    ("Record kind", ds.kind),
                    ("Split (training / validation / test)", ds.split_text),
                    (
                        "Snapshot commit used",
                        f"{ds.snapshot.commit_id} ({ds.snapshot.store}, "
                        f"repository {ds.snapshot.repository})"
                        if ds.snapshot
                        else "none: not read through a pinned snapshot",
                    ),
                    ("Sources", str(len(ds.sources))),
                    ("Preparation steps", str(len(ds.steps))),
                    ("Gate decisions", str(len(ds.gates))),
                ],
            )
        )
        b.append(_Block("h", 4, "Origin and collection process"))
        if not ds.sources:
            b.append(_Block("p", text="No ingest record is reachable: origin not documented."))
        for i in ds.sources:
            src = r.sources[i]
            b.append(
                _Block(
                    "table",
                    header=("Source", f"{src.source_uri} ({_status_text(r, i)})"),
                    rows=[
                        ("Title / issuer", f"{_fmt(src.title)} / {_fmt(src.issuer)}"),
                        ("Collection method", _fmt(src.collection_method)),
                        ("Retrieved", _fmt(src.retrieved_at)),
                        ("Collector", _fmt(src.collector)),
                        ("Origin geography", _fmt(src.origin_geography)),
                        ("Confidentiality", _fmt(src.confidentiality)),
                        ("Consent documentation", _fmt(src.consent_location)),
                        ("Intended use (declared)", _fmt(src.intended_use)),
                        ("Data format", _fmt(src.data_format)),
                    ],
                )
            )
        b.append(_Block("h", 4, "Licences"))
        b.append(
            _Block(
                "table",
                header=("Source", "SPDX licence", "Licence URL", "Record"),
                rows=[
                    (
                        r.sources[i].source_uri,
                        r.sources[i].license,
                        _fmt(r.sources[i].license_url),
                        _status_text(r, i),
                    )
                    for i in ds.sources
                ],
            )
        )
        b.append(_Block("h", 4, "Preparation steps (transform chain)"))
        if not ds.steps:
            b.append(_Block("p", text="No transform step is recorded between sources and data."))
        else:
            b.append(
                _Block(
                    "table",
                    header=("Record", "Step", "Inputs", "Outputs", "Code", "Finished"),
                    rows=[
                        (
                            _status_text(r, i),
                            r.steps[i].name,
                            "; ".join(_input_text(r, x) for x in r.steps[i].inputs),
                            "; ".join(name for name, _ in r.steps[i].outputs),
                            _fmt(r.steps[i].code),
                            _fmt(r.steps[i].finished_on),
                        )
                        for i in ds.steps
                    ],
                )
            )
        b.append(_Block("h", 4, "Sizes and counts"))
        rows: list[tuple[str, ...]] = [
            (
                f"source {r.sources[i].source_uri}",
                _fmt(r.sources[i].files),
                _fmt(r.sources[i].total_bytes),
                f"{_fmt(r.sources[i].samples)} ({_fmt(r.sources[i].sample_encoding)})",
                _fmt(r.sources[i].sample_root),
            )
            for i in ds.sources
        ]
        rows += [
            (
                f"snapshot {r.snapshots[i].uri}",
                _fmt(r.snapshots[i].files),
                _fmt(r.snapshots[i].total_bytes),
                _fmt(r.snapshots[i].samples),
                _fmt(r.snapshots[i].manifest_root),
            )
            for i in ds.snapshots
        ]
        b.append(
            _Block(
                "table",
                header=("Data", "Files", "Bytes", "Samples (encoding)", "Root"),
                rows=rows,
            )
        )
        uncovered = [u for i in ds.snapshots for u in r.snapshots[i].uncovered]
        if uncovered:
            b.append(_Block("p", text="Objects no record covers: " + ", ".join(uncovered)))
        b.append(_Block("h", 4, "Gate decisions"))
        b.append(_gate_table(r, ds.gates))

    # 3. Snapshots
    b.append(_Block("h", 2, "3. Snapshot commits"))
    b.append(
        _Block(
            "table",
            header=("Record", "URI", "Commit", "Branch at commit", "Committed"),
            rows=[
                (
                    _status_text(r, i),
                    s.uri,
                    s.commit_id,
                    _fmt(s.ref),
                    _fmt(s.committed_at),
                )
                for i, s in sorted(r.snapshots.items())
            ],
        )
    )

    # 4. Validation and testing data
    b.append(_Block("h", 2, "4. Validation and testing data"))
    marked = [ds for ds in r.datasets if ds.split in ("validation", "test")]
    if marked:
        b.append(
            _Block(
                "table",
                header=("Dataset", "Split", "Record"),
                rows=[(ds.name, ds.split_text, _status_text(r, ds.log_index)) for ds in marked],
            )
        )
    else:
        b.append(
            _Block(
                "p",
                text="Validation and testing data: "
                + NOT_MARKED
                + ". No input of the target is marked as validation or test data.",
            )
        )

    # 5. All gate decisions
    b.append(_Block("h", 2, "5. Gate decisions and their policies"))
    b.append(_gate_table(r, tuple(sorted(r.gates))))
    for i, g in sorted(r.gates.items()):
        if g.reasons:
            b.append(_Block("p", text=f"Reasons recorded by gate record {i}:"))
            b.append(_Block("list", items=list(g.reasons)))

    # 6. What the records cannot show
    b.append(_Block("h", 2, "6. To be completed by a person"))
    b.append(
        _Block(
            "p",
            text="The records show where data came from, on what terms, how it was moved and "
            "transformed, and what the gate decided. They cannot show the following; write "
            "them here:",
        )
    )
    b.append(
        _Block(
            "table",
            header=("Provision", "What is needed", "Completed by / date"),
            rows=[(art, what, "") for art, what in HUMAN_SECTIONS],
        )
    )

    # Appendix
    b.append(_Block("h", 2, "Appendix: evidence"))
    b.append(
        _Block(
            "p",
            text="The latest signed checkpoint of the log (C2SP tlog-checkpoint). Each receipt "
            "below is a c2sp.org/tlog-proof@v1 inclusion proof of one record against it, "
            "checkable with standard tlog tooling.",
        )
    )
    b.append(_Block("code", text=r.checkpoint or "(the log has no checkpoint)"))
    b.append(
        _Block(
            "table",
            header=(
                "Record",
                "Kind",
                "Name",
                "Envelope sha256",
                "Key id",
                "Checks",
                "Status",
            ),
            rows=[
                (
                    str(i),
                    e.kind,
                    e.name,
                    e.envelope_sha256,
                    e.keyid,
                    ", ".join(f"{k} {v}" for k, v in sorted(e.checks.items())),
                    e.status,
                )
                for i, e in sorted(r.evidence.items())
            ],
        )
    )
    for i, e in sorted(r.evidence.items()):
        b.append(_Block("h", 4, f"Record {i}: {e.kind} {e.name} ({e.status})"))
        if e.problems:
            b.append(_Block("list", items=list(e.problems)))
        if e.receipt is not None:
            b.append(_Block("code", text=e.receipt))
        else:
            b.append(_Block("p", text=f"No receipt: {e.receipt_error}"))
    return b


def _gate_table(r: AuditReport, gates: Sequence[int]) -> _Block:
    if not gates:
        return _Block("p", text="No gate decision is recorded for this data.")
    return _Block(
        "table",
        header=("Record", "Result", "Verified", "Resource", "Policy", "Policy sha256", "Levels"),
        rows=[
            (
                _status_text(r, i),
                r.gates[i].result,
                _fmt(r.gates[i].time_verified),
                r.gates[i].resource_uri,
                _fmt(r.gates[i].policy_uri),
                _fmt(r.gates[i].policy_digest),
                ", ".join(r.gates[i].verified_levels) or "—",
            )
            for i in gates
        ],
    )


# -- Markdown ---------------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_BLOCK_START = re.compile(r"^(?:([#>+=-])|(\d+)([.)]))")


def _md(text: str, *, line: bool = False) -> str:
    """_md makes ``text`` inert in Markdown: one line, no HTML, no emphasis, links or code.

    ``line``: the text starts a line, so a leading ``#``, ``-``, ``1.``... is escaped too.
    """
    text = html.escape(" ".join(text.split()), quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    if line:
        text = _MD_BLOCK_START.sub(
            lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3),
            text,
        )
    return text


def to_markdown(report: AuditReport) -> str:
    """to_markdown renders the report as CommonMark/GFM (tables; every value escaped)."""
    out: list[str] = []
    for blk in _outline(report):
        if blk.kind == "h":
            out.append(f"{'#' * blk.level} {_md(blk.text)}")
        elif blk.kind == "p":
            out.append(_md(blk.text, line=True))
        elif blk.kind == "status":
            out.append(f"**{_md(blk.text)}**")
        elif blk.kind == "list":
            out.append("\n".join(f"- {_md(item, line=True)}" for item in blk.items))
        elif blk.kind == "code":
            fence = "~~~~"
            while fence in blk.text:
                fence += "~"
            out.append(f"{fence}text\n{blk.text.rstrip()}\n{fence}")
        elif blk.kind == "table":
            header = [_md(h) or " " for h in blk.header]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in blk.rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


# -- HTML ---------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#1b1f24}
h1,h2,h3,h4{overflow-wrap:anywhere}
h1{font-size:1.6rem;border-bottom:2px solid #24292f;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}h4{font-size:.95rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 .8rem;table-layout:auto}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}th{background:#f6f8fa}
td:first-child,th:first-child{min-width:9em}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.5rem;overflow-x:auto;font-size:12px}
.status{padding:.5rem .8rem;border-radius:6px;font-weight:600}
.ok{background:#dafbe1;color:#116329;border:1px solid #4ac26b}
.bad{background:#ffebe9;color:#82071e;border:1px solid #ff8182}
.FAILED{color:#82071e;font-weight:700}.verified{color:#116329}
.note{color:#57606a}
"""


def _h(text: str) -> str:
    escaped = html.escape(text, quote=True)
    return re.sub(r"\b(verified|FAILED)\b", r'<span class="\1">\1</span>', escaped)


def to_html(report: AuditReport) -> str:
    """to_html renders the report as one self-contained HTML page (no external assets).

    Every value from a record is escaped with :func:`html.escape`; the page
    has no script and its Content-Security-Policy forbids loading anything.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape('Data governance report: ' + report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for blk in _outline(report):
        if blk.kind == "h":
            parts.append(f"<h{blk.level}>{_h(blk.text)}</h{blk.level}>")
        elif blk.kind == "p":
            parts.append(f"<p>{_h(blk.text)}</p>")
        elif blk.kind == "status":
            cls = "ok" if blk.ok else "bad"
            parts.append(f'<p class="status {cls}">{_h(blk.text)}</p>')
        elif blk.kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_h(i)}</li>" for i in blk.items) + "</ul>")
        elif blk.kind == "code":
            parts.append(f"<pre>{html.escape(blk.text)}</pre>")
        elif blk.kind == "table":
            head = "".join(f"<th>{_h(h)}</th>" for h in blk.header if any(blk.header))
            body = "".join(
                "<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in blk.rows
            )
            thead = f"<thead><tr>{head}</tr></thead>" if head else ""
            parts.append(f"<table>{thead}<tbody>{body}</tbody></table>")
    parts.append(
        f'<p class="note">Generated by provgate at {html.escape(report.generated_at)}.</p>'
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
