"""W3C PROV export of a lineage subgraph (PROV-JSON through the ``prov`` package).

:func:`export_prov` walks from a target (upstream by default, see
:meth:`prov_core.lineage.Lineage.resolve` for the forms a target takes)
and returns a :class:`prov.model.ProvDocument`; :func:`to_prov_json`
serializes it as PROV-JSON (https://www.w3.org/submissions/prov-json/).
``prov`` is an optional dependency (``pip install 'provgate[prov]'``),
imported only when an export runs.

How records map to PROV (namespace ``provgate`` = :data:`NS`, record
identifiers in ``log`` = ``provgate+log://ORIGIN/``)::

    ingest record N      activity log:N (provgate:Ingest)
                         used        entity provgate:source/N  (the external source,
                                     prov:location = source URI)
                         generated   entity log:N/data  (the ingested dataset: sha256
                                     subject, BLAKE3 root, samples, SPDX licence),
                                     wasDerivedFrom the source
                         associated  agent provgate:collector/ID (role collector)
    transform/training N activity log:N (provgate:Transform | provgate:Training)
                         generated   entity provgate:artifact/SHA256 per output
                         used        the entities of its inputs (below); every
                                     output wasDerivedFrom every input
    snapshot record N    entity log:N (provgate:Snapshot: store, repository,
                         commit, manifest root), wasDerivedFrom its inputs
    gate decision N      activity log:N (provgate:GateDecision: result, time)
                         used        the entities it verified and the policy entity
                                     provgate:policy/SHA256
                         generated   entity log:N/decision (the SLSA VSA)
                         a training step that names it wasInformedBy it
    any other record N   activity log:N that used its inputs
    every record         associated with (or, a snapshot, attributed to) agent
                         provgate:key/KEYID (prov:type provgate:SigningKey, role signer)

The *entities of* a record are what it produced: an ingest's dataset, a
step's outputs (only those matching a BLAKE3 an edge was found by, when it
names one), a snapshot itself, a gate's decision. Attributes carry
``provgate:logIndex`` and ``provgate:envelopeSha256`` so every PROV node
leads back to its signed record. The records are read as stored, not
verified: verify with ``provgate verify --artifact`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from prov_core.errors import InputError, ProvgateError

if TYPE_CHECKING:
    from prov.model import ProvDocument, QualifiedName

    from prov_core.home import Home
    from prov_core.lineage import Graph, Lineage
    from prov_core.lineage_index import ParsedRecord

__all__ = ["INSTALL_HINT", "NS", "export_prov", "graph_to_prov", "to_prov_json"]

NS: Final = "https://provgate.dev/ns/prov#"
"""NS is the namespace of provgate's PROV types and attributes (prefix ``provgate``)."""
INSTALL_HINT: Final = "pip install 'provgate[prov]'"


def _require() -> None:
    try:
        import prov.model  # noqa: F401
    except ImportError as exc:
        raise InputError(f"the W3C PROV export needs the prov package: {INSTALL_HINT}") from exc


def export_prov(target: str | int, home: Home, *, down: bool = False) -> ProvDocument:
    """export_prov returns the PROV document of ``target``'s lineage in ``home``.

    ``down`` walks downstream (what was made from the target) instead of up.
    Raises :class:`InputError` when ``prov`` is not installed or the target is
    malformed, :class:`~prov_core.errors.NotFoundError` when no record names it.
    """
    from prov_core.lineage import open_lineage

    _require()
    with open_lineage(home) as lineage:
        graph = lineage.downstream(target) if down else lineage.upstream(target)
        return graph_to_prov(graph, lineage)


def to_prov_json(document: ProvDocument, *, indent: int | None = 2) -> str:
    """to_prov_json serializes ``document`` as PROV-JSON."""
    _require()
    text = document.serialize(format="json", indent=indent)
    if text is None:  # only when given a destination, which is not done here
        raise InputError("the PROV document could not be serialized")
    return text


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def graph_to_prov(graph: Graph, lineage: Lineage) -> ProvDocument:
    """graph_to_prov maps a walked :class:`~prov_core.lineage.Graph` to PROV (module docstring).

    The records are re-read from ``lineage.ledger`` for their attributes.
    """
    _require()
    return _Mapper(graph, lineage).run()


class _Mapper:
    def __init__(self, graph: Graph, lineage: Lineage) -> None:
        from prov.model import ProvDocument

        self.graph = graph
        self.ledger = lineage.ledger
        self.doc = ProvDocument()
        self.pg = self.doc.add_namespace("provgate", NS)
        self.log = self.doc.add_namespace("log", f"provgate+log://{lineage.ledger.origin}/")
        self.records: dict[int, ParsedRecord] = {}
        self.produced: dict[int, list[tuple[QualifiedName, str | None]]] = {}
        self.agents: set[str] = set()
        self.artifacts: set[str] = set()  # artifact and policy digests given an entity

    def q(self, local: str) -> QualifiedName:
        return self.pg[local]

    def run(self) -> ProvDocument:
        from prov_core.lineage_index import parse_record

        for i in sorted(self.graph.nodes):
            try:
                self.records[i] = parse_record(i, self.ledger.entry(i))
            except ProvgateError:
                continue
        for i in sorted(self.records):  # nodes first, so relations name existing records
            self._node(self.records[i])
        for e in self.graph.edges:
            if e.child in self.records and e.parent in self.records:
                self._edge(e.child, e.parent, e.via)
        return self.doc

    # -- nodes ----------------------------------------------------------------------

    def _common(self, rec: ParsedRecord) -> dict[Any, Any]:
        return {
            self.q("logIndex"): rec.log_index,
            self.q("envelopeSha256"): rec.envelope_sha256,
            self.q("predicateType"): rec.predicate_type,
            "prov:label": rec.name,
        }

    def _key(self, rec: ParsedRecord) -> QualifiedName | None:
        if not rec.keyid:
            return None
        agent = self.q(f"key/{rec.keyid}")
        if rec.keyid not in self.agents:
            self.agents.add(rec.keyid)
            self.doc.agent(
                agent,
                {
                    "prov:type": self.q("SigningKey"),
                    self.q("keyid"): rec.keyid,
                    "prov:label": f"Ed25519 key {rec.keyid[:16]}",
                },
            )
        return agent

    def _signed(self, activity: QualifiedName, rec: ParsedRecord) -> None:
        key = self._key(rec)
        if key is not None:
            self.doc.wasAssociatedWith(activity, key, other_attributes={"prov:role": "signer"})

    def _node(self, rec: ParsedRecord) -> None:
        p = _d(_d(rec.statement).get("predicate")) if rec.statement is not None else {}
        ident = self.log[str(rec.log_index)]
        if rec.kind == "ingest":
            self._ingest(rec, ident, p)
        elif rec.kind in ("transform", "training"):
            self._step(rec, ident, p)
        elif rec.kind == "snapshot":
            attrs = self._common(rec)
            attrs["prov:type"] = self.q("Snapshot")
            for name, value in (
                ("store", p.get("store")),
                ("repository", p.get("repository")),
                ("commitId", p.get("commitId")),
                ("manifestBlake3", _d(p.get("manifest")).get("root")),
            ):
                if _s(value):
                    attrs[self.q(name)] = value
            subjects = _l(_d(rec.statement).get("subject"))
            if subjects and _s(_d(subjects[0]).get("name")):
                attrs["prov:location"] = _d(subjects[0])["name"]
            self.doc.entity(ident, attrs)
            key = self._key(rec)
            if key is not None:
                self.doc.wasAttributedTo(ident, key)
            self.produced[rec.log_index] = [(ident, None)]
        elif rec.kind == "gate":
            self._gate(rec, ident, p)
        else:
            attrs = self._common(rec)
            attrs["prov:type"] = self.q(rec.kind.title().replace("-", ""))
            self.doc.activity(ident, other_attributes=attrs)
            self._signed(ident, rec)
            self.produced[rec.log_index] = []

    def _ingest(self, rec: ParsedRecord, ident: QualifiedName, p: Mapping[str, Any]) -> None:
        attrs = self._common(rec)
        attrs["prov:type"] = self.q("Ingest")
        method = _s(p.get("collectionMethod"))
        if method:
            attrs[self.q("collectionMethod")] = method
        when = _s(p.get("retrievedAt"))
        self.doc.activity(ident, endTime=when, other_attributes=attrs)
        self._signed(ident, rec)
        source = self.q(f"source/{rec.log_index}")
        self.doc.entity(
            source,
            {
                "prov:type": self.q("Source"),
                "prov:location": rec.source_uri or "",
                "prov:label": rec.source_uri or "",
            },
        )
        data = self.log[f"{rec.log_index}/data"]
        dattrs: dict[Any, Any] = {
            "prov:type": self.q("Dataset"),
            "prov:label": f"data ingested from {rec.source_uri or '?'}",
            self.q("logIndex"): rec.log_index,
        }
        subjects = _l(_d(rec.statement).get("subject"))
        sha = _s(_d(_d(subjects[0]).get("digest")).get("sha256")) if subjects else None
        for name, value in (
            ("sha256", sha),
            ("blake3", _d(p.get("manifest")).get("root")),
            ("license", rec.license),
            ("sampleRoot", _d(p.get("samples")).get("root")),
        ):
            if _s(value):
                dattrs[self.q(name)] = value
        count = _d(p.get("samples")).get("count")
        if type(count) is int:
            dattrs[self.q("samples")] = count
        self.doc.entity(data, dattrs)
        self.doc.used(ident, source)
        self.doc.wasGeneratedBy(data, ident)
        self.doc.wasDerivedFrom(data, source)
        collector = _s(_d(p.get("collector")).get("id"))
        if collector:
            agent = self.q(f"collector/{quote(collector, safe='@.-_~')}")
            if f"collector:{collector}" not in self.agents:
                self.agents.add(f"collector:{collector}")
                self.doc.agent(agent, {"prov:type": self.q("Collector"), "prov:label": collector})
            self.doc.wasAssociatedWith(ident, agent, other_attributes={"prov:role": "collector"})
        root = _s(_d(p.get("manifest")).get("root"))
        self.produced[rec.log_index] = [(data, root)]

    def _step(self, rec: ParsedRecord, ident: QualifiedName, p: Mapping[str, Any]) -> None:
        attrs = self._common(rec)
        attrs["prov:type"] = self.q("Training" if rec.kind == "training" else "Transform")
        build, run = _d(p.get("buildDefinition")), _d(p.get("runDetails"))
        if _s(build.get("buildType")):
            attrs[self.q("buildType")] = build["buildType"]
        meta = _d(run.get("metadata"))
        self.doc.activity(
            ident,
            startTime=_s(meta.get("startedOn")),
            endTime=_s(meta.get("finishedOn")),
            other_attributes=attrs,
        )
        self._signed(ident, rec)
        outputs: list[tuple[QualifiedName, str | None]] = []
        for b in _l(run.get("byproducts")):
            sha = _s(_d(_d(b).get("digest")).get("sha256"))
            if sha is None:
                continue
            entity = self.q(f"artifact/{sha}")
            outputs.append((entity, _s(_d(_d(b).get("annotations")).get("blake3"))))
            if sha in self.artifacts:  # the same bytes written again: one entity
                self.doc.wasGeneratedBy(entity, ident)
                continue
            self.artifacts.add(sha)
            b3 = _s(_d(_d(b).get("annotations")).get("blake3"))
            eattrs: dict[Any, Any] = {
                "prov:type": self.q("Model" if rec.kind == "training" else "Artifact"),
                "prov:label": _s(_d(b).get("name")) or sha,
                self.q("sha256"): sha,
            }
            if b3:
                eattrs[self.q("blake3")] = b3
            self.doc.entity(entity, eattrs)
            self.doc.wasGeneratedBy(entity, ident)
        self.produced[rec.log_index] = outputs

    def _gate(self, rec: ParsedRecord, ident: QualifiedName, p: Mapping[str, Any]) -> None:
        attrs = self._common(rec)
        attrs["prov:type"] = self.q("GateDecision")
        result = _s(p.get("verificationResult"))
        if result:
            attrs[self.q("verificationResult")] = result
        when = _s(p.get("timeVerified"))
        self.doc.activity(ident, endTime=when, other_attributes=attrs)
        self._signed(ident, rec)
        policy = _d(p.get("policy"))
        digest = _s(_d(policy.get("digest")).get("sha256"))
        if digest:
            entity = self.q(f"policy/{digest}")
            pattrs: dict[Any, Any] = {"prov:type": self.q("Policy"), self.q("sha256"): digest}
            if _s(policy.get("uri")):
                pattrs["prov:location"] = policy["uri"]
            if digest not in self.artifacts:  # one entity per policy, however many gates
                self.artifacts.add(digest)
                self.doc.entity(entity, pattrs)
            self.doc.used(ident, entity)
        decision = self.log[f"{rec.log_index}/decision"]
        self.doc.entity(
            decision,
            {
                "prov:type": self.q("VerificationSummary"),
                "prov:label": rec.name,
                self.q("verificationResult"): result or "?",
                self.q("logIndex"): rec.log_index,
            },
        )
        self.doc.wasGeneratedBy(decision, ident)
        self.produced[rec.log_index] = [(decision, None)]

    # -- edges ----------------------------------------------------------------------

    def _inputs(self, parent: int, via: str | None) -> list[QualifiedName]:
        made = self.produced.get(parent, [])
        if via is not None:
            exact = [e for e, b3 in made if b3 == via]
            if exact:
                return exact
        return [e for e, _ in made]

    def _edge(self, child: int, parent: int, via: str | None) -> None:
        rec, par = self.records[child], self.records[parent]
        ident = self.log[str(child)]
        if rec.kind in ("transform", "training") and par.kind == "gate":
            self.doc.wasInformedBy(ident, self.log[str(parent)])
            return
        inputs = self._inputs(parent, via)
        if rec.kind == "snapshot":
            for entity in inputs:
                self.doc.wasDerivedFrom(ident, entity)
            return
        for entity in inputs:
            self.doc.used(ident, entity)
            for out, _ in self.produced.get(child, []) if rec.kind != "gate" else []:
                self.doc.wasDerivedFrom(out, entity, activity=ident)
